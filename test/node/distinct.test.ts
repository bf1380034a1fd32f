import { expect, it } from "vitest";
import { createCluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";
// SELECT DISTINCT over shards: each shard deduplicates, the gate merges and deduplicates again
// with SQLite equality (NULLs together, 1 = 1.0, the column's collation).
it("SELECT DISTINCT over shards answers what one SQLite answers", async () => {
  const c = createCluster({
    shards: 3,
    tables: { t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT COLLATE NOCASE, b TEXT, n REAL)", column: "id" } },
  });
  const ins =
    "INSERT INTO t VALUES (1, 'x', 'B', 1), (2, 'X', 'b', 1.0), (3, 'y', NULL, NULL), (4, 'Y', NULL, 2), (5, 'z', 'b', 2.5), (6, 'x', 'c', 1), (7, NULL, 'B', NULL), (8, 'Z', 'b', 3)";
  c.reference(ins);
  await c.run(ins);
  for (const q of [
    "SELECT DISTINCT b FROM t ORDER BY b",
    "SELECT DISTINCT n FROM t ORDER BY 1 DESC",
    "SELECT DISTINCT b, n FROM t ORDER BY b, n LIMIT 3 OFFSET 1",
    "SELECT DISTINCT n FROM t ORDER BY n LIMIT 2",
    "SELECT DISTINCT upper(b) AS u FROM t ORDER BY u",
    "SELECT DISTINCT * FROM t ORDER BY id LIMIT 4",
  ]) {
    const act = show((await c.run(q)).rows);
    const ref = show(c.reference(q).rows);
    expect(act, q).toBe(ref);
  }
  // Under NOCASE which spelling of an equal group is kept is unspecified: compare case-folded.
  const fold = (rows: unknown[][]) => show(rows).toLowerCase();
  expect(fold((await c.run("SELECT DISTINCT a FROM t ORDER BY a")).rows)).toBe(fold(c.reference("SELECT DISTINCT a FROM t ORDER BY a").rows));
  await expect(c.run("SELECT DISTINCT a FROM t ORDER BY n")).rejects.toMatchObject({ code: "UNSUPPORTED", id: "VD1013" });
});
