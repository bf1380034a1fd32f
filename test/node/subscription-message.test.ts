// The queue subscription message format: transactions packed into messages within the size bound,
// big ones split into parts, and the consumer's reader handing each transaction out exactly once
// and in commit order per shard, whatever order and however many times messages are delivered.

import { describe, expect, it } from "vitest";
import { newSubscriptionReaderState, readSubscriptionBatch, type SubscriptionTransaction } from "../../client/subscription.ts";
import { type PublishItem, packMessages, type SubscriptionTx } from "../../contract/subscription-message.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * `count` transactions per shard over shards, a chain each starting at `origin`; value sizes from
 * `size`. Where `page(i)`, the link is a page of the initial copy at its predecessor's seq (as a
 * subscription from "start" publishes them), one page further.
 */
function history(shards: string[], count: number, size: (i: number) => number, page: (i: number) => boolean = () => false): PublishItem[] {
  const items: PublishItem[] = [];
  const at: Record<string, number> = Object.fromEntries(shards.map((s) => [s, 10]));
  const pages: Record<string, number> = {};
  for (let i = 0; i < count * shards.length; i++) {
    const shard = shards[i % shards.length] as string;
    const after = at[shard] as number;
    const afterPage = pages[shard] ?? 0;
    const copy = page(i);
    const seq = copy ? after : after + 1 + (i % 3);
    const p = copy ? afterPage + 1 : afterPage;
    at[shard] = seq;
    pages[shard] = p;
    const tx: SubscriptionTx = {
      shard,
      uid: `u-${shard}`,
      origin: 10,
      after,
      seq,
      ...(p > 0 ? { page: p } : {}),
      ...(afterPage > 0 ? { afterPage } : {}),
      ts: 1000 + i,
      events: [
        { type: "BEGIN", shard },
        {
          type: "ROW",
          shard,
          table: "t",
          op: "insert",
          before: null,
          after: { id: i, v: "x".repeat(size(i)), big: { int: "9007199254740993" } },
          pk: { id: i },
        },
        { type: "COMMIT", shard, ts: 1000 + i, token: `tok${i}` },
      ],
    };
    items.push({ tx, token: `tok${i}` });
  }
  return items;
}

/** The row id a transaction of `history` carries (its index: unique, growing along each chain). */
const idOf = (events: readonly unknown[]) => Number((events.find((e) => (e as { type: string }).type === "ROW") as { after: { id: unknown } }).after.id);

function expectExactlyOnceInOrder(got: SubscriptionTransaction[], items: PublishItem[]) {
  expect(got.map((t) => `${t.shard}:${idOf(t.events)}`).sort()).toEqual(items.map((i) => `${i.tx.shard}:${idOf(i.tx.events)}`).sort());
  const byShard = new Map<string, number[]>();
  for (const t of got) byShard.set(t.shard, [...(byShard.get(t.shard) ?? []), idOf(t.events)]);
  for (const ids of byShard.values()) expect(ids).toEqual([...ids].sort((a, b) => a - b));
  // A page of the copy is marked as one.
  const pages = new Set(items.filter((i) => (i.tx.page ?? 0) > (i.tx.afterPage ?? 0)).map((i) => idOf(i.tx.events)));
  for (const t of got) expect(t.copy === true, `row ${idOf(t.events)}`).toBe(pages.has(idOf(t.events)));
}

