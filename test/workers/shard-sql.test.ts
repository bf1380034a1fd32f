// What reaches a tablet is exactly what the gate checked: inlined literals never join the text
// around them into comments, text the gate's parser and SQLite read differently is refused,
// SQLite's catalog functions are refused, and the tablet itself runs one statement per query,
// naming no system object, and never lets a query change the schema. Each case here was a
// reproduced escape (answered 200, or a 500) before.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import type { QueryResult } from "../../contract/tablet-rpc.ts";
import { api, sql, sqlError } from "./helpers.ts";

type Topo = { keyspaces: { name: string; shards: { name: string; position: string }[] }[] };

async function positions(keyspace: string): Promise<Record<string, string>> {
  const t = await api<Topo>("GET", "/v1/topology");
  return Object.fromEntries((t.body.keyspaces.find((k) => k.name === keyspace)?.shards ?? []).map((s) => [s.name, s.position]));
}

function tablet(keyspace: string, shard: string) {
  return env.TABLET.get(env.TABLET.idFromName(`${keyspace}/${shard}`));
}

async function triggers(keyspace: string, shard: string): Promise<string[]> {
  return runInTablet(keyspace, shard, "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name");
}

/** Reads the tablet's own catalog directly (test only; user SQL can never do this). */
async function runInTablet(keyspace: string, shard: string, q: string): Promise<string[]> {
  return runInDurableObject(tablet(keyspace, shard), (_i, state) =>
    state.storage.sql
      .exec<{ name: string }>(q)
      .toArray()
      .map((r) => r.name),
  );
}

/**
 * `SELECT 1-? AS x, 7 IN (?, …) AS hit, '<tail>' AS tail` with 101 params, the first -5: past 100
 * the values are inlined, and `1-` followed by a bare `-5` would open a comment running to the
 * newline in the string. (The list keeps the result under Durable Object SQLite's 100 columns.)
 */
function injectionShape(tail: string): { sql: string; params: number[] } {
  const params = [-5, ...Array.from({ length: 100 }, (_, i) => i)];
  return {
    sql: `SELECT 1-? AS x, 7 IN (${params
      .slice(1)
      .map(() => "?")
      .join(", ")}) AS hit, '${tail}' AS tail`,
    params,
  };
}

async function shardedSetup(ks: string): Promise<string[]> {
  const r = await api("POST", "/v1/keyspaces", { name: ks, shards: 2 });
  expect(r.status).toBe(200);
  await sql("CREATE TABLE inj (id INTEGER PRIMARY KEY, v TEXT)", undefined, ks);
  await sql("INSERT INTO inj VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')", undefined, ks);
  return Object.keys(await positions(ks));
}

describe("inlined literals cannot inject", () => {
  it("a negative inlined value after `-` stays a value: the DELETE FROM _vt_binlog shape answers exactly and changes nothing", async () => {
    const shards = await shardedSetup("inj1");
    const before = await positions("inj1");
    const { sql: text, params } = injectionShape("\n; DELETE FROM _vt_binlog --");
    const r = await sql(text, params, "inj1");
    expect(r.rows).toEqual([[6, 1, "\n; DELETE FROM _vt_binlog --"]]);
    expect(await positions("inj1")).toEqual(before);
    for (const s of shards) expect(await triggers("inj1", s)).toEqual(["_vt_bl_d_inj", "_vt_bl_i_inj", "_vt_bl_u_inj"]);
  });

  it("the DROP TRIGGER shape keeps every binlog trigger, so later inserts still reach the binlog", async () => {
    const shards = await shardedSetup("inj2");
    const { sql: text, params } = injectionShape("\n; DROP TRIGGER _vt_bl_i_inj --");
    const r = await sql(text, params, "inj2");
    expect(r.rows[0]?.[0]).toBe(6);
    for (const s of shards) expect(await triggers("inj2", s)).toEqual(["_vt_bl_d_inj", "_vt_bl_i_inj", "_vt_bl_u_inj"]);
    const before = await positions("inj2");
    await sql("INSERT INTO inj VALUES (?, 'z')", [100], "inj2");
    const after = await positions("inj2");
    expect(Object.keys(after).filter((s) => after[s] !== before[s])).toHaveLength(1);
  });

  it("the reading shape (UNION over _vt_binlog) answers its own row only", async () => {
    await shardedSetup("inj3");
    const { sql: text, params } = injectionShape("\nUNION ALL SELECT seq FROM _vt_binlog --");
    const r = await sql(text, params, "inj3");
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]?.[0]).toBe(6);
  });

  it("a transactional batch with the injection shape runs as written: the insert commits once, the binlog keeps its events", async () => {
    const shards = await shardedSetup("inj4");
    const before = await positions("inj4");
    const { sql: text, params } = injectionShape("\n; DELETE FROM _vt_binlog; DELETE FROM inj --");
    const r = await api<{ results: { rows: unknown[][] }[] }>("POST", "/v1/batch", {
      keyspace: "inj4",
      transaction: true,
      statements: [{ sql: "INSERT INTO inj VALUES (1000, 'tx')" }, { sql: text, params }],
    });
    expect(r.status).toBe(200);
    expect(r.body.results[1]?.rows[0]?.[0]).toBe(6);
    expect((await sql("SELECT count(*) FROM inj", undefined, "inj4")).rows).toEqual([[5]]);
    const after = await positions("inj4");
    const moved = shards.filter((s) => after[s] !== before[s]);
    expect(moved).toHaveLength(1);
    // One insert event and one commit event, appended after the old position: nothing was reset.
    const [uid, seq] = (before[moved[0] ?? ""] ?? "").split(":");
    expect(after[moved[0] ?? ""]).toBe(`${uid}:${Number(seq) + 2}`);
  });

  it("a transactional batch whose second statement hides text behind `#` is refused whole: the first statement's insert is not applied", async () => {
    await shardedSetup("inj5");
    const before = await positions("inj5");
    const r = await api<{ error: { code: string; id: string; statementIndex: number } }>("POST", "/v1/batch", {
      keyspace: "inj5",
      transaction: true,
      statements: [
        { sql: "INSERT INTO inj VALUES (1000, 'tx')" },
        { sql: "SELECT 1 AS a, #x, (SELECT count(*) FROM _vt_binlog) AS leak,\n 2 AS b", params: [1] },
      ],
    });
    expect(r.body.error).toMatchObject({ code: "UNSUPPORTED", id: "VD2000", statementIndex: 1 });
    expect((await sql("SELECT count(*) FROM inj", undefined, "inj5")).rows).toEqual([[4]]);
    expect(await positions("inj5")).toEqual(before);
  });
});

