// A queue subscription's publishing rounds over the VStream merger (fake tablets): each round's
// transactions, packed and "sent", then its cursor stored. A crash after a send and before the
// store resends that round; across a split's journal the subscription goes on from the new shards.
// The consumer's reader gets every transaction exactly once, in commit order per shard.

import { describe, expect, it } from "vitest";
import { newSubscriptionReaderState, readSubscriptionBatch, type SubscriptionTransaction } from "../../client/subscription.ts";
import { packMessages } from "../../contract/subscription-message.ts";
import { decodeToken, encodeToken, type ShardJournal, type VEvent } from "../../contract/vstream.ts";
import { type Outbox, type PublisherState, publishStep } from "../../gate/subscription-publish.ts";
import { collectRound, type SubscriptionCursor, startCursor } from "../../gate/subscription-round.ts";
import { type VStreamTablets, vstreamEvents } from "../../gate/vstream.ts";
import { type FakeTablet, fake as fakeServing, tx } from "./vstream-fake-tablets.ts";

/** The subscription's fake keyspace lists no serving shards (every shard read is a known tablet). */
const fake = (shards: Record<string, FakeTablet>) => fakeServing(shards, []);

const journal: ShardJournal = {
  workflow: "split",
  keyspace: "ks",
  tables: null,
  sources: ["-"],
  targets: [
    { shard: "-80", tablet: "ks/-80", uid: "l", seq: 7 },
    { shard: "80-", tablet: "ks/80-", uid: "r", seq: 4 },
  ],
};

function shards(): Record<string, FakeTablet> {
  return {
    "-": { uid: "s", txns: [1, 2, 3, 4, 5].map((i) => tx(i, i, `s${i}`)), journal },
    "-80": { uid: "l", txns: [tx(7, 1, "copied"), ...[8, 9, 10, 11].map((i) => tx(i, i, `l${i}`))] },
    "80-": { uid: "r", txns: [tx(4, 2, "copied"), ...[5, 6, 7].map((i) => tx(i, i, `r${i}`))] },
  };
}

const expected = ["-:s1", "-:s2", "-:s3", "-:s4", "-:s5", "-80:l8", "-80:l9", "-80:l10", "-80:l11", "80-:r5", "80-:r6", "80-:r7"];

const values = (got: SubscriptionTransaction[]) =>
  got.flatMap((t) => t.events.flatMap((e) => (e.type === "ROW" ? [`${t.shard}:${String(e.after?.["v"])}`] : [])));

/** Rounds until `want` transactions were published; `crashAfter` lists rounds whose store is lost once. */
async function publish(crashAfter: Set<number>): Promise<{ bodies: string[]; rounds: number }> {
  const tablets = fake(shards());
  let cursor: SubscriptionCursor = startCursor(encodeToken({ keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "s", seq: 0, copy: null }] }));
  let counter = 0;
  const bodies: string[] = [];
  let published = 0;
  let round = 0;
  while (round < 50) {
    round++;
    const gen = vstreamEvents({ keyspace: "ks", from: decodeToken(cursor.token), heartbeatMs: 20 }, tablets);
    const r = await collectRound(gen, cursor, { maxBytes: 600, deadline: Date.now() + 200, now: Date.now });
    await gen.return(undefined);
    const sent = packMessages("orders", counter, r.items, 4096);
    bodies.push(...sent);
    if (crashAfter.delete(round)) continue; // sent, then a crash before the cursor was stored
    counter += sent.length;
    cursor = r.cursor;
    published += r.items.length;
    if (published >= expected.length) break;
  }
  return { bodies, rounds: round };
}

