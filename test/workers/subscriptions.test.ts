// Queue subscriptions through the real queue binding: the invariant is that a consumer reading the
// queue with client/subscription.ts's reader gets every committed transaction of the subscription's
// tables once, whole, in commit order per shard, from the point the create answered, whatever the
// publisher went through (a crash between send and store, a reset midway) and whatever the queue
// redelivers. Creates that cannot run are refused with a catalogued error and change nothing;
// delete stops the publisher and releases its binlog holds.

import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createClient } from "../../client/index.ts";
import type { Envelope } from "../../contract/envelope.ts";
import { decodeToken } from "../../contract/vstream.ts";
import { armPublishCrash } from "../../gate/failpoints.ts";
import { api, sql } from "./helpers.ts";
import { create, delivered, expectOrderedPerShard, holds, keyspace, publisher, read, waitFor } from "./subscription-harness.ts";

describe("queue subscriptions", () => {
  it("refuses creates that cannot run, with catalogued errors, and records nothing", async () => {
    const KS = "sub0";
    await keyspace(KS);
    const good = { name: "s0", keyspace: KS, binding: "SUBSCRIPTION_QUEUE" };
    const refusals: [Record<string, unknown>, string, string?][] = [
      [{ ...good, name: "bad name" }, "INVALID_ARGUMENT"],
      [{ ...good, name: "" }, "INVALID_ARGUMENT"],
      [{ ...good, name: "x".repeat(65) }, "INVALID_ARGUMENT"],
      [{ ...good, keyspace: "nokeyspace" }, "INVALID_ARGUMENT"],
      [{ ...good, tables: ["nosuchtable"] }, "UNKNOWN_TABLE"],
      [{ ...good, tables: ["_vt_binlog"] }, "PERMISSION_DENIED"],
      [{ ...good, binding: "NO_SUCH_BINDING" }, "INVALID_ARGUMENT"],
      [{ ...good, binding: "TABLET" }, "INVALID_ARGUMENT"],
      [{ ...good, binding: "DEFAULT_KEYSPACE" }, "INVALID_ARGUMENT"],
      [{ ...good, binding: "VREPL_QUEUE" }, "INVALID_ARGUMENT"],
      [{ ...good, from: "not-a-token" }, "INVALID_ARGUMENT"],
      [{ ...good, colour: "blue" }, "INVALID_ARGUMENT"],
    ];
    for (const [body, code, id] of refusals) {
      const r = await create(body);
      expect(r.status, JSON.stringify(body)).not.toBe(200);
      expect(r.body.error?.code, JSON.stringify(r.body)).toBe(code);
      if (id !== undefined) expect(r.body.error?.id).toBe(id);
    }
    // A token of another keyspace.
    await keyspace("sub0b");
    const other = await create({ ...good, name: "s0b", keyspace: "sub0b" });
    expect(other.status, JSON.stringify(other.body)).toBe(200);
    const otherToken = (other.body["status"] as { token: string }).token;
    expect((await create({ ...good, from: otherToken })).body.error?.code).toBe("INVALID_ARGUMENT");
    const none = await api<{ subscriptions: { name: string }[] }>("GET", "/v1/subscriptions");
    expect(none.body.subscriptions.map((s) => s.name)).not.toContain("s0");
    expect((await api("GET", "/v1/subscriptions?name=s0")).status).toBe(400);
    expect((await create(good)).status).toBe(200);
    const dup = await create({ ...good, tables: ["items"] });
    expect(dup.body.error?.code).toBe("INVALID_ARGUMENT");
    const one = await api<{ subscriptions: { name: string; tables: unknown }[] }>("GET", "/v1/subscriptions?name=s0");
    expect(one.body.subscriptions).toEqual([expect.objectContaining({ name: "s0", tables: null })]);
    for (const name of ["s0", "s0b"]) expect((await api("POST", "/v1/subscriptions", { action: "delete", name })).status).toBe(200);
    expect((await api("POST", "/v1/subscriptions", { action: "delete", name: "s0" })).body).toEqual(
      expect.objectContaining({ error: expect.objectContaining({ code: "INVALID_ARGUMENT" }) }),
    );
  });

  it("delivers every transaction once, in order per shard, through the real queue; /v1/topology shows the lag", { timeout: 60_000 }, async () => {
    const KS = "sub1";
    await keyspace(KS);
    await sql("INSERT INTO items (id, v) VALUES (1000, 'before the subscription')", undefined, KS);
    const c = await create({ name: "s1", keyspace: KS, tables: ["items"], binding: "SUBSCRIPTION_QUEUE" });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    for (let i = 1; i <= 30; i++) await sql("INSERT INTO items (id, v) VALUES (?, 'a')", [i], KS);
    // Transactions of a table it does not publish move its positions on (a heartbeat carries them
    // past; each is at least a row and a commit event): its chains go on from the transaction
    // published before, not from those positions.
    const position = async () => {
      const st = await api<{ subscriptions: { status: { token: string } }[] }>("GET", "/v1/subscriptions?name=s1");
      return decodeToken(st.body.subscriptions[0]?.status.token).shards.reduce((n, p) => n + p.seq, 0);
    };
    await waitFor("the 30 inserts", async () => (read(await delivered("s1")).txs.length >= 30 ? true : undefined));
    const before = await position();
    for (let i = 1; i <= 3; i++) await sql("INSERT INTO other (id, v) VALUES (?, 'not subscribed')", [i], KS);
    await waitFor("the position past the other table's writes", async () => ((await position()) >= before + 6 ? true : undefined));
    const b = await api("POST", "/v1/batch", {
      keyspace: KS,
      transaction: true,
      statements: [
        { sql: "INSERT INTO items (id, v) VALUES (2, 'two') ON CONFLICT (id) DO UPDATE SET v = 'two'" },
        { sql: "UPDATE items SET v = 'b' WHERE id = 2" },
      ],
    });
    expect(b.status, JSON.stringify(b.body)).toBe(200);
    await sql("DELETE FROM items WHERE id = 3", undefined, KS);
    const expected = 32; // 30 inserts, the batch (one transaction), the delete
    const got = await waitFor("every transaction", async () => {
      const r = read(await delivered("s1"));
      return r.txs.length >= expected ? r : undefined;
    });
    expect(got.txs).toHaveLength(expected);
    expectOrderedPerShard(got.txs);
    expect(new Set(got.txs.map((t) => t.shard))).toEqual(new Set(["-80", "80-"]));
    expect(got.ids).not.toContain(1000);
    expect(got.ids.filter((id) => id !== 2 && id !== 3).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 27 }, (_, i) => i + 4)
        .concat([1])
        .sort((x, y) => x - y),
    );
    // The batch is one transaction of two row events; every transaction is whole.
    const batchTx = got.txs.find((t) => t.events.filter((e) => e.type === "ROW").length === 2);
    expect(batchTx?.events.map((e) => e.type)).toEqual(["BEGIN", "ROW", "ROW", "COMMIT"]);
    for (const t of got.txs) expect([t.events[0]?.type, t.events.at(-1)?.type]).toEqual(["BEGIN", "COMMIT"]);

    // The same bodies delivered twice over, in reverse: the reader still hands out each once.
    const bodies = await delivered("s1");
    const again = read([...bodies, ...bodies].reverse());
    expect(again.txs.map((t) => `${t.shard}@${t.seq}`).sort()).toEqual(got.txs.map((t) => `${t.shard}@${t.seq}`).sort());

    const topo = await api<{ subscriptions: { name: string; lagMs: number | null; published: number; lastError: unknown; running: boolean }[] }>(
      "GET",
      "/v1/topology",
    );
    const s1 = topo.body.subscriptions.find((s) => s.name === "s1");
    expect(s1).toEqual(expect.objectContaining({ running: true, lastError: null }));
    expect(s1?.published).toBeGreaterThanOrEqual(expected);
    expect(typeof s1?.lagMs).toBe("number");
    // The SDK's topology() over capnweb lists it too.
    const db = createClient({
      url: "http://gate",
      fetch: ((input: RequestInfo | URL, init?: RequestInit) => exports.default.fetch(new Request(input, init))) as typeof fetch,
    });
    try {
      expect((await db.topology()).subscriptions?.find((s) => s.name === "s1")).toEqual(
        expect.objectContaining({ running: true, binding: "SUBSCRIPTION_QUEUE" }),
      );
    } finally {
      await db.close();
    }
    expect(await holds(`${KS}/-80`)).toContain("sub:s1");
    expect((await api("POST", "/v1/subscriptions", { action: "delete", name: "s1" })).status).toBe(200);
  });

  it("a publisher crashed between send and store, or reset midway, repeats at most: the reader drops the repeats", { timeout: 60_000 }, async () => {
    const KS = "sub2";
    await keyspace(KS);
    expect((await create({ name: "s2", keyspace: KS, binding: "SUBSCRIPTION_QUEUE" })).status).toBe(200);
    armPublishCrash("s2", 2);
    for (let i = 1; i <= 10; i++) await sql("INSERT INTO items (id, v) VALUES (?, 'x')", [i], KS);
    await waitFor("the first ten", async () => (read(await delivered("s2")).txs.length >= 10 ? true : undefined));
    // A reset of the publisher's Durable Object midway: its alarm brings it back.
    await runInDurableObject(publisher("s2"), async (_instance, state) => {
      expect(await state.storage.getAlarm()).not.toBeNull();
      try {
        state.abort("test: reset");
      } catch {
        // abort throws in the caller too
      }
    }).catch(() => undefined);
    for (let i = 11; i <= 20; i++) await sql("INSERT INTO items (id, v) VALUES (?, 'y')", [i], KS);
    const got = await waitFor("all twenty", async () => {
      const r = read(await delivered("s2"));
      return r.txs.length >= 20 ? r : undefined;
    });
    expect(got.txs).toHaveLength(20);
    expect([...got.ids].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expectOrderedPerShard(got.txs);
    // The crashes made the publisher send some transactions again: the raw deliveries hold repeats.
    const raw = (await delivered("s2")).flatMap((b) => (JSON.parse(b) as { txs: { shard: string; seq: number }[] }).txs.map((t) => `${t.shard}@${t.seq}`));
    expect(raw.length).toBeGreaterThan(new Set(raw).size);
    expect((await api("POST", "/v1/subscriptions", { action: "delete", name: "s2" })).status).toBe(200);
  });

  it("delete stops the publisher for good and releases its holds; a publisher whose record is gone stops by itself", { timeout: 60_000 }, async () => {
    const KS = "sub3";
    await keyspace(KS);
    expect((await create({ name: "s3", keyspace: KS, binding: "SUBSCRIPTION_QUEUE" })).status).toBe(200);
    await sql("INSERT INTO items (id, v) VALUES (1, 'x'), (200, 'y')", undefined, KS);
    await waitFor("the holds", async () => ((await holds(`${KS}/-80`)).includes("sub:s3") && (await holds(`${KS}/80-`)).includes("sub:s3") ? true : undefined));
    const d = await api<{ stopped: boolean }>("POST", "/v1/subscriptions", { action: "delete", name: "s3" });
    expect(d.status).toBe(200);
    expect(d.body.stopped).toBe(true);
    expect(await holds(`${KS}/-80`)).not.toContain("sub:s3");
    expect(await holds(`${KS}/80-`)).not.toContain("sub:s3");
    await runInDurableObject(publisher("s3"), async (_i, state) => {
      expect(await state.storage.getAlarm()).toBeNull();
      expect((await state.storage.list()).size).toBe(0);
    });
    // Created again under the name: another subscription, from its own "now".
    expect((await create({ name: "s3", keyspace: KS, binding: "SUBSCRIPTION_QUEUE" })).status).toBe(200);
    // Removed from the Topology behind the gate's back (the stop lost): the publisher stops by itself.
    const gone = await env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global")).deleteSubscription("s3");
    expect(gone.ok).toBe(true);
    await waitFor(
      "the publisher to stop",
      async () => {
        const st = (await publisher("s3").status()) as Envelope<unknown>;
        return st.ok && st.value === null ? true : undefined;
      },
      40_000,
    );
    expect(await holds(`${KS}/-80`)).not.toContain("sub:s3");
  });
});
