import { expect, it } from "vitest";
import { createCluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";

// DISTINCT aggregates over shards: shards also group by the DISTINCT argument, so each distinct
// value reaches the gate, which deduplicates across shards as SQLite compares values.
// group_concat joins the shards' partial strings (SQLite leaves element order arbitrary).
it("count/sum/avg/min/max(DISTINCT x) and group_concat over shards", async () => {
  const c = createCluster({ shards: 3, tables: { t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, g TEXT, x INTEGER, r REAL, s TEXT)", column: "id" } } });
  const rows = Array.from(
    { length: 60 },
    (_, i) => `(${i + 1}, 'g${i % 4}', ${i % 9 === 0 ? "NULL" : i % 7}, ${(i % 5) * 1.5}, ${i % 6 === 0 ? "NULL" : `'s${i % 3}'`})`,
  ).join(", ");
  const ins = `INSERT INTO t VALUES ${rows}`;
  c.reference(ins);
  await c.run(ins);
  for (const q of [
    "SELECT count(DISTINCT x) FROM t",
    "SELECT g, count(DISTINCT x), sum(DISTINCT x), avg(DISTINCT x), min(DISTINCT x), max(DISTINCT x), count(*), sum(r) FROM t GROUP BY g ORDER BY g",
    "SELECT g, count(DISTINCT r), total(DISTINCT r) FROM t GROUP BY g HAVING count(DISTINCT r) > 2 ORDER BY 1",
    "SELECT count(DISTINCT s), count(s) FROM t WHERE id > 100",
    "SELECT count(DISTINCT s) FROM t",
  ]) {
    expect(show((await c.run(q)).rows), q).toBe(show(c.reference(q).rows));
  }
  const parts = (v: unknown) => (typeof v === "string" ? v.split("|").sort().join("|") : v);
  for (const q of ["SELECT g, group_concat(s, '|') FROM t GROUP BY g ORDER BY g", "SELECT group_concat(x, '|') FROM t"]) {
    const act = (await c.run(q)).rows.map((r) => r.map(parts));
    const ref = c.reference(q).rows.map((r) => r.map(parts));
    expect(show(act), q).toBe(show(ref));
  }
  for (const q of ["SELECT count(DISTINCT x), count(DISTINCT g) FROM t", "SELECT group_concat(DISTINCT s) FROM t", "SELECT group_concat(s, g) FROM t"]) {
    await expect(c.run(q), q).rejects.toMatchObject({ code: "UNSUPPORTED" });
  }
});