describe("subscription messages", () => {
  it("groups whole transactions within the limit and numbers messages from the counter", () => {
    const items = history(["-80", "80-"], 50, () => 2000);
    const bodies = packMessages("orders", 7, items, 32 * 1024);
    expect(bodies.length).toBeGreaterThan(1);
    const parsed = bodies.map((b) => JSON.parse(b));
    expect(parsed.map((m) => m.n)).toEqual(parsed.map((_, i) => 7 + i));
    for (const b of bodies) expect(new TextEncoder().encode(b).length).toBeLessThanOrEqual(32 * 1024);
    expect(parsed.flatMap((m) => m.txs).length).toBe(items.length);
    expect(parsed.at(-1).token).toBe(items.at(-1)?.token);
  });

  it("splits a 1.5 MB row into parts under the limit and puts it back together", () => {
    const items = history(["-"], 3, (i) => (i === 1 ? 1_500_000 : 10));
    const bodies = packMessages("orders", 0, items);
    for (const b of bodies) expect(new TextEncoder().encode(b).length).toBeLessThanOrEqual(120 * 1024);
    const parts = bodies.map((b) => JSON.parse(b)).filter((m) => m.part);
    expect(parts.length).toBeGreaterThanOrEqual(13);
    const state = newSubscriptionReaderState();
    const got = readSubscriptionBatch([...bodies].reverse(), state).transactions;
    expectExactlyOnceInOrder(got, items);
    const row = got[1]?.events[1] as { after: Record<string, unknown> };
    expect((row.after["v"] as string).length).toBe(1_500_000);
    expect(row.after["big"]).toBe(9007199254740993n);
    expect(state.early).toEqual([]);
    expect(state.parts).toEqual({});
  });

  it("hands out every transaction once in shard order whatever the delivery order, duplicates and resends", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      // Half the seeds carry pages of an initial copy between the transactions (several at one seq).
      const copy = seed % 2 === 0;
      const items = history(
        ["-40", "40-80", "80-"],
        20,
        (i) => (i % 17 === 0 ? 60_000 : Math.floor(r() * 5000)),
        (i) => copy && i < 40 && i % 3 !== 2,
      );
      // A first send of everything, then a crash before the token was stored: a resend from an
      // earlier point with another grouping (the same transactions, other messages).
      const cut = Math.floor(r() * items.length);
      const first = packMessages("s", 0, items, 40 * 1024);
      const resend = packMessages("s", 3, items.slice(cut), 20 * 1024);
      const all = [...first, ...resend, ...first.filter(() => r() < 0.3)];
      for (let i = all.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [all[i], all[j]] = [all[j] as string, all[i] as string];
      }
      // The consumer persists its state between batches (as JSON).
      let state = newSubscriptionReaderState();
      const got: SubscriptionTransaction[] = [];
      for (let i = 0; i < all.length; ) {
        const n = 1 + Math.floor(r() * 10);
        got.push(...readSubscriptionBatch(all.slice(i, i + n), state).transactions);
        state = JSON.parse(JSON.stringify(state));
        i += n;
      }
      expectExactlyOnceInOrder(got, items);
      expect(state.early).toEqual([]);
    }
  }, 60_000);

  it("keeps a transaction that came before its predecessor until the predecessor arrives", () => {
    const items = history(["-"], 3, () => 10);
    const [a, b, c] = items.map((i) => packMessages("s", 0, [i])[0] as string);
    const state = newSubscriptionReaderState();
    expect(readSubscriptionBatch([c, b], state).transactions).toEqual([]);
    expect(state.early.length).toBe(2);
    expect(readSubscriptionBatch([a], state).transactions.map((t) => t.seq)).toEqual(items.map((i) => i.tx.seq));
    expect(readSubscriptionBatch([a, b, c], state).transactions).toEqual([]);
  });

  it("reports bodies that are not subscription messages and refuses bad packing arguments", () => {
    const state = newSubscriptionReaderState();
    expect(readSubscriptionBatch(["not json", { v: 9, txs: [] }, 42], state).invalid).toEqual([0, 1, 2]);
    expect(() => packMessages("s", -1, [])).toThrow(/counter/);
    expect(() => packMessages("s", 0, [], 100)).toThrow(/limit/);
  });
});

describe("subscription messages of an initial copy", () => {
  it("places pages by (seq, page): one at its predecessor's seq follows it, a repeat of either is dropped", () => {
    const items = history(
      ["-"],
      6,
      () => 10,
      (i) => i === 1 || i === 2 || i === 4,
    );
    expect(items.map((i) => [i.tx.seq, i.tx.page ?? 0])).toEqual([
      [11, 0],
      [11, 1],
      [11, 2],
      [12, 2],
      [12, 3],
      [15, 3],
    ]);
    const bodies = items.map((i) => packMessages("s", 0, [i])[0] as string);
    const state = newSubscriptionReaderState();
    // The second page before the first: it waits.
    expect(readSubscriptionBatch([bodies[2], bodies[0]] as string[], state).transactions.map((t) => idOf(t.events))).toEqual([0]);
    expect(state.early.length).toBe(1);
    const rest = readSubscriptionBatch([bodies[1], bodies[1], bodies[0], bodies[5], bodies[4], bodies[3]] as string[], state);
    expect(rest.transactions.map((t) => idOf(t.events))).toEqual([1, 2, 3, 4, 5]);
    expect(rest.transactions.map((t) => t.copy === true)).toEqual([true, true, false, true, false]);
    expect(state.pages).toEqual({ "/-@u--": 3 });
    expect(readSubscriptionBatch(bodies, state).transactions).toEqual([]);
    expect(state.early).toEqual([]);
  });

  it("refuses a link that does not move past its predecessor's place", () => {
    const [item] = history(["-"], 1, () => 10);
    const tx = item?.tx as SubscriptionTx;
    const state = newSubscriptionReaderState();
    for (const bad of [
      { ...tx, seq: tx.after },
      { ...tx, seq: tx.after, page: 1, afterPage: 1 },
      { ...tx, page: -1 },
      { ...tx, page: 1.5 },
    ]) {
      const body = JSON.stringify({ v: 1, subscription: "s", n: 0, txs: [bad], token: "t" });
      expect(readSubscriptionBatch([body], state).invalid, JSON.stringify(bad)).toEqual([0]);
    }
    const fine = JSON.stringify({ v: 1, subscription: "s", n: 0, txs: [{ ...tx, seq: tx.after, page: 1 }], token: "t" });
    expect(readSubscriptionBatch([fine], state).transactions).toHaveLength(1);
  });
});
