// A queue subscription's tables changed in place: from the publisher's next round on it publishes
// the new tables' changes (an added table's from then, not before; a removed table's no more),
// and its chains go on, so one reader state reads every message from before and after the update
// with nothing waiting. Updates that cannot run are refused with a catalogued error and change
// nothing: a table the keyspace lacks, a system table, a binding (it does not change in place),
// an unknown field, and any update while the initial copy is still going out.

import { describe, expect, it } from "vitest";
import type { SubscriptionTransaction } from "../../client/subscription.ts";
import { BINDING_IN_PLACE } from "../../contract/subscription-rpc.ts";
import { armPublishCrash } from "../../gate/failpoints.ts";
import { api, sql } from "./helpers.ts";
import { type Answer, create, delivered, expectOrderedPerShard, keyspace, read, waitFor } from "./subscription-harness.ts";

const update = (body: Record<string, unknown>) => api("POST", "/v1/subscriptions", { action: "update", ...body }) as Promise<Answer>;

/** The ids each table's row events carry, sorted (the reader orders them per shard; shards interleave). */
function idsByTable(txs: readonly SubscriptionTransaction[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const t of txs) {
    for (const e of t.events) if (e.type === "ROW") out[e.table] = [...(out[e.table] ?? []), Number((e.after ?? e.before)?.["id"])];
  }
  for (const ids of Object.values(out)) ids.sort((a, b) => a - b);
  return out;
}

const shown = async (name: string) =>
  (await api<{ subscriptions: { tables: string[] | null; revision: number; status: { copying: boolean } | null }[] }>("GET", `/v1/subscriptions?name=${name}`))
    .body.subscriptions[0];