describe("text the gate's parser and SQLite read differently is refused", () => {
  it("`#` is a parameter to SQLite, not a comment: the hidden _vt_binlog subquery is refused (it was a 500)", async () => {
    for (const params of [undefined, [1]]) {
      const e = await sqlError("SELECT 1 AS a, #x, (SELECT count(*) FROM _vt_binlog) AS leak,\n 2 AS b", params);
      expect(e).toMatchObject({ status: 400, code: "UNSUPPORTED", id: "VD2000", position: 15 });
    }
  });

  it("TCL-style $a(…) and a non-ASCII space are refused", async () => {
    expect(await sqlError("SELECT $a(x) AS v", { a: 1 })).toMatchObject({ code: "UNSUPPORTED", id: "VD2000" });
    expect(await sqlError("SELECT 1 AS\u00a0_vt_meta")).toMatchObject({ code: "UNSUPPORTED", id: "VD2000" });
  });
});

describe("SQLite's catalog table functions are refused in every spelling", () => {
  it("pragma_table_list, pragma_table_info, pragma_index_list, pragma_recursive_triggers and dbstat in an unsharded keyspace", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "cat1", shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE ct (id INTEGER PRIMARY KEY)", undefined, "cat1");
    // Schema PRAGMA functions answer from the keyspace's Catalog (its schema only, orm.e2e.test.ts):
    // no spelling describes a system object; every other PRAGMA function stays refused.
    const answered: [string, unknown[][]][] = [
      ["SELECT name FROM pragma_table_list ORDER BY name", [["ct"], ["sqlite_schema"], ["sqlite_temp_schema"]]],
      ["SELECT name FROM \"PRAGMA_TABLE_INFO\"('ct')", [["id"]]],
      ["SELECT * FROM [pragma_index_list]('ct')", []],
      ["SELECT (SELECT count(*) FROM pragma_table_list) AS n", [[3]]],
    ];
    for (const [c, rows] of answered) expect((await sql(c, undefined, "cat1")).rows, c).toEqual(rows);
    const refused: [string, Record<string, unknown>][] = [
      ["SELECT * FROM pragma_table_info('_vt_binlog')", { status: 403, code: "PERMISSION_DENIED" }],
      ["SELECT * FROM main.pragma_table_info('_vt_binlog')", { status: 400, code: "UNSUPPORTED", id: "VD1083" }],
      ["SELECT * FROM Pragma_Recursive_Triggers", { status: 400, code: "UNSUPPORTED", id: "VD1083" }],
      ["SELECT name FROM ct, pragma_table_list", { status: 400, code: "UNSUPPORTED", id: "VD2500" }],
    ];
    for (const [c, want] of refused) expect(await sqlError(c, undefined, "cat1"), c).toMatchObject(want);
    expect(await sqlError("SELECT * FROM dbstat", undefined, "cat1")).toMatchObject({ code: "UNSUPPORTED", id: "VD1082" });
    expect(await sqlError("SELECT * FROM sqlite_dbpage", undefined, "cat1")).toMatchObject({ code: "UNSUPPORTED", id: "VD1082" });
    expect((await sql("SELECT count(*) FROM ct", undefined, "cat1")).rows).toEqual([[0]]);
  });
});

