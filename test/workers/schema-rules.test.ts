// Schema and vschema changes that would make answers wrong are refused: vindexes on missing
// columns, re-routing a table that holds rows, foreign keys SQLite cannot check on one shard,
// and virtual tables (their writes cannot reach the binlog).

import { describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

let n = 0;
async function keyspace(shards = 2): Promise<string> {
  const name = `rules${n++}`;
  expect((await api("POST", "/v1/keyspaces", { name, shards })).status).toBe(200);
  return name;
}

const XX = { xxhash: { type: "xxhash" } };

async function applyVSchema(ks: string, vschema: unknown): Promise<{ status: number; body: { error?: { code: string; id?: string; message: string } } }> {
  return api("POST", "/v1/vschema", { keyspace: ks, vschema });
}

describe("vschema changes", () => {
  it("a vindex on a column the table does not have is INVALID_ARGUMENT", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER)", undefined, ks);
    const r = await applyVSchema(ks, { sharded: true, vindexes: XX, tables: { t: { column_vindexes: [{ column: "nope", name: "xxhash" }] } } });
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe("INVALID_ARGUMENT");
  });

  it("a CREATE TABLE without the column its vschema entry names is INVALID_ARGUMENT and applied nowhere", async () => {
    const ks = await keyspace();
    expect((await applyVSchema(ks, { sharded: true, vindexes: XX, tables: { t: { column_vindexes: [{ column: "k", name: "xxhash" }] } } })).status).toBe(200);
    expect(await sqlError("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, ks)).toMatchObject({ code: "INVALID_ARGUMENT" });
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER)", undefined, ks);
  });

  it("moving a table holding rows onto another vindex column is refused (UNSUPPORTED VD2101) and every row stays reachable", async () => {
    const ks = await keyspace(4);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER)", undefined, ks);
    const rows = Array.from({ length: 20 }, (_, i) => `(${i + 1}, 7)`).join(", ");
    await sql(`INSERT INTO t VALUES ${rows}`, undefined, ks);
    const r = await applyVSchema(ks, { sharded: true, vindexes: XX, tables: { t: { column_vindexes: [{ column: "k", name: "xxhash" }] } } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "UNSUPPORTED", id: "VD2101" });
    expect((await sql("SELECT count(*) FROM t WHERE k = ?", [7], ks)).rows).toEqual([[20]]);
    // Not fenced afterwards.
    await sql("INSERT INTO t VALUES (100, 7)", undefined, ks);
  });

  it("changing the vindex type of a table holding rows is refused (VD2101)", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, ks);
    await sql("INSERT INTO t VALUES (1), (2), (3)", undefined, ks);
    const r = await applyVSchema(ks, {
      sharded: true,
      vindexes: { xxhash: { type: "numeric" } },
      tables: { t: { column_vindexes: [{ column: "id", name: "xxhash" }] } },
    });
    expect(r.body.error).toMatchObject({ code: "UNSUPPORTED", id: "VD2101" });
  });

  it("re-routing an empty table is allowed", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER)", undefined, ks);
    // per_shard: the primary key (id) then needs no keyspace-wide lookup, which the table lacks.
    expect(
      (await applyVSchema(ks, { sharded: true, vindexes: XX, tables: { t: { column_vindexes: [{ column: "k", name: "xxhash" }], unique: "per_shard" } } }))
        .status,
    ).toBe(200);
    await sql("INSERT INTO t VALUES (1, 5), (2, 6)", undefined, ks);
    expect((await sql("SELECT id FROM t WHERE k = 6", undefined, ks)).rows).toEqual([[2]]);
  });

  it("a vschema that leaves out a table holding rows keeps that table's entry", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, ks);
    await sql("INSERT INTO t VALUES (1), (2), (3)", undefined, ks);
    expect((await applyVSchema(ks, { sharded: true, vindexes: XX, tables: {} })).status).toBe(200);
    expect((await sql("SELECT id FROM t WHERE id = 2", undefined, ks)).rows).toEqual([[2]]);
  });
});

