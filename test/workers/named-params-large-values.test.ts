// Named parameters bind as SQLite binds them (`:a` and `@a` are two parameters), a statement
// past the 100 bound parameters keeps its largest values bound, and the messages and codes of
// two refusals say what they are.
import { describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

async function keyspace(name: string, shards: number): Promise<void> {
  expect((await api("POST", "/v1/keyspaces", { name, shards })).status).toBe(200);
}

describe("named parameters", () => {
  it("a key with its sigil binds exactly that placeholder; a bare key binds :a, @a and $a", async () => {
    await keyspace("np1", 2);
    expect((await sql("SELECT :a, @a", { ":a": 1, "@a": 2 }, "np1")).rows).toEqual([[1, 2]]);
    expect((await sql("SELECT :a, @a, $a", { a: 7 }, "np1")).rows).toEqual([[7, 7, 7]]);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "np1");
    await sql("INSERT INTO t VALUES (:id, @v)", { ":id": 1, "@v": "x" }, "np1");
    expect((await sql("SELECT v FROM t WHERE id = $id", { $id: 1 }, "np1")).rows).toEqual([["x"]]);
  });

  it("a bare and a prefixed key for one placeholder, or a key no placeholder takes, is INVALID_ARGUMENT", async () => {
    await keyspace("np2", 1);
    for (const params of [{ a: 1, ":a": 2 }, { "@a": 1 }, { a: 1, "@a": 2, ":a": 3 }, { ":a": 1, b: 2 }]) {
      const e = await sqlError("SELECT :a, @a", params, "np2");
      expect({ params, code: e.code }).toEqual({ params, code: "INVALID_ARGUMENT" });
    }
  });
});

describe("more than 100 params", () => {
  it("an UPDATE with 119 ids and a 300 KB text keeps the text bound and runs", async () => {
    await keyspace("bp1", 2);
    await sql("CREATE TABLE big (id INTEGER PRIMARY KEY, s TEXT)", undefined, "bp1");
    await sql("INSERT INTO big VALUES (1, 'a'), (50, 'b'), (119, 'c'), (500, 'd')", undefined, "bp1");
    const ids = Array.from({ length: 119 }, (_, i) => i + 1);
    const s = "x".repeat(300_000);
    const r = await sql(`UPDATE big SET s = ? WHERE id IN (${ids.map(() => "?").join(", ")})`, [s, ...ids], "bp1");
    expect(r.rowsAffected).toBe(3);
    expect((await sql("SELECT id, length(s) FROM big ORDER BY id", undefined, "bp1")).rows).toEqual([
      [1, 300_000],
      [50, 300_000],
      [119, 300_000],
      [500, 1],
    ]);
  });

  it("when the inlined values cannot fit, the answer is INVALID_ARGUMENT", async () => {
    await keyspace("bp2", 1);
    await sql("CREATE TABLE big (id INTEGER PRIMARY KEY, s TEXT)", undefined, "bp2");
    const texts = Array.from({ length: 120 }, () => "y".repeat(10_000));
    const e = await sqlError(`SELECT 1 FROM big WHERE s IN (${texts.map(() => "?").join(", ")})`, texts, "bp2");
    expect(e.code).toBe("INVALID_ARGUMENT");
  });
});

describe("codes of refusals", () => {
  it("ADD COLUMN with a CHECK the existing rows fail is CONSTRAINT, applied on no shard", async () => {
    await keyspace("ck1", 2);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, "ck1");
    await sql("INSERT INTO t VALUES (1), (2), (3), (4)", undefined, "ck1");
    const e = await sqlError("ALTER TABLE t ADD COLUMN c INTEGER DEFAULT 0 CHECK (c > 0)", undefined, "ck1");
    expect([e.code, e["applied"]]).toEqual(["CONSTRAINT", false]);
    expect((await sql("SELECT count(*) FROM pragma_table_info('t')", undefined, "ck1")).rows).toEqual([[1]]);
    await sql("ALTER TABLE t ADD COLUMN c INTEGER DEFAULT 1 CHECK (c > 0)", undefined, "ck1");
    expect((await sql("SELECT sum(c) FROM t", undefined, "ck1")).rows).toEqual([[4]]);
  });

  it("a _cf_ name is PERMISSION_DENIED", async () => {
    await keyspace("cf1", 1);
    expect((await sqlError("SELECT * FROM _cf_KV", undefined, "cf1")).code).toBe("PERMISSION_DENIED");
  });
});
