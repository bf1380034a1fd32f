// A queue subscription across a reshard: while shard -80 splits into -40 and 40-80 under writes,
// the publisher follows the switch's journal onto the new shards (their tablets start new chains),
// and the reader gets every transaction once, each row's changes in the order they were made, the
// new tablets held for the subscription like the old ones.

import { describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";
import { caughtUp, workflows } from "./reshard-harness.ts";
import { create, delivered, expectOrderedPerShard, holds, keyspace, read, waitFor } from "./subscription-harness.ts";

const IDS = 20;

describe("queue subscriptions across a reshard", () => {
  it("every transaction once, each row's changes in order, before, during and after the split", { timeout: 120_000 }, async () => {
    const KS = "subr";
    await keyspace(KS);
    expect((await create({ name: "sr", keyspace: KS, tables: ["items"], binding: "SUBSCRIPTION_QUEUE" })).status).toBe(200);
    for (let id = 1; id <= IDS; id++) await sql("INSERT INTO items (id, v) VALUES (?, '0')", [id], KS);
    const wf = workflows(KS, "split");
    const c = await wf.call({ action: "create", sourceShards: ["-80"], targetShards: ["-40", "40-80"] });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    for (let id = 1; id <= IDS; id++) await sql("UPDATE items SET v = '1' WHERE id = ?", [id], KS);
    await wf.until("caught up", caughtUp);
    const sw = await wf.call({ action: "switchtraffic" });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    for (let id = 1; id <= IDS; id++) await sql("UPDATE items SET v = '2' WHERE id = ?", [id], KS);

    const got = await waitFor(
      "every transaction",
      async () => {
        const r = read(await delivered("sr"));
        return r.txs.length >= 3 * IDS ? r : undefined;
      },
      60_000,
    );
    expect(got.txs).toHaveLength(3 * IDS);
    expectOrderedPerShard(got.txs);
    const values = new Map<number, string[]>();
    for (const t of got.txs) {
      for (const e of t.events) {
        if (e.type !== "ROW") continue;
        const id = Number(e.after?.["id"]);
        values.set(id, [...(values.get(id) ?? []), String(e.after?.["v"])]);
      }
    }
    expect(values.size).toBe(IDS);
    for (const [id, v] of values) expect(v, `row ${id}`).toEqual(["0", "1", "2"]);
    // The last updates of rows now on -40 or 40-80 came from the new shards.
    const shards = new Set(got.txs.map((t) => t.shard));
    expect(shards.has("-40") || shards.has("40-80")).toBe(true);
    expect(shards.has("80-")).toBe(true);

    const topo = await api<{ keyspaces: { name: string; shards: { name: string; tablet: string; serving: boolean }[] }[] }>("GET", "/v1/topology");
    const serving = (topo.body.keyspaces.find((k) => k.name === KS)?.shards ?? []).filter((s) => s.serving);
    expect(serving.map((s) => s.name).sort()).toEqual(["-40", "40-80", "80-"]);
    for (const s of serving) expect(await holds(s.tablet), s.tablet).toContain("sub:sr");
    expect((await api("POST", "/v1/subscriptions", { action: "delete", name: "sr" })).status).toBe(200);
    for (const s of serving) expect(await holds(s.tablet), s.tablet).not.toContain("sub:sr");
  });
});
