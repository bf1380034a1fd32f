// Planner-level findings of the red team (see test/workers/red-team.test.ts for those through
// the real gate), each checked against one SQLite database holding every row, and the
// counterexamples the routing property found while they were fixed.

import { describe, expect, it } from "vitest";
import { clusterPerTest } from "./cluster-per-test.ts";
import type { Cluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";

const newCluster = clusterPerTest();

function cluster(): Cluster {
  return newCluster({
    shards: 4,
    tables: {
      t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)", column: "id" },
      s: { create: "CREATE TABLE s (code TEXT PRIMARY KEY, v)", column: "code" },
    },
  });
}

async function both(c: Cluster, sql: string): Promise<void> {
  await c.run(sql);
  c.reference(sql);
}

async function refusal(p: Promise<unknown>): Promise<{ code: unknown; id: unknown }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: unknown; id?: unknown };
    return { code: err.code, id: err.id };
  }
  throw new Error("expected a refusal");
}

describe("rowid across shards", () => {
  it("DELETE … WHERE rowid IN (1, 2) on a text-keyed table is refused, and no shard lost a row", async () => {
    const c = cluster();
    await both(c, "INSERT INTO s VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4), ('e', 5), ('f', 6)");
    expect(await refusal(c.run("DELETE FROM s WHERE rowid IN (1, 2)"))).toEqual({ code: "UNSUPPORTED", id: "VD2601" });
    expect(show((await c.run("SELECT count(*) FROM s")).rows)).toBe(show([[6]]));
  });

  it("a result column aliased oid (an order id, say) is a name, not the rowid (pinned: joins.test.ts)", async () => {
    const c = cluster();
    await both(c, "INSERT INTO s VALUES ('a', 1), ('b', 2)");
    const q = "SELECT code AS oid, v FROM s ORDER BY oid";
    expect(show((await c.run(q)).rows)).toBe(show(c.reference(q).rows));
  });

  it("WHERE on a name that is both a result alias and the rowid is refused: SQLite reads the rowid there", async () => {
    const c = cluster();
    await both(c, "INSERT INTO s VALUES ('a', 1), ('b', 2)");
    expect(await refusal(c.run("SELECT code AS oid FROM s WHERE oid = 1"))).toEqual({ code: "UNSUPPORTED", id: "VD2601" });
  });
});

describe("REAL literals in routing", () => {
  it("-9223372036854775808 is SQLite's smallest INTEGER and still routes to one shard (pinned: planner.routing.test.ts)", async () => {
    const c = cluster();
    await c.run("INSERT INTO t (id, a) VALUES (?, 'row')", [-9223372036854775808n]);
    const r = await c.run("SELECT id, a FROM t WHERE id = -9223372036854775808");
    expect(c.lastTouched).toEqual([c.shardOf(-9223372036854775808n)]);
    expect(show(r.rows)).toBe(show([[-9223372036854775808n, "row"]]));
  });

  it("UPDATE and DELETE WHERE code = 2.0 reach the row '2.0' wherever it lives, as in SQLite", async () => {
    const c = cluster();
    await both(c, "INSERT INTO s VALUES ('2', 'int'), ('2.0', 'real')");
    for (const q of [
      "UPDATE s SET v = 'hit' WHERE code = 2.0",
      "SELECT code, v FROM s ORDER BY code",
      "DELETE FROM s WHERE code IN (2.0)",
      "SELECT code, v FROM s ORDER BY code",
    ]) {
      const got = await c.run(q);
      const want = c.reference(q);
      expect({ q, rows: show(got.rows), n: got.rowsAffected }).toEqual({ q, rows: show(want.rows), n: want.rowsAffected });
    }
  });

  it("a multi-row INSERT with a REAL literal for a TEXT vindex column is refused before any shard is written", async () => {
    const c = cluster();
    expect(await refusal(c.run("INSERT INTO s VALUES ('x', 1), (2.5, 2)"))).toEqual({ code: "UNSUPPORTED", id: "VD2602" });
    expect(c.lastTouched).toEqual([]);
  });
});

describe("INSERT … SELECT into a TEXT column that places the row", () => {
  function withReals(): Cluster {
    return newCluster({
      shards: 4,
      vindexes: { email_idx: { type: "lookup_unique", params: { table: "u_email_idx", from: "email", to: "keyspace_id" }, owner: "u" } },
      tables: {
        s: { create: "CREATE TABLE s (code TEXT PRIMARY KEY, v)", column: "code" },
        r: { create: "CREATE TABLE r (id INTEGER PRIMARY KEY, x REAL, n INTEGER, b)", column: "id" },
        u: { create: "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT)", column: "id", secondary: [{ column: "email", name: "email_idx" }] },
        u_email_idx: { create: "CREATE TABLE u_email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", column: "email" },
      },
    });
  }

  it("a REAL from the SELECT (1.0 reads as the JS number 1) is refused with VD2603, not placed by '1' while SQLite stores '1.0'", async () => {
    const c = withReals();
    await both(c, "INSERT INTO r VALUES (1, 4.0, 4, 5.0), (2, 2.5, 3, 'z')");
    c.reference("INSERT INTO s (code, v) SELECT 1.0, 'lit'");
    expect(show(c.reference("SELECT code FROM s").rows)).toBe(show([["1.0"]]));
    for (const q of [
      "INSERT INTO s (code, v) SELECT 1.0, 'lit'",
      "INSERT INTO s (code, v) SELECT 2.5, 'lit'",
      "INSERT INTO s (code, v) SELECT x, id FROM r",
      "INSERT INTO s (code, v) SELECT b, id FROM r WHERE id = 1",
      "INSERT INTO s SELECT x * 1, 0 FROM r WHERE id = 1",
      "INSERT INTO u (id, email) SELECT id + 10, x FROM r",
    ]) {
      expect({ q, ...(await refusal(c.run(q))) }).toEqual({ q, code: "UNSUPPORTED", id: "VD2603" });
    }
    expect(show((await c.run("SELECT count(*) FROM s")).rows)).toBe(show([[0]]));
    expect(show((await c.run("SELECT count(*) FROM u")).rows)).toBe(show([[0]]));
  });

  it("integers, text, placeholders and CAST(… AS TEXT) are placed where SQLite stores them, and found", async () => {
    const c = withReals();
    await both(c, "INSERT INTO r VALUES (1, 4.0, 4, 5.0), (2, 2.5, 3, 'z')");
    for (const [q, params] of [
      ["INSERT INTO s (code, v) SELECT n, id FROM r", []],
      ["INSERT INTO s (code, v) SELECT CAST(x AS TEXT), id FROM r", []],
      ["INSERT INTO s (code, v) SELECT ?, 'p'", [7]],
      ["INSERT INTO s (code, v) SELECT 8, 'lit'", []],
      ["INSERT INTO s SELECT * FROM s WHERE code = 'nothing'", []],
      ["INSERT INTO u (id, email) SELECT id + 10, n FROM r", []],
    ] as const) {
      await c.run(q, params as never);
      c.reference(q, params as never);
    }
    for (const q of [
      "SELECT code, v FROM s WHERE code = '4.0'",
      "SELECT code, v FROM s WHERE code = '2.5'",
      "SELECT code, v FROM s WHERE code = 4",
      "SELECT code, v FROM s WHERE code = '7'",
      "SELECT code, v FROM s WHERE code = 8",
      "SELECT id, email FROM u WHERE email = '4'",
      "SELECT code, typeof(code) FROM s ORDER BY code",
    ]) {
      expect({ q, rows: show((await c.run(q)).rows) }).toEqual({ q, rows: show(c.reference(q).rows) });
    }
  });
});