describe("the tablet runs exactly one checked statement per query", () => {
  async function direct(ks: string, shard: string, q: string, kind: "read" | "write" = "write"): Promise<Envelope<QueryResult[]>> {
    // A version at least the tablet's: the target check passes and the query itself is judged.
    return tablet(ks, shard).execute({ keyspace: ks, shard, version: 1_000_000 }, [{ sql: q, params: [], kind }]);
  }

  it("refuses several statements in one query, and runs none of them", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "tab1", shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE tt (id INTEGER PRIMARY KEY)", undefined, "tab1");
    await sql("INSERT INTO tt VALUES (1)", undefined, "tab1");
    const before = await positions("tab1");
    const r = await direct("tab1", "-", "DELETE FROM tt; SELECT 1");
    expect(r).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect((await sql("SELECT count(*) FROM tt", undefined, "tab1")).rows).toEqual([[1]]);
    expect(await positions("tab1")).toEqual(before);
  });

  it("refuses a query naming a system object in any spelling, also as a string used as a name", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "tab2", shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE tt (id INTEGER PRIMARY KEY)", undefined, "tab2");
    for (const q of [
      "DELETE FROM _vt_binlog",
      'DELETE FROM "_VT_BINLOG"',
      "SELECT * FROM [_vt_meta]",
      "SELECT * FROM main.`_vt_binlog_cols`",
      "SELECT * FROM '_vt_binlog'",
    ]) {
      expect(await direct("tab2", "-", q), q).toMatchObject({ ok: false, error: { code: "PERMISSION_DENIED" } });
    }
    expect(await direct("tab2", "-", "SELECT * FROM sqlite_master", "read")).toMatchObject({ ok: false, error: { code: "UNSUPPORTED", id: "VD2004" } });
    expect(await direct("tab2", "-", "SELECT * FROM pragma_table_list", "read")).toMatchObject({ ok: false, error: { code: "UNSUPPORTED", id: "VD2004" } });
    expect(await direct("tab2", "-", "SELECT #a", "read")).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
  });

  it("refuses a query that would change the schema outside DDL (DROP, CREATE, PRAGMA): the table and its binlog triggers stay", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "tab3", shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE tt (id INTEGER PRIMARY KEY)", undefined, "tab3");
    await sql("INSERT INTO tt VALUES (1)", undefined, "tab3");
    for (const q of [
      "DROP TABLE tt",
      "CREATE TABLE zz (a)",
      "CREATE INDEX tt_i ON tt (id)",
      "PRAGMA recursive_triggers = OFF",
      "EXPLAIN SELECT 1",
      "(SELECT 1)",
    ]) {
      expect(await direct("tab3", "-", q), q).toMatchObject({ ok: false, error: { code: "PERMISSION_DENIED" } });
    }
    expect((await sql("SELECT count(*) FROM tt", undefined, "tab3")).rows).toEqual([[1]]);
    expect(await triggers("tab3", "-")).toEqual(["_vt_bl_d_tt", "_vt_bl_i_tt", "_vt_bl_u_tt"]);
    expect(await runInTablet("tab3", "-", "SELECT name FROM sqlite_master WHERE name IN ('zz', 'tt_i')")).toEqual([]);
  });
});

describe("deep nesting gets a catalogued limit, never a 500", () => {
  it("SELECT 1+1+… with 20,000 terms is refused with the tree-depth limit", async () => {
    const e = await sqlError(`SELECT ${Array(20_000).fill("1").join("+")}`);
    expect(e).toMatchObject({ status: 400, code: "UNSUPPORTED", id: "VD2002" });
  });

  it("a sum of 99 terms answers; 999 terms reach SQLite's own expression depth limit (100 in Durable Objects) as INVALID_ARGUMENT", async () => {
    expect((await sql(`SELECT ${Array(99).fill("1").join("+")} AS n`)).rows).toEqual([[99]]);
    expect(await sqlError(`SELECT ${Array(999).fill("1").join("+")} AS n`)).toMatchObject({ status: 400, code: "INVALID_ARGUMENT" });
  });

  it("parentheses nested 500 deep are refused with the nesting limit, not as a syntax error", async () => {
    const e = await sqlError(`SELECT ${"(".repeat(500)}1${")".repeat(500)}`);
    expect(e).toMatchObject({ status: 400, code: "UNSUPPORTED", id: "VD2001" });
    expect((await sql(`SELECT ${"(".repeat(100)}1${")".repeat(100)} AS n`)).rows).toEqual([[1]]);
  });

  it("CASE nested 2,000 deep (no parentheses) is refused as too deep for the gate", async () => {
    const e = await sqlError(`SELECT ${"CASE WHEN 1 THEN ".repeat(2000)}1${" END".repeat(2000)}`);
    expect(e).toMatchObject({ status: 400, code: "UNSUPPORTED" });
    expect(["VD2002", "VD2003"]).toContain(e["id"]);
  });
});
