// INSERT … SELECT across shards: the SELECT runs at the gate (any supported read), its rows are
// inserted on the shards of their vindex values; checked against one SQLite.

import { afterEach, describe, expect, it } from "vitest";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { diffResults, show } from "./result-compare.ts";

let c: Cluster | undefined;
afterEach(() => {
  c?.close();
  c = undefined;
});

async function setup(): Promise<Cluster> {
  c = createCluster({
    shards: 4,
    tables: {
      src: { create: "CREATE TABLE src (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, score REAL)", column: "id" },
      dst: { create: "CREATE TABLE dst (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, score REAL)", column: "id" },
      totals: { create: "CREATE TABLE totals (grp INTEGER PRIMARY KEY, n INTEGER, best REAL)", column: "grp" },
    },
  });
  const rows = Array.from({ length: 25 }, (_, i) => `(${i + 1}, ${i % 4}, 'n${i}', ${(i % 6) * 0.5})`).join(", ");
  await both(`INSERT INTO src VALUES ${rows}`);
  return c;
}

async function both(sql: string, params?: unknown[]): Promise<void> {
  if (!c) throw new Error("no cluster");
  const exp = c.reference(sql, params as never);
  const act = await c.run(sql, params as never);
  expect(act.rowsAffected, sql).toBe(exp.rowsAffected);
  expect(diffResults(act, exp, { ordered: false }), sql).toBeUndefined();
}

async function sameTable(table: string): Promise<void> {
  if (!c) throw new Error("no cluster");
  const sql = `SELECT * FROM ${table} ORDER BY 1`;
  expect(show((await c.run(sql)).rows)).toBe(show(c.reference(sql).rows));
  for (const shard of c.shardNames) {
    for (const [key] of c.onShard(shard, `SELECT * FROM ${table}`).rows) expect(c.shardOf(key ?? null)).toBe(shard);
  }
}

describe("INSERT … SELECT", () => {
  it("copies rows between sharded tables, each to its vindex shard", async () => {
    await setup();
    await both("INSERT INTO dst SELECT * FROM src WHERE grp = ?", [1]);
    await both("INSERT INTO dst (id, name) SELECT id + 100, upper(name) FROM src WHERE score > 1 ORDER BY id LIMIT 4");
    await sameTable("dst");
  });

  it("aggregates into a table sharded by another column; upsert and RETURNING apply per row", async () => {
    await setup();
    await both("INSERT INTO totals (grp, n, best) SELECT grp, count(*), max(score) FROM src GROUP BY grp");
    await both(
      "INSERT INTO totals (grp, n, best) SELECT grp, 1, 9.5 FROM src WHERE id IN (1, 2, 30) ON CONFLICT (grp) DO UPDATE SET n = n + excluded.n RETURNING grp, n",
    );
    await sameTable("totals");
  });

  it("an empty SELECT inserts nothing; a NULL INTEGER PRIMARY KEY vindex value takes an id past the statement's own ids", async () => {
    const cl = await setup();
    await both("INSERT INTO dst SELECT * FROM src WHERE id < 0");
    const r = await cl.run("INSERT INTO dst (id, name) SELECT CASE WHEN id = 5 THEN NULL ELSE id END, name FROM src");
    expect(r.rowsAffected).toBe(25);
    // SQLite would give the NULL row 5 (max(rowid)+1 at its turn); the gate gives one past every id the statement names.
    expect((await cl.run("SELECT id FROM dst WHERE name = 'n4'")).rows).toEqual([[26]]);
    expect((await cl.run("SELECT count(*), count(DISTINCT id) FROM dst")).rows).toEqual([[25, 25]]);
  });

  it("a gate join can feed it", async () => {
    await setup();
    await both("INSERT INTO dst SELECT * FROM src WHERE grp = 2");
    await both("INSERT INTO totals (grp, n) SELECT s.id + 1000, d.grp FROM src s JOIN dst d ON d.name = s.name");
    expect((await c?.run("SELECT count(*) FROM totals"))?.rows).toEqual([[6]]);
    await sameTable("totals");
  });
});
