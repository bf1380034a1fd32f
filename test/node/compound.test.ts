import { expect, it } from "vitest";
import { createCluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";

// A compound SELECT over shards: each branch planned alone, combined at the gate as SQLite
// combines them (left to right), then the compound's own ORDER BY / LIMIT.
it("UNION ALL, UNION, INTERSECT and EXCEPT over shards answer what one SQLite answers", async () => {
  const c = createCluster({
    shards: 3,
    tables: {
      t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, n INTEGER)", column: "id" },
      u: { create: "CREATE TABLE u (id INTEGER PRIMARY KEY, b TEXT, m REAL)", column: "id" },
    },
  });
  for (const ins of [
    "INSERT INTO t VALUES (1, 'x', 1), (2, 'y', 2), (3, 'x', 3), (4, NULL, 4), (5, 'z', 1), (6, 'y', NULL)",
    "INSERT INTO u VALUES (1, 'x', 1.0), (2, 'w', 2.5), (7, 'z', 1), (8, NULL, NULL), (9, 'x', 3)",
  ]) {
    c.reference(ins);
    await c.run(ins);
  }
  const ordered = [
    "SELECT a FROM t UNION ALL SELECT b FROM u ORDER BY 1",
    "SELECT a FROM t UNION SELECT b FROM u ORDER BY a DESC",
    "SELECT a FROM t INTERSECT SELECT b FROM u ORDER BY 1",
    "SELECT a FROM t EXCEPT SELECT b FROM u ORDER BY 1",
    "SELECT n FROM t UNION SELECT m FROM u ORDER BY 1 LIMIT 3 OFFSET 1",
    "SELECT a, n FROM t WHERE id = 3 UNION ALL SELECT b, m FROM u WHERE id IN (1, 9) UNION SELECT a, n FROM t ORDER BY 2, 1",
    "SELECT n FROM t UNION ALL SELECT m FROM u UNION ALL SELECT count(*) FROM t ORDER BY 1 LIMIT ?",
  ];
  for (const q of ordered) {
    const params = q.includes("?") ? [4] : undefined;
    expect(show((await c.run(q, params)).rows), q).toBe(show(c.reference(q, params).rows));
  }
  const sorted = (rows: unknown[][]) =>
    rows
      .map((r) => show([r]))
      .sort()
      .join("\n");
  for (const q of ["SELECT a FROM t UNION ALL SELECT b FROM u", "SELECT a FROM t UNION SELECT b FROM u", "SELECT n FROM t EXCEPT SELECT m FROM u"]) {
    expect(sorted((await c.run(q)).rows), q).toBe(sorted(c.reference(q).rows));
  }
  await expect(c.run("SELECT a FROM t UNION SELECT b FROM u ORDER BY upper(a)")).rejects.toMatchObject({ code: "UNSUPPORTED", id: "VD1028" });
});
