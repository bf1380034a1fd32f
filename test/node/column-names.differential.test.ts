// Result column names are SQLite's: whatever the gate rewrites in a statement (placeholders bound
// as `(? + 0)`, literals it inlines, the `_vtg_` aliases and partial aggregates it adds, the
// quote() copies of RETURNING items), the answer names each column as one SQLite database
// running the statement as written would. The oracle is node:sqlite holding every row.

import { describe, expect, it } from "vitest";
import { clusterPerTest } from "./cluster-per-test.ts";
import type { Cluster, Params } from "./fake-cursor.ts";

const newCluster = clusterPerTest();

function cluster(): Cluster {
  return newCluster({
    shards: 4,
    tables: {
      t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, x REAL, g INTEGER)", column: "id" },
      u: { create: "CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INTEGER, b TEXT)", column: "id" },
      ref: { create: "CREATE TABLE ref (k INTEGER PRIMARY KEY, name TEXT)", reference: true },
    },
  });
}

async function load(c: Cluster): Promise<void> {
  for (const q of [
    "INSERT INTO t VALUES (1, 'a', 1.5, 1), (2, 'b', 2.5, 1), (3, 'c', 3.5, 2), (4, 'd', 4.5, 2), (5, 'e', 5.5, 3)",
    "INSERT INTO u VALUES (1, 1, 'x'), (2, 2, 'y'), (3, 3, 'z')",
    "INSERT INTO ref VALUES (1, 'one'), (2, 'two')",
  ]) {
    await c.run(q);
    c.reference(q);
  }
}

const READS: readonly (readonly [string, Params?])[] = [
  ["SELECT ?, id FROM t WHERE id = 1", [5]],
  ["SELECT ? FROM t ORDER BY id", [7]],
  ["SELECT ?1, ?1 + id, ?2 FROM t WHERE id = 2", [3, 4]],
  ["SELECT id, :n AS n2, $m FROM t WHERE id = :k", { n: 1, m: 2, k: 3 }],
  ["SELECT id + ? FROM t WHERE id IN (1, 2) ORDER BY 1", [10]],
  ["SELECT -?, ? || a FROM t WHERE id = 3", [2, "p"]],
  ["SELECT 1, 'a', id + 1, x * 2.0 FROM t WHERE id = ?", [1]],
  ["SELECT id, a FROM t WHERE id = ? ORDER BY a", [2]],
  ["SELECT t.id, T.a, ID FROM t ORDER BY 1", []],
  ["SELECT * FROM t ORDER BY id LIMIT 2", []],
  ["SELECT sum(x), count(*), avg(x), total(id), min(a), max( id ) FROM t", []],
  ["SELECT g, sum(x + ?), count(*) FROM t GROUP BY g ORDER BY g", [1]],
  ["SELECT g, sum(id) FROM t GROUP BY g HAVING sum(id) > ? ORDER BY sum(id) DESC", [2]],
  ["SELECT a FROM t ORDER BY x * ? DESC LIMIT 3", [-1]],
  ["SELECT DISTINCT g FROM t ORDER BY g", []],
  ["SELECT count(DISTINCT g) FROM t", []],
  ["SELECT group_concat(a, '-') FROM t WHERE id < ?", [3]],
  ["SELECT t.id, u.b, ? FROM t JOIN u ON u.t_id = t.id ORDER BY t.id", [9]],
  ["SELECT t.a, r.name FROM t JOIN ref r ON r.k = t.g ORDER BY t.id", []],
  ["SELECT id, ? FROM t WHERE id = 1 UNION ALL SELECT id, ? FROM u WHERE id = 2", [1, 2]],
  ["SELECT id FROM t WHERE id IN (SELECT t_id FROM u WHERE id < ?) ORDER BY id", [3]],
  ["SELECT id, row_number() OVER (PARTITION BY id) FROM t ORDER BY id", []],
  ["SELECT (?) FROM t WHERE id = 1", [1]],
  ["SELECT ?   +   1 FROM t WHERE id = 1", [1]],
  ["SELECT CASE WHEN id = ? THEN 'y' ELSE 'n' END FROM t ORDER BY id", [2]],
];

describe("result column names are SQLite's", () => {
  it("reads: placeholders, literals, aggregates, joins and compounds name their columns as SQLite does", async () => {
    const c = cluster();
    await load(c);
    const diffs: string[] = [];
    for (const [q, params] of READS) {
      const want = c.reference(q, params).columns;
      let got: readonly string[];
      try {
        got = (await c.run(q, params)).columns;
      } catch (e) {
        const err = e as { code?: string; id?: string };
        if (err.code === "UNSUPPORTED") continue;
        throw e;
      }
      if (JSON.stringify(got) !== JSON.stringify(want)) diffs.push(`${q}: got ${JSON.stringify(got)}, SQLite ${JSON.stringify(want)}`);
    }
    expect(diffs).toEqual([]);
  });

  it("a statement with more values than the tablet binds (inlined literals) names its columns as written", async () => {
    const c = cluster();
    await load(c);
    const n = 120;
    const q = `SELECT ${Array.from({ length: n }, () => "?").join(", ")} FROM t WHERE id = 1`;
    const params = Array.from({ length: n }, (_, i) => i);
    expect((await c.run(q, params)).columns).toEqual(c.reference(q, params).columns);
  });

  it("writes: RETURNING items name their columns as SQLite does", async () => {
    const c = cluster();
    await load(c);
    const diffs: string[] = [];
    for (const [q, params] of [
      ["INSERT INTO t VALUES (10, 'k', 1.0, 1) RETURNING id, ?, x * 2, a AS aa", [3]],
      ["UPDATE t SET a = ? WHERE id = 1 RETURNING id, a, ? + 1", ["q", 4]],
      ["DELETE FROM t WHERE id = 2 RETURNING *, ?", [5]],
      ["INSERT INTO t (id, a) VALUES (?, ?) RETURNING rowid, id, a", [11, "r"]],
    ] as const) {
      const got = (await c.run(q, params as unknown as Params)).columns;
      const want = c.reference(q, params as unknown as Params).columns;
      if (JSON.stringify(got) !== JSON.stringify(want)) diffs.push(`${q}: got ${JSON.stringify(got)}, SQLite ${JSON.stringify(want)}`);
    }
    expect(diffs).toEqual([]);
  });
});