describe("subscription rounds", () => {
  it("publishes every transaction across a split; a crash between send and store only duplicates", async () => {
    const clean = await publish(new Set());
    const crashed = await publish(new Set([1, 3, 4]));
    expect(crashed.bodies.length).toBeGreaterThan(clean.bodies.length);
    for (const { bodies } of [clean, crashed]) {
      const state = newSubscriptionReaderState();
      const got = readSubscriptionBatch([...bodies].reverse(), state).transactions;
      expect(values(got).sort()).toEqual([...expected].sort());
      for (const shard of ["-", "-80", "80-"]) {
        const seqs = got.filter((t) => t.shard === shard).map((t) => t.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      }
      expect(state.early).toEqual([]);
    }
  });

  it("hands out the old shard's transactions before any of the new shards' (the journal's deps), whatever the delivery order", async () => {
    const { bodies } = await publish(new Set([2]));
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const shuffled = () =>
      [...bodies]
        .map((b) => [rand(), b] as const)
        .sort((x, y) => x[0] - y[0])
        .map(([, b]) => b);
    const orders: string[][][] = [
      [[...bodies].reverse()],
      [...bodies].reverse().map((b) => [b]),
      ...Array.from({ length: 10 }, () => shuffled().map((b) => [b])),
    ];
    for (const batches of orders) {
      const state = newSubscriptionReaderState();
      const got = batches.flatMap((b) => readSubscriptionBatch(b, state).transactions);
      expect(values(got).sort()).toEqual([...expected].sort());
      const lastOld = got.map((t) => t.shard).lastIndexOf("-");
      const firstNew = got.findIndex((t) => t.shard !== "-");
      expect(lastOld).toBeLessThan(firstNew);
    }
    // The new shards' first transactions carry what they wait for: the old shard at its last one.
    const firsts = bodies
      .flatMap((b) => (JSON.parse(b) as { txs: { shard: string; after: number; origin: number; deps?: unknown }[] }).txs)
      .filter((t) => t.shard !== "-" && t.after === t.origin);
    expect(firsts.length).toBeGreaterThan(0);
    for (const t of firsts) expect(t.deps).toEqual([{ shard: "-", uid: "s", seq: 5 }]);
  });

  it("transactions of other tables move a shard's position but are not links of its chain", async () => {
    // Visible transactions 1 and 2, then 3 and 4 touch other tables (the tablet moves the position
    // past them, and heartbeats carry it), then 5 comes.
    const visible = [tx(1, 1, "a"), tx(2, 2, "b")];
    let head = 4;
    const tablets: VStreamTablets = {
      ...fake({}),
      known: async () => ["ks/-"],
      async read(_tablet, req) {
        const got = visible.filter((x) => x.seq > req.seq).slice(0, 2);
        const rest = visible.filter((x) => x.seq > (got.at(-1)?.seq ?? req.seq));
        return { uid: "s", transactions: got, seq: rest.length > 0 ? (rest[0]?.seq ?? 1) - 1 : head };
      },
    };
    let stored: PublisherState = {
      cursor: startCursor(encodeToken({ keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "s", seq: 0, copy: null }] })),
      counter: 0,
      ts: null,
      published: 0,
    };
    const queue: string[] = [];
    for (let step = 0; step < 20 && stored.published < 3; step++) {
      if (step === 3) {
        visible.push(tx(5, 5, "c"));
        head = 5;
      }
      stored = await publishStep(
        stored,
        {
          name: "orders",
          events: (c) => vstreamEvents({ keyspace: "ks", from: decodeToken(c.token), heartbeatMs: 20 }, tablets),
          send: { sendBatch: async (ms) => void queue.push(...[...ms].map((m) => m.body)) },
          store: async () => undefined,
          outbox: { load: async () => null, save: async () => undefined },
        },
        { maxBytes: 100, deadline: Date.now() + 50, now: Date.now },
      );
    }
    const state = newSubscriptionReaderState();
    const got = readSubscriptionBatch(queue, state).transactions;
    expect(got.map((t) => t.seq)).toEqual([1, 2, 5]);
    expect(state.early).toEqual([]);
  });

  it("starts a cursor in the initial copy", () => {
    const t = encodeToken({ keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "s", seq: 3, copy: { table: "", after: null } }] });
    expect(startCursor(t)).toEqual({ token: t, origins: { "ks/-@s": 3 } });
  });

  it("a round holding copy pages is kept before it is sent and sent again as it was, never collected anew", async () => {
    // A shard whose copy hands out one page per read at the position the read stands at.
    let head = 2;
    let reads = 0;
    const tablets: VStreamTablets = {
      ...fake({ "-": { uid: "s", txns: [] } }),
      async read(_tablet, req) {
        reads++;
        if (req.seq === -1) return { uid: "s", transactions: [], seq: head };
        if (req.copy === null) return { uid: "s", transactions: [], seq: req.seq };
        const after = req.copy.after === null ? 0 : Number(req.copy.after[0]);
        const row = { table: "t", columns: ["id", "v"], pk: ["id"], before: null, after: [after + 1, `c${head}`] };
        head++; // a write lands between reads: a page read again stands elsewhere
        return { uid: "s", transactions: [], copy: { rows: [row], to: after + 1 < 3 ? { table: "t", after: [after + 1] } : null, seq: req.seq }, seq: req.seq };
      },
    };
    const token = encodeToken({ keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "s", seq: 2, copy: { table: "", after: null } }] });
    let stored: PublisherState = { cursor: startCursor(token), counter: 0, ts: null, published: 0 };
    let kept: Outbox | null = null;
    const queue: string[] = [];
    let failStore = true;
    const io = {
      name: "orders",
      events: (c: SubscriptionCursor) => vstreamEvents({ keyspace: "ks", from: decodeToken(c.token), heartbeatMs: 20 }, tablets),
      send: { sendBatch: async (ms: Iterable<{ body: string }>) => void queue.push(...[...ms].map((m) => m.body)) },
      store: async (next: PublisherState) => {
        if (failStore) {
          failStore = false;
          throw new Error("crash before the store");
        }
        stored = next;
        kept = null;
      },
      outbox: {
        load: async () => kept,
        save: async (o: Outbox) => {
          kept = o;
        },
      },
    };
    const bounds = () => ({ maxBytes: 10_000, deadline: Date.now() + 100, now: Date.now });
    await expect(publishStep(stored, io, bounds())).rejects.toThrow(/crash/);
    const first = [...queue];
    expect(first.length).toBeGreaterThan(0);
    expect(kept).not.toBeNull();
    const readsBefore = reads;
    await publishStep(stored, io, bounds());
    // The kept round went out again, byte for byte, with no read of the tablet.
    expect(queue.slice(first.length)).toEqual(first);
    expect(reads).toBe(readsBefore);
    expect(kept).toBeNull();
    expect(stored.counter).toBe(first.length);
    const got = readSubscriptionBatch(queue, newSubscriptionReaderState()).transactions;
    expect(got.every((t) => t.copy === true)).toBe(true);
    expect(got.flatMap((t) => t.events.flatMap((e) => (e.type === "ROW" ? [Number(e.after?.["id"])] : [])))).toEqual([1, 2, 3]);
  });

  it("publishStep sends before it stores: a store that fails resends, a send that fails stores nothing", async () => {
    const tablets = fake(shards());
    const start = startCursor(encodeToken({ keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "s", seq: 0, copy: null }] }));
    let stored: PublisherState = { cursor: start, counter: 0, ts: null, published: 0 };
    const queue: string[] = [];
    let step = 0;
    const batches: number[] = [];
    while (stored.published < expected.length && step < 60) {
      step++;
      const failSend = step % 5 === 2;
      const failStore = step % 5 === 4;
      await publishStep(
        stored,
        {
          name: "orders",
          events: (c) => vstreamEvents({ keyspace: "ks", from: decodeToken(c.token), heartbeatMs: 20 }, tablets),
          send: {
            async sendBatch(ms) {
              if (failSend) throw new Error("queue unavailable");
              const bodies = [...ms].map((m) => m.body);
              batches.push(bodies.length);
              queue.push(...bodies);
            },
          },
          store: async (next) => {
            if (failStore) throw new Error("crash before the store");
            stored = next;
          },
          outbox: { load: async () => null, save: async () => undefined },
        },
        { maxBytes: 600, deadline: Date.now() + 200, now: Date.now },
      ).catch(() => undefined);
    }
    expect(stored.published).toBe(expected.length);
    expect(stored.ts).not.toBeNull();
    const state = newSubscriptionReaderState();
    const got = readSubscriptionBatch([...queue].reverse(), state).transactions;
    expect(values(got).sort()).toEqual([...expected].sort());
    expect(batches.every((n) => n >= 1 && n <= 100)).toBe(true);
  });

  it("a round told to stop (the subscription was updated) ends before the next transaction, its cursor just after the last one it took", async () => {
    const tablets = fake({ "-": { uid: "s", txns: [1, 2, 3, 4].map((i) => tx(i, i, `s${i}`)) } });
    const cursor = startCursor(encodeToken({ keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "s", seq: 0, copy: null }] }));
    let taken = 0;
    const gen = vstreamEvents({ keyspace: "ks", from: decodeToken(cursor.token), heartbeatMs: 20 }, tablets);
    const r = await collectRound(
      {
        next: async () => {
          const n = await gen.next();
          if (!n.done && n.value.type === "COMMIT") taken++;
          return n;
        },
      } as AsyncIterator<VEvent>,
      cursor,
      { maxBytes: 1e6, deadline: Date.now() + 5_000, now: Date.now, stop: () => taken >= 2 },
    );
    await gen.return(undefined);
    expect(r.items.map((i) => i.tx.seq)).toEqual([1, 2]);
    expect(decodeToken(r.cursor.token).shards[0]?.seq).toBe(2);
    expect(r.cursor.last).toEqual({ "ks/-@s": 2 });
  });
});
