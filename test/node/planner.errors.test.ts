// What the gate refuses on a sharded keyspace, and with which catalogue code: constructs it
// cannot answer exactly across shards are UNSUPPORTED (never a wrong result), malformed requests
// are SYNTAX_ERROR / UNKNOWN_TABLE / PERMISSION_DENIED / INVALID_ARGUMENT.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VtError, type ErrorCode } from "../../contract/errors.ts";
import { createCluster, type Cluster, type Params } from "./fake-cursor.ts";

let c: Cluster;

beforeAll(async () => {
  c = createCluster({
    shards: 2,
    tables: {
      t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER)", column: "id" },
      u: { create: "CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INTEGER)", column: "id" },
      r: { create: "CREATE TABLE r (k INTEGER PRIMARY KEY, v TEXT)", reference: true },
      w: { create: "CREATE TABLE w (code TEXT PRIMARY KEY, a TEXT)", column: "code" },
    },
  });
  await c.run("INSERT INTO t VALUES (1, 'x', 1), (2, 'y', 2), (3, 'x', 3), (4, 'z', 4)");
});

afterAll(() => c.close());

/** The VtError `run` throws; fails the test when it answers instead or when it reached a shard. */
async function refusal(sql: string, params?: Params): Promise<VtError> {
  const before = c.cursor.calls.length;
  let answered: unknown;
  try {
    answered = await c.run(sql, params);
  } catch (e) {
    if (!(e instanceof VtError)) throw e;
    expect(c.cursor.calls.length, "a refused statement reaches no shard").toBe(before);
    return e;
  }
  throw new Error(`expected a refusal for ${sql}, got ${JSON.stringify(answered, (_, v: unknown) => (typeof v === "bigint" ? `${v}n` : v))}`);
}

describe("UNSUPPORTED on a 2-shard keyspace: refused, never answered", () => {
  const cases: readonly (readonly [string, string])[] = [
    ["RIGHT JOIN", "SELECT * FROM t RIGHT JOIN u ON u.t_id = t.id"],
    ["NATURAL JOIN", "SELECT * FROM t NATURAL JOIN u"],
    ["a parenthesized join", "SELECT * FROM t JOIN (u JOIN r ON u.id = r.k) ON u.t_id = t.id"],
    ["HAVING arithmetic over a gate join", "SELECT t.a, count(*) FROM t JOIN u ON u.t_id = t.id GROUP BY t.a HAVING count(*) + 1 > 2"],
    ["an aggregate of an expression over a gate join", "SELECT sum(u.id + 1) FROM t JOIN u ON u.t_id = t.id"],
    ["a cross join across shards", "SELECT * FROM t, u"],
    ["a gate join on a non-equality", "SELECT * FROM t JOIN u ON u.t_id < t.id"],
    ["an expression over both sides of a gate join", "SELECT t.b + u.id FROM t JOIN u ON u.t_id = t.id"],
    ["a gate join on columns of different affinity", "SELECT * FROM t JOIN u ON u.t_id = t.a"],
    ["WHERE on the right side of a gate LEFT JOIN", "SELECT * FROM t LEFT JOIN u ON u.t_id = t.id WHERE u.id > 1"],
    ["a LEFT JOIN condition on the left side alone", "SELECT * FROM t LEFT JOIN u ON u.t_id = t.id AND t.b > 1"],
    ["a reference table LEFT JOIN a sharded one, gate-joined on a mismatched affinity", "SELECT * FROM r LEFT JOIN t ON t.a = r.k"],
    // Uncorrelated subqueries are answered now (subqueries.test.ts); correlated ones stay refused:
    ["correlated subquery in WHERE", "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id)"],
    ["correlated scalar subquery", "SELECT id, (SELECT count(*) FROM u WHERE t_id = t.id) FROM t"],
    ["subquery in FROM", "SELECT * FROM (SELECT * FROM t)"],
    // Compound SELECTs are answered now (compound.test.ts); these stay refused:
    ["compound ORDER BY an expression", "SELECT id FROM t UNION SELECT id FROM u ORDER BY id + 1"],
    ["a compound branch with a correlated subquery", "SELECT id FROM t UNION ALL SELECT id FROM u WHERE EXISTS (SELECT 1 FROM t WHERE t.id = u.t_id)"],
    ["WITH RECURSIVE", "WITH RECURSIVE x(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM x WHERE n < 3) SELECT * FROM x"],
    ["a CTE with aggregates", "WITH x AS (SELECT a, count(*) FROM t GROUP BY a) SELECT * FROM x"],
    // Was answered UNKNOWN_TABLE (the CTE name was looked up as a table) until the gate was fixed.
    ["WITH before a DELETE", "WITH x AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM x)"],
    // SELECT DISTINCT of rows over shards is answered now (planner.differential.test.ts); these stay refused:
    ["SELECT DISTINCT with aggregates over shards", "SELECT DISTINCT count(*) FROM t GROUP BY a"],
    ["SELECT DISTINCT ordered by a term not selected", "SELECT DISTINCT a FROM t ORDER BY b"],
    // HAVING with comparisons of aggregates and grouped columns is answered now; these stay refused:
    ["HAVING with BETWEEN over shards", "SELECT a, count(*) FROM t GROUP BY a HAVING count(*) BETWEEN 1 AND 2"],
    ["HAVING on a column that is not grouped", "SELECT a, count(*) FROM t GROUP BY a HAVING b > 1"],
    ["window function over shards", "SELECT id, row_number() OVER (ORDER BY id) FROM t"],
    // DISTINCT aggregates over one expression and group_concat are answered now (distinct-aggregates.test.ts):
    ["DISTINCT aggregates over two expressions", "SELECT count(DISTINCT a), count(DISTINCT b) FROM t"],
    ["group_concat(DISTINCT x) over shards", "SELECT group_concat(DISTINCT a) FROM t"],
    ["group_concat with a column as separator", "SELECT b, group_concat(a, b) FROM t GROUP BY b"],
    ["UPDATE of the vindex column", "UPDATE t SET id = 5 WHERE id = 1"],
    ["UPDATE of the vindex column in a row value", "UPDATE t SET (a, id) = ('q', 5) WHERE id = 1"],
    ["UPDATE of the vindex column over shards", "UPDATE t SET id = id + 100"],
    ["a subquery in INSERT … VALUES", "INSERT INTO t (id, a, b) VALUES ((SELECT max(id) FROM t) + 1, 'x', 1)"],
    ["ON CONFLICT DO UPDATE SET id = …", "INSERT INTO t (id, a) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET id = excluded.id + 1"],
    ["random() in an INSERT into a reference table", "INSERT INTO r (k, v) VALUES (random(), 'one')"],
    ["time in an UPDATE of a reference table", "UPDATE r SET v = datetime('now') WHERE k = 1"],
    ["a subquery in a DELETE from a reference table", "DELETE FROM r WHERE k IN (SELECT id FROM t)"],
    // Introspection (sqlite_master, PRAGMA table_info) runs on the keyspace's Catalog (workers orm.e2e.test.ts).
    ["sqlite_sequence", "SELECT * FROM sqlite_sequence"],
    ["sqlite_master joined with a table", "SELECT * FROM t JOIN sqlite_master m ON m.name = t.a"],
    ["a PRAGMA that sets state", "PRAGMA foreign_keys = ON"],
  ];

  it.each(cases)("%s: %s", async (_what, sql) => {
    const e = await refusal(sql);
    expect(e.code, e.message).toBe("UNSUPPORTED");
  });
});

