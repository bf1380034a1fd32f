// Spellings SQLite accepts that the gate used to refuse (or call a syntax error): every one now
// answers as on one SQLite, or, where the gate's parser cannot follow, a catalogued refusal.
import { beforeAll, describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

const KS = "spell";

beforeAll(async () => {
  expect((await api("POST", "/v1/keyspaces", { name: KS, shards: 2 })).status).toBe(200);
  const vschema = {
    sharded: true,
    vindexes: { xx: { type: "xxhash" } },
    tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] }, ch: { column_vindexes: [{ column: "id", name: "xx" }] } },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: KS, vschema })).status).toBe(200);
  await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)", undefined, KS);
  await sql("CREATE TABLE ch (id INTEGER PRIMARY KEY, code TEXT, UNIQUE (id, code))", undefined, KS);
  await sql("CREATE INDEX ch_code ON ch (code)", undefined, KS);
});

describe("schema PRAGMA statements take every spelling of their argument SQLite takes", () => {
  it("a bare, double-quoted, bracketed or backquoted name, a schema prefix and the = form read like 'users'", async () => {
    const expected = (await sql("PRAGMA table_info('users')", undefined, KS)).rows;
    expect(expected).toEqual([
      [0, "id", "INTEGER", 0, null, 1],
      [1, "name", "TEXT", 1, null, 0],
    ]);
    for (const q of [
      "PRAGMA table_info(users)",
      'PRAGMA table_info("users")',
      "PRAGMA table_info([users])",
      "PRAGMA table_info(`users`)",
      "PRAGMA main.table_info(users)",
      'PRAGMA "main".TABLE_INFO(users);',
      "pragma /* c */ table_info = users -- c",
    ]) {
      expect({ q, rows: (await sql(q, undefined, KS)).rows }).toEqual({ q, rows: expected });
    }
  });

  it("empty statements around a PRAGMA are nothing, as for SQLite and any other statement (;PRAGMA …;; answers it)", async () => {
    const expected = (await sql("PRAGMA table_info(users)", undefined, KS)).rows;
    for (const q of ["PRAGMA table_info(users);;", "PRAGMA table_info(users); ; -- c\n;", ";PRAGMA table_info(users)"]) {
      expect({ q, rows: (await sql(q, undefined, KS)).rows }).toEqual({ q, rows: expected });
    }
    const two = await sqlError("PRAGMA table_info(users);; SELECT 1", undefined, KS);
    expect(two.code).toBe("INVALID_ARGUMENT");
  });

  it("index_list, index_info of an autoindex and foreign_key_list take bare names", async () => {
    const list = (await sql("PRAGMA index_list(ch)", undefined, KS)).rows.map((r) => r[1]);
    expect(list.sort()).toEqual(["ch_code", "sqlite_autoindex_ch_1"]);
    expect((await sql("PRAGMA index_info(sqlite_autoindex_ch_1)", undefined, KS)).rows.map((r) => r[2])).toEqual(["id", "code"]);
    expect((await sql("PRAGMA foreign_key_list(ch)", undefined, KS)).rows).toEqual([]);
  });

  it("a system name stays unnamable in every spelling, and other PRAGMAs stay refused", async () => {
    for (const q of ["PRAGMA table_info(_vt_binlog)", 'PRAGMA table_info("_vt_binlog")', "PRAGMA table_info = _vt_binlog", "PRAGMA table_info('_vt_binlog')"]) {
      expect({ q, code: (await sqlError(q, undefined, KS)).code }).toEqual({ q, code: "PERMISSION_DENIED" });
    }
    const set = await sqlError("PRAGMA foreign_keys = 1", undefined, KS);
    expect([set.code, set["id"]]).toEqual(["UNSUPPORTED", "VD1084"]);
    const temp = await sqlError("PRAGMA temp.table_info(users)", undefined, KS);
    expect(temp.code).toBe("UNSUPPORTED");
    expect((await sqlError("PRAGMA table_info(users); SELECT 1", undefined, KS)).code).toBe("INVALID_ARGUMENT");
  });
});

describe("numbers, whitespace and comments as SQLite reads them", () => {
  it("1.e5, a form feed or vertical tab as whitespace and an unterminated block comment at the end run as on SQLite", async () => {
    expect((await sql("SELECT 1.e5, 2.E-1, 3.e+2", undefined, KS)).rows).toEqual([[100000, 0.2, 300]]);
    expect((await sql("SELECT\x0c1 \x0b+\x0c1\x0c", undefined, KS)).rows).toEqual([[2]]);
    expect((await sql("SELECT 1 /* x", undefined, KS)).rows).toEqual([[1]]);
    expect((await sql("SELECT name FROM users WHERE id = 1 /* x", undefined, KS)).rows).toEqual([]);
    // A form feed inside a string is the string's own.
    expect((await sql("SELECT length('a\x0cb')", undefined, KS)).rows).toEqual([[3]]);
  });

  it("a number ending with a point is refused with an id, never as a syntax error", async () => {
    const e = await sqlError("SELECT 1.", undefined, KS);
    expect([e.code, e["id"]]).toEqual(["UNSUPPORTED", "VD2005"]);
  });
});
