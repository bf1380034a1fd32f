// Automatic sequences end to end: a sharded table's INTEGER PRIMARY KEY left out of an INSERT (or
// given NULL) gets an id unique in the keyspace from the Topology's counter for the table, with no
// vschema work, whether the key is the vindex column or not.

import { beforeAll, describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";

const KS = "autoids";

beforeAll(async () => {
  expect((await api("POST", "/v1/keyspaces", { name: KS, shards: 4 })).status).toBe(200);
  const vschema = {
    sharded: true,
    vindexes: { xx: { type: "xxhash" } },
    tables: { posts: { column_vindexes: [{ column: "author_id", name: "xx" }] } },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: KS, vschema })).status).toBe(200);
  await sql("CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL, title TEXT)", undefined, KS);
  // No vschema entry: CREATE TABLE shards it by id.
  await sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", undefined, KS);
});

async function ids(table: string): Promise<number[]> {
  return (await sql(`SELECT id FROM ${table} ORDER BY id`, undefined, KS)).rows.map((r) => r[0] as number);
}

describe("automatic ids for an omitted INTEGER PRIMARY KEY", () => {
  it("a table sharded by another column: ids unique across shards, RETURNING and lastInsertRowid give them", async () => {
    const one = await sql("INSERT INTO posts (author_id, title) VALUES (1, 'a') RETURNING id", undefined, KS);
    expect(one.rows).toEqual([[1]]);
    expect(one.lastInsertRowid).toBe(1);
    const many = await sql("INSERT INTO posts (author_id, title) VALUES (1, 'b'), (2, 'c'), (3, 'd'), (4, 'e') RETURNING id, author_id", undefined, KS);
    expect(many.rows.map((r) => r[0]).sort()).toEqual([2, 3, 4, 5]);
    expect(many.lastInsertRowid).toBe(5);
    expect(new Map(many.rows.map((r) => [r[1], r[0]])).get(4)).toBe(5);
    const nul = await sql("INSERT INTO posts (id, author_id, title) VALUES (NULL, 5, 'f'), (?, 6, 'g')", [null], KS);
    expect(nul.rowsAffected).toBe(2);
    expect(nul.lastInsertRowid).toBe(7);
    await sql("INSERT INTO posts (author_id, title) SELECT author_id + 10, title || '2' FROM posts WHERE author_id < 3", undefined, KS);
    expect(await ids("posts")).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Each row is found by its id (through the keyspace-wide key) and by its author (its shard).
    expect((await sql("SELECT title FROM posts WHERE id = 5", undefined, KS)).rows).toEqual([["e"]]);
    expect((await sql("SELECT id FROM posts WHERE author_id = 4", undefined, KS)).rows).toEqual([[5]]);
  });

  it("never gives an id a row holds: the INSERT that meets an explicit id takes ids past the table's max", async () => {
    await sql("INSERT INTO posts (id, author_id, title) VALUES (11, 7, 'x'), (12, 8, 'y'), (500, 9, 'z')", undefined, KS);
    const r = await sql("INSERT INTO posts (author_id, title) VALUES (7, 'after') RETURNING id", undefined, KS);
    expect(r.rows).toEqual([[501]]);
    const all = await ids("posts");
    expect(new Set(all).size).toBe(all.length);
  });

  it("a table created at runtime without a vschema entry numbers its rows too (its key is the vindex column)", async () => {
    const r = await sql("INSERT INTO notes (body) VALUES ('one'), ('two'), ('three') RETURNING id", undefined, KS);
    expect(r.rows.map((x) => x[0]).sort()).toEqual([1, 2, 3]);
    expect(r.lastInsertRowid).toBe(3);
    await sql("INSERT INTO notes (id, body) VALUES (4, 'explicit')", undefined, KS);
    const next = await sql("INSERT INTO notes (body) VALUES ('four') RETURNING id", undefined, KS);
    expect(next.rows).toEqual([[5]]);
    expect((await sql("SELECT body FROM notes WHERE id = 5", undefined, KS)).rows).toEqual([["four"]]);
    expect(await ids("notes")).toEqual([1, 2, 3, 4, 5]);
  });

  it("a table that held rows before its first omitted id starts past its max", async () => {
    await sql("CREATE TABLE old (id INTEGER PRIMARY KEY, v TEXT)", undefined, KS);
    await sql("INSERT INTO old (id, v) VALUES (40, 'a'), (41, 'b')", undefined, KS);
    const r = await sql("INSERT INTO old (v) VALUES ('c') RETURNING id", undefined, KS);
    expect(r.rows).toEqual([[42]]);
  });
  // Found by the end-to-end differential (seed 923327460): the row's given id is bound as a value,
  // and the literal -9223372036854775808 was read as minus a REAL, which an INTEGER PRIMARY KEY refuses.
  it("an explicit id written as the literal -9223372036854775808 is the smallest INTEGER, as on SQLite", async () => {
    const r = await api<{ lastInsertRowid?: unknown }>("POST", "/v1/sql", { keyspace: KS, sql: "REPLACE INTO notes VALUES (-9223372036854775808, 'min')" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.lastInsertRowid).toEqual({ int: "-9223372036854775808" });
    const back = await api<{ rows: unknown[][] }>("POST", "/v1/sql", {
      keyspace: KS,
      sql: "SELECT typeof(id), body FROM notes WHERE id = -9223372036854775808",
    });
    expect(back.body.rows).toEqual([["integer", "min"]]);
  });
});
