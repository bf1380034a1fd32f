// MoveTables carries the moved tables' secondary indexes: after create every target shard has each
// index (SQLite's own text, a partial and an expression index among them), queries on the target
// use them and answer exactly what the source answered, and they stay after Complete. A UNIQUE
// index into a sharded keyspace, and an index named like something the target has, are refused
// before anything changes.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";
import { caughtUp, moveModel, moveWorkflow, setUpMove, tabletOf, topology } from "./movetables-harness.ts";

const INDEXES = [
  "CREATE INDEX corder_total ON corder (total)",
  "CREATE INDEX corder_big ON corder (customer_id, total) WHERE total > 20",
  "CREATE INDEX customer_lname ON customer (lower(name))",
];

async function shardIndexes(tablet: string) {
  return runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tablet)), (_i, state) => {
    const q = state.storage.sql;
    return {
      indexes: q
        .exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('customer', 'corder') AND sql IS NOT NULL ORDER BY name")
        .toArray()
        .map((r) => r.sql),
      plan: q
        .exec<{ detail: string }>("EXPLAIN QUERY PLAN SELECT id FROM corder WHERE total = 7.25")
        .toArray()
        .map((r) => r.detail)
        .join("; "),
    };
  });
}

describe("movetables: secondary indexes", () => {
  it("creates the moved tables' indexes on every target shard; reads using them answer as the source did", async () => {
    const p = { source: "mi1", target: "mi2" };
    const m = moveModel();
    await setUpMove(p, 60, m, [...INDEXES, "CREATE UNIQUE INDEX settings_v ON settings (v)"]);
    await sql("CREATE TABLE clash (id INTEGER PRIMARY KEY)", undefined, p.source);
    await sql("CREATE INDEX customer_city ON clash (id)", undefined, p.source);
    await sql("CREATE TABLE customer_city (id INTEGER PRIMARY KEY)", undefined, p.target);
    const wf = moveWorkflow(p, "mv");

    // Refused, and nothing changes: a UNIQUE index into a sharded keyspace; an index named like a target table.
    const before = await topology();
    const uniq = await wf.call({ action: "create", kind: "movetables", sourceKeyspace: p.source, tables: ["settings"] });
    expect(uniq.body["error"]).toMatchObject({ code: "UNSUPPORTED", id: "VD2704" });
    const clash = await wf.call({ action: "create", kind: "movetables", sourceKeyspace: p.source, tables: ["clash"] });
    expect(clash.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(JSON.stringify(clash.body)).toContain("customer_city");
    expect(await topology()).toEqual(before);

    const want = {
      eq: (await sql("SELECT id FROM corder WHERE total = 7.25 ORDER BY id", undefined, p.source)).rows,
      range: (await sql("SELECT id, customer_id FROM corder WHERE total > 20 AND customer_id = 3 ORDER BY id", undefined, p.source)).rows,
      lower: (await sql("SELECT id FROM customer WHERE lower(name) = 'c17' ORDER BY id", undefined, p.source)).rows,
    };
    expect(want.eq).toEqual([[7]]);
    expect(want.lower).toEqual([[17]]);

    const c = await wf.call({ action: "create", kind: "movetables", sourceKeyspace: p.source, tables: ["customer", "corder"] });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    const t = await topology();
    for (const shard of ["-80", "80-"]) {
      const got = await shardIndexes(tabletOf(t, p.target, shard));
      expect(got.indexes, `indexes on ${shard}`).toEqual([...INDEXES].sort((a, b) => (a.split(" ")[2] ?? "").localeCompare(b.split(" ")[2] ?? "")));
      expect(got.plan, `plan on ${shard}`).toMatch(/USING (COVERING )?INDEX corder_total\b/);
    }
    await wf.until("caught up", caughtUp);
    expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
    for (const ks of [p.source, p.target]) {
      expect((await sql("SELECT id FROM corder WHERE total = 7.25 ORDER BY id", undefined, ks)).rows).toEqual(want.eq);
      expect((await sql("SELECT id, customer_id FROM corder WHERE total > 20 AND customer_id = 3 ORDER BY id", undefined, ks)).rows).toEqual(want.range);
      expect((await sql("SELECT id FROM customer WHERE lower(name) = 'c17' ORDER BY id", undefined, ks)).rows).toEqual(want.lower);
    }
    // Rows written after the switch are found through the indexes too.
    await sql("INSERT INTO corder (id, customer_id, total) VALUES (5000, 3, 7.25)", undefined, p.target);
    expect((await sql("SELECT id FROM corder WHERE total = 7.25 ORDER BY id", undefined, p.target)).rows).toEqual([...want.eq, [5000]]);
    expect((await wf.retried("complete"))["state"]).toBe("completed");
    const after = await topology();
    for (const shard of ["-80", "80-"]) expect((await shardIndexes(tabletOf(after, p.target, shard))).indexes).toHaveLength(INDEXES.length);
    const left = await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tabletOf(after, p.source, "-"))), (_i, state) =>
      state.storage.sql
        .exec<{ name: string }>(
          "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND name NOT LIKE '\\_vt\\_%' ESCAPE '\\' ORDER BY name",
        )
        .toArray()
        .map((r) => r.name),
    );
    expect(left).toEqual(["customer_city", "settings_v"]);
    expect((await api("POST", "/v1/sql", { keyspace: p.target, sql: "SELECT count(*) FROM corder WHERE total > 20" })).status).toBe(200);
  }, 60_000);
});
