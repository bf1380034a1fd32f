// Sequences end to end: a sequence table in an unsharded keyspace hands the gate blocks of ids
// for a sharded table's auto-increment column.

import { beforeAll, describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

beforeAll(async () => {
  expect((await api("POST", "/v1/keyspaces", { name: "seqs", shards: 1 })).status).toBe(200);
  expect((await api("POST", "/v1/keyspaces", { name: "app", shards: 4 })).status).toBe(200);
  await sql("CREATE TABLE user_seq (id INTEGER PRIMARY KEY, next_id INTEGER NOT NULL, cache INTEGER NOT NULL)", undefined, "seqs");
  await sql("INSERT INTO user_seq (id, next_id, cache) VALUES (0, 1000, 50)", undefined, "seqs");
  const seqVSchema = { sharded: false, tables: { user_seq: { type: "sequence" } } };
  expect((await api("POST", "/v1/vschema", { keyspace: "seqs", vschema: seqVSchema })).status).toBe(200);
  const vschema = {
    sharded: true,
    vindexes: { xx: { type: "xxhash" } },
    tables: { users: { column_vindexes: [{ column: "id", name: "xx" }], auto_increment: { column: "id", sequence: "user_seq" } } },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: "app", vschema })).status).toBe(200);
  await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", undefined, "app");
});

describe("sequences through the gate", () => {
  it("hands out unique ids from reserved blocks and places rows by them", async () => {
    const r = await sql("INSERT INTO users (name) VALUES ('ann'), ('bob'), ('cyd')", undefined, "app");
    expect(r.rowsAffected).toBe(3);
    await Promise.all(Array.from({ length: 10 }, (_, i) => sql("INSERT INTO users (id, name) VALUES (NULL, ?)", [`u${i}`], "app")));
    await sql(`INSERT INTO users (name) VALUES ${Array.from({ length: 60 }, (_, i) => `('bulk${i}')`).join(", ")}`, undefined, "app");
    const rows = (await sql("SELECT id FROM users ORDER BY id", undefined, "app")).rows.map((x) => x[0] as number);
    expect(rows.length).toBe(73);
    expect(new Set(rows).size).toBe(73);
    expect(rows[0]).toBe(1000);
    expect(rows.every((id) => id >= 1000)).toBe(true);
    // Blocks of 50 (and one of 60 for the bulk insert) were reserved on the sequence table.
    const seq = (await sql("SELECT next_id FROM user_seq", undefined, "seqs")).rows[0]?.[0] as number;
    expect(seq).toBeGreaterThanOrEqual(1073);
    expect((seq - 1000) % 10).toBe(0);
    // Each row is on the shard its id maps to: a point query finds it.
    for (const id of rows.slice(0, 5)) {
      expect((await sql("SELECT count(*) FROM users WHERE id = ?", [id], "app")).rows).toEqual([[1]]);
    }
  });

  it("an id that is already taken is skipped: the INSERT takes a new id past the table's max, and a moved next_id takes effect after the cached block", async () => {
    const k = (await sql("INSERT INTO users (name) VALUES ('probe') RETURNING id", undefined, "app")).rows[0]?.[0] as number;
    // Someone inserts the next cached id by hand, and moves the sequence past it.
    await sql("INSERT INTO users (id, name) VALUES (?, 'by hand')", [k + 1], "app");
    await sql("UPDATE user_seq SET next_id = 7000", undefined, "seqs");
    const clash = await sql("INSERT INTO users (name) VALUES ('clash') RETURNING id", undefined, "app");
    expect(clash.rows).toEqual([[k + 2]]);
    expect(clash.lastInsertRowid).toBe(k + 2);
    // The rest of the cached block (50 ids) is still this gate's; then the next block starts at 7000.
    const used = await sql(`INSERT INTO users (name) VALUES ${Array.from({ length: 50 }, (_, i) => `('fill${i}')`).join(", ")} RETURNING id`, undefined, "app");
    expect(Math.max(...used.rows.map((r) => r[0] as number))).toBeGreaterThanOrEqual(7000);
    expect((await sql("SELECT count(*) FROM users WHERE id = ?", [k + 1], "app")).rows).toEqual([[1]]);
  });

  it("a missing sequence is a clear error and writes nothing", async () => {
    const vschema = {
      sharded: true,
      vindexes: { xx: { type: "xxhash" } },
      tables: {
        users: { column_vindexes: [{ column: "id", name: "xx" }], auto_increment: { column: "id", sequence: "user_seq" } },
        things: { column_vindexes: [{ column: "id", name: "xx" }], auto_increment: { column: "id", sequence: "thing_seq" } },
      },
    };
    expect((await api("POST", "/v1/vschema", { keyspace: "app", vschema })).status).toBe(200);
    await sql("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)", undefined, "app");
    const e = await sqlError("INSERT INTO things (name) VALUES ('x')", undefined, "app");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain("thing_seq");
    expect((await sql("SELECT count(*) FROM things", undefined, "app")).rows).toEqual([[0]]);
  });

  it("a bad auto_increment is refused by vschema validation", async () => {
    const bad = {
      sharded: true,
      vindexes: { xx: { type: "xxhash" } },
      tables: { t: { column_vindexes: [{ column: "id", name: "xx" }], auto_increment: { column: "id" } } },
    };
    const r = await api<{ error: { code: string; message: string } }>("POST", "/v1/vschema", { keyspace: "app", vschema: bad });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("auto_increment.sequence");
  });
});
