import { expect, it } from "vitest";
import { createCluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";

// HAVING over shards: the gate combines each group's partial aggregates, then filters with
// SQLite's three-valued logic; aggregates only HAVING names are computed and dropped.
it("HAVING over shards answers what one SQLite answers", async () => {
  const c = createCluster({ shards: 3, tables: { t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, g TEXT, k INTEGER, n REAL)", column: "id" } } });
  const rows = Array.from(
    { length: 40 },
    (_, i) => `(${i + 1}, ${i % 7 === 0 ? "NULL" : `'g${i % 5}'`}, ${i % 3}, ${i % 4 === 0 ? "NULL" : (i * 1.5).toFixed(1)})`,
  ).join(", ");
  const ins = `INSERT INTO t VALUES ${rows}`;
  c.reference(ins);
  await c.run(ins);
  const queries = [
    "SELECT g, count(*) FROM t GROUP BY g HAVING count(*) > 6 ORDER BY g",
    "SELECT g, sum(n) AS s FROM t GROUP BY g HAVING s > 40 OR g IS NULL ORDER BY 1",
    "SELECT g FROM t GROUP BY g HAVING max(n) >= 50 AND min(k) = 0 ORDER BY g",
    "SELECT k, avg(n) FROM t GROUP BY k HAVING NOT (count(n) < 9) ORDER BY k",
    "SELECT g, k, count(*) FROM t GROUP BY g, k HAVING sum(n) IS NULL ORDER BY 1, 2",
    "SELECT count(*) FROM t HAVING count(*) > 100",
    "SELECT count(*) FROM t HAVING count(*) > 10",
    "SELECT g FROM t GROUP BY g HAVING g > 'g2' ORDER BY g",
    "SELECT k FROM t GROUP BY k HAVING k >= 1 ORDER BY k",
    "SELECT g, total(n) FROM t GROUP BY g HAVING total(n) <> 0 ORDER BY 2 DESC LIMIT 2",
  ];
  for (const q of queries) expect(show((await c.run(q)).rows), q).toBe(show(c.reference(q).rows));
  for (const q of [
    "SELECT k FROM t GROUP BY k HAVING k > '1'",
    "SELECT g FROM t GROUP BY g HAVING g > 1",
    "SELECT g FROM t GROUP BY g HAVING count(*) + 1 > 2",
    "SELECT g FROM t GROUP BY g HAVING k > 1",
  ]) {
    await expect(c.run(q), q).rejects.toMatchObject({ code: "UNSUPPORTED" });
  }
});