describe("a queue subscription's tables, changed in place", () => {
  it("publishes the new tables from the next round on; one reader reads across the update", { timeout: 60_000 }, async () => {
    const KS = "subu1";
    await keyspace(KS);
    expect((await create({ name: "u1", keyspace: KS, tables: ["items"], binding: "SUBSCRIPTION_QUEUE" })).status).toBe(200);
    for (let i = 1; i <= 5; i++) await sql("INSERT INTO items (id, v) VALUES (?, 'a')", [i], KS);
    for (let i = 1; i <= 3; i++) await sql("INSERT INTO other (id, v) VALUES (?, 'before')", [i], KS);
    await waitFor("the first five", async () => (read(await delivered("u1")).txs.length >= 5 ? true : undefined));

    const added = await update({ name: "u1", tables: ["items", "OTHER"] });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(added.body).toMatchObject({ name: "u1", tables: ["items", "other"], revision: 2 });
    for (let i = 4; i <= 6; i++) await sql("INSERT INTO other (id, v) VALUES (?, 'after')", [i], KS);
    for (let i = 6; i <= 8; i++) await sql("INSERT INTO items (id, v) VALUES (?, 'a')", [i], KS);
    await waitFor("items 6-8 and other 4-6", async () => (read(await delivered("u1")).txs.length >= 11 ? true : undefined));
    let { txs } = read(await delivered("u1"));
    expect(txs).toHaveLength(11);
    expectOrderedPerShard(txs);
    expect(idsByTable(txs)).toEqual({ items: [1, 2, 3, 4, 5, 6, 7, 8], other: [4, 5, 6] });

    // Every table, then only `other`: items stop.
    expect((await update({ name: "u1", tables: null })).body).toMatchObject({ tables: null, revision: 3 });
    expect((await update({ name: "u1", tables: ["other"] })).body).toMatchObject({ tables: ["other"], revision: 4 });
    await sql("INSERT INTO items (id, v) VALUES (9, 'not published')", undefined, KS);
    await sql("INSERT INTO other (id, v) VALUES (7, 'published')", undefined, KS);
    await waitFor("other 7", async () => (read(await delivered("u1")).txs.length >= 12 ? true : undefined));
    await new Promise((r) => setTimeout(r, 1_500)); // a round or two more: items 9 never comes
    ({ txs } = read(await delivered("u1")));
    expect(idsByTable(txs)).toEqual({ items: [1, 2, 3, 4, 5, 6, 7, 8], other: [4, 5, 6, 7] });
    expect((await shown("u1"))?.tables).toEqual(["other"]);
  });

  it("refuses updates that cannot run, with catalogued errors, and changes nothing", async () => {
    const KS = "subu2";
    await keyspace(KS);
    expect((await create({ name: "u2", keyspace: KS, tables: ["items"], binding: "SUBSCRIPTION_QUEUE" })).status).toBe(200);
    const refusals: [Record<string, unknown>, string, string?][] = [
      [{ name: "u2", tables: ["nosuchtable"] }, "UNKNOWN_TABLE"],
      [{ name: "u2", tables: ["_vt_binlog"] }, "PERMISSION_DENIED"],
      [{ name: "u2", tables: [] }, "INVALID_ARGUMENT"],
      [{ name: "u2", tables: 7 }, "INVALID_ARGUMENT"],
      [{ name: "u2", tables: "" }, "INVALID_ARGUMENT"],
      [{ name: "u2", tables: "items,other" }, "INVALID_ARGUMENT"],
      [{ name: "u2" }, "INVALID_ARGUMENT"],
      [{ name: "u2", tables: ["items"], binding: "SUBSCRIPTION_QUEUE" }, "INVALID_ARGUMENT", BINDING_IN_PLACE],
      [{ name: "u2", tables: ["items"], colour: "blue" }, "INVALID_ARGUMENT"],
      [{ name: "nosuch", tables: ["items"] }, "INVALID_ARGUMENT"],
      [{ tables: ["items"] }, "INVALID_ARGUMENT"],
    ];
    for (const [body, code, message] of refusals) {
      const r = await update(body);
      expect(r.status, JSON.stringify(body)).not.toBe(200);
      expect(r.body.error?.code, JSON.stringify(r.body)).toBe(code);
      if (message !== undefined) expect(r.body.error?.message).toBe(message);
    }
    expect(await shown("u2")).toMatchObject({ tables: ["items"], revision: 1 });
  });

  it("refuses an update while the initial copy is still going out, and takes it once the copy is done", { timeout: 60_000 }, async () => {
    const KS = "subu3";
    await keyspace(KS);
    for (let i = 1; i <= 5; i++) await sql("INSERT INTO items (id, v) VALUES (?, 'a')", [i], KS);
    // Its first rounds crash between send and store: the stored state stays at the copy's start.
    armPublishCrash("u3", 2);
    try {
      expect((await create({ name: "u3", keyspace: KS, tables: ["items"], binding: "SUBSCRIPTION_QUEUE", from: "start" })).status).toBe(200);
      const r = await update({ name: "u3", tables: ["items", "other"] });
      expect(r.body.error?.code, JSON.stringify(r.body)).toBe("INVALID_ARGUMENT");
      expect(r.body.error?.message).toContain("initial copy");
      expect(await shown("u3")).toMatchObject({ tables: ["items"], revision: 1 });
    } finally {
      armPublishCrash("u3", 0);
    }
    await waitFor("the copy done", async () => ((await shown("u3"))?.status?.copying === false ? true : undefined), 30_000);
    expect((await update({ name: "u3", tables: ["items", "other"] })).body).toMatchObject({ tables: ["items", "other"], revision: 2 });
    await sql("INSERT INTO other (id, v) VALUES (1, 'after')", undefined, KS);
    await waitFor("other 1", async () => (idsByTable(read(await delivered("u3")).txs)["other"]?.length === 1 ? true : undefined));
    const { txs } = read(await delivered("u3"));
    expect(idsByTable(txs)).toEqual({ items: [1, 2, 3, 4, 5], other: [1] });
  });

  it("a subscription updated, deleted and created again under its name publishes (its publisher does not take its first round for a stale one)", {
    timeout: 60_000,
  }, async () => {
    const KS = "subu4";
    await keyspace(KS);
    expect((await create({ name: "u4", keyspace: KS, tables: ["items"], binding: "SUBSCRIPTION_QUEUE" })).status).toBe(200);
    expect((await update({ name: "u4", tables: ["items", "other"] })).body).toMatchObject({ revision: 2 });
    expect((await update({ name: "u4", tables: ["items"] })).body).toMatchObject({ revision: 3 });
    expect((await api("POST", "/v1/subscriptions", { action: "delete", name: "u4" })).status).toBe(200);
    const before = (await delivered("u4")).length;
    expect((await create({ name: "u4", keyspace: KS, tables: ["items"], binding: "SUBSCRIPTION_QUEUE" })).body).toMatchObject({ revision: 1 });
    for (let i = 101; i <= 103; i++) await sql("INSERT INTO items (id, v) VALUES (?, 'again')", [i], KS);
    const got = await waitFor("the new subscription's inserts", async () => {
      const ids = idsByTable(read((await delivered("u4")).slice(before)).txs)["items"] ?? [];
      return [101, 102, 103].every((i) => ids.includes(i)) ? ids : undefined;
    });
    expect(got.filter((i) => i > 100)).toEqual([101, 102, 103]);
  });
});