describe("foreign keys in a sharded keyspace", () => {
  it("a key whose parent may live on another shard is refused at CREATE TABLE (VD2102), not with CONSTRAINT on an insert whose parent exists", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)", undefined, ks);
    const e = await sqlError("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))", undefined, ks);
    expect(e).toMatchObject({ code: "UNSUPPORTED", id: "VD2102" });
  });

  it("a co-located key (child's vindex column → parent's) is checked on one shard exactly as SQLite does", async () => {
    const ks = await keyspace(4);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", undefined, ks);
    expect(
      (
        await applyVSchema(ks, {
          sharded: true,
          vindexes: XX,
          tables: { users: { column_vindexes: [{ column: "id", name: "xxhash" }] }, orders: { column_vindexes: [{ column: "user_id", name: "xxhash" }] } },
        })
      ).status,
    ).toBe(200);
    await sql("CREATE TABLE orders (id INTEGER, user_id INTEGER REFERENCES users(id) ON DELETE CASCADE, PRIMARY KEY (user_id, id))", undefined, ks);
    await sql("INSERT INTO users VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')", undefined, ks);
    await sql("INSERT INTO orders VALUES (10, 1), (11, 2), (12, 3), (13, 4)", undefined, ks);
    expect(await sqlError("INSERT INTO orders VALUES (14, 99)", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    await sql("DELETE FROM users WHERE id = 3", undefined, ks);
    expect((await sql("SELECT id FROM orders ORDER BY id", undefined, ks)).rows).toEqual([[10], [11], [13]]);
  });

  it("a key to a reference table needs ON DELETE CASCADE, so a parent delete applies on every copy alike", async () => {
    const ks = await keyspace();
    expect((await applyVSchema(ks, { sharded: true, vindexes: XX, tables: { countries: { type: "reference" } } })).status).toBe(200);
    await sql("CREATE TABLE countries (code TEXT PRIMARY KEY)", undefined, ks);
    expect(await sqlError("CREATE TABLE people (id INTEGER PRIMARY KEY, country TEXT REFERENCES countries(code))", undefined, ks)).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2102",
    });
    await sql("CREATE TABLE people (id INTEGER PRIMARY KEY, country TEXT REFERENCES countries(code) ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO countries VALUES ('fr'), ('de')", undefined, ks);
    await sql("INSERT INTO people VALUES (1, 'fr'), (2, 'de'), (3, 'fr'), (4, 'de')", undefined, ks);
    expect(await sqlError("INSERT INTO people VALUES (5, 'xx')", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    await sql("DELETE FROM countries WHERE code = 'fr'", undefined, ks);
    expect((await sql("SELECT id FROM people ORDER BY id", undefined, ks)).rows).toEqual([[2], [4]]);
  });

  it("ALTER TABLE … ADD COLUMN … REFERENCES a sharded table is refused (VD2102)", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE a (id INTEGER PRIMARY KEY)", undefined, ks);
    await sql("CREATE TABLE b (id INTEGER PRIMARY KEY)", undefined, ks);
    expect(await sqlError("ALTER TABLE b ADD COLUMN a_id INTEGER REFERENCES a(id)", undefined, ks)).toMatchObject({ code: "UNSUPPORTED", id: "VD2102" });
  });
});

describe("virtual tables", () => {
  it("CREATE VIRTUAL TABLE … USING fts5 in an unsharded keyspace is UNSUPPORTED (VD2104), not a 500, and leaves nothing behind", async () => {
    const ks = await keyspace(1);
    const e = await sqlError("CREATE VIRTUAL TABLE docs USING fts5(title, body)", undefined, ks);
    expect(e).toMatchObject({ status: 400, code: "UNSUPPORTED", id: "VD2104" });
    await sql("CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT)", undefined, ks);
    await sql("INSERT INTO docs VALUES (1, 'x')", undefined, ks);
  });
});