describe("errors carry the catalogue code", () => {
  const cases: readonly (readonly [string, string, Params | undefined, ErrorCode])[] = [
    ["unknown table", "SELECT * FROM nope", undefined, "UNKNOWN_TABLE"],
    ["unknown table in INSERT", "INSERT INTO nope (id) VALUES (1)", undefined, "UNKNOWN_TABLE"],
    ["unknown table in DELETE", "DELETE FROM nope WHERE id = 1", undefined, "UNKNOWN_TABLE"],
    ["a _vt system table", "SELECT * FROM _vt_binlog", undefined, "PERMISSION_DENIED"],
    ["a _vt system table in a write", "DELETE FROM _vt_binlog", undefined, "PERMISSION_DENIED"],
    ["two statements in one string", "SELECT * FROM t; SELECT * FROM u", undefined, "INVALID_ARGUMENT"],
    ["a placeholder without a param", "SELECT * FROM t WHERE id = ?", [], "INVALID_ARGUMENT"],
    ["more params than placeholders", "SELECT * FROM t WHERE id = ?", [1, 2], "INVALID_ARGUMENT"],
    ["params but no placeholder", "SELECT * FROM t", [1], "INVALID_ARGUMENT"],
    ["?NNN beyond the params", "SELECT * FROM t WHERE id = ?2", [1], "INVALID_ARGUMENT"],
    ["a named placeholder without its param", "SELECT * FROM t WHERE id = :id", { other: 1 }, "INVALID_ARGUMENT"],
    ["a named placeholder given an array", "SELECT * FROM t WHERE id = :id", [1], "INVALID_ARGUMENT"],
    ["too few params for an INSERT", "INSERT INTO t (id, a) VALUES (?, ?)", [1], "INVALID_ARGUMENT"],
  ];

  it.each(cases)("%s → %s", async (_what, sql, params, code) => {
    const e = await refusal(sql, params);
    expect(e.code, e.message).toBe(code);
  });

  it.each([
    ["INSERT without the vindex column", "INSERT INTO w (a) VALUES ('x')", "VD2604"],
    ["INSERT with a NULL vindex value", "INSERT INTO w (code, a) VALUES (NULL, 'x')", "VD2605"],
    ["INSERT with integer text SQLite converts", "INSERT INTO t (id, a) VALUES (?, 'x')", "VD2606"],
    ["INSERT … DEFAULT VALUES", "INSERT INTO w DEFAULT VALUES", "VD2607"],
  ] as const)("%s (which SQLite accepts) is UNSUPPORTED naming why: %s", async (_what, sql, id) => {
    const e = await refusal(sql, sql.includes("?") ? ["2.0"] : undefined);
    expect({ code: e.code, id: e["id"] }).toEqual({ code: "UNSUPPORTED", id });
  });

  it("SELEC 1 is a SYNTAX_ERROR with a numeric position", async () => {
    const e = await refusal("SELEC 1");
    expect(e.code).toBe("SYNTAX_ERROR");
    expect(typeof e["position"]).toBe("number");
    expect(e["position"]).toBe(0);
  });

  it("a syntax error further in points at the offending character", async () => {
    const sql = "SELECT id FROM t WHERE id = = 1";
    const e = await refusal(sql);
    expect(e.code).toBe("SYNTAX_ERROR");
    expect(typeof e["position"]).toBe("number");
    expect(e["position"]).toBe(sql.indexOf("= 1"));
  });

  it("a refused statement changes nothing", async () => {
    const before = (await c.run("SELECT * FROM t ORDER BY id")).rows;
    await refusal("UPDATE t SET id = 9 WHERE id = 1");
    await refusal("INSERT INTO t (id, a, b) VALUES ((SELECT max(id) FROM t) + 1, 'x', 1)");
    expect((await c.run("SELECT * FROM t ORDER BY id")).rows).toEqual(before);
  });
});
