// Lookup vindexes end to end: the lookup table in an unsharded keyspace, the owner table in a
// sharded one; the gate keeps the table in step and routes reads by the looked-up column.

import { beforeAll, describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

beforeAll(async () => {
  expect((await api("POST", "/v1/keyspaces", { name: "lk_idx", shards: 1 })).status).toBe(200);
  expect((await api("POST", "/v1/keyspaces", { name: "lk_app", shards: 4 })).status).toBe(200);
  await sql("CREATE TABLE email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", undefined, "lk_idx");
  const vschema = {
    sharded: true,
    vindexes: {
      xx: { type: "xxhash" },
      by_email: { type: "lookup_unique", params: { table: "lk_idx.email_idx", from: "email", to: "keyspace_id" }, owner: "users" },
    },
    tables: {
      users: {
        column_vindexes: [
          { column: "id", name: "xx" },
          { column: "email", name: "by_email" },
        ],
      },
    },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: "lk_app", vschema })).status).toBe(200);
  await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT)", undefined, "lk_app");
});

describe("lookup vindexes through the gate", () => {
  it("keeps the lookup table in step and reads by email", async () => {
    await sql("INSERT INTO users (id, email, name) VALUES (1, 'ann@x', 'ann'), (2, 'bob@x', 'bob'), (3, 'cyd@x', 'cyd')", undefined, "lk_app");
    const idx = await sql("SELECT email, hex(keyspace_id) FROM email_idx ORDER BY email", undefined, "lk_idx");
    expect(idx.rows.map((r) => r[0])).toEqual(["ann@x", "bob@x", "cyd@x"]);
    expect((await sql("SELECT id, name FROM users WHERE email = ?", ["bob@x"], "lk_app")).rows).toEqual([[2, "bob"]]);
    expect((await sql("SELECT count(*) FROM users WHERE email = 'zed@x'", undefined, "lk_app")).rows).toEqual([[0]]);
    const plan = String((await sql("VEXPLAIN SELECT id FROM users WHERE email = 'bob@x'", undefined, "lk_app")).rows[0]?.[0]);
    expect(plan).toContain("LookupResolve");
    const dup = await sqlError("INSERT INTO users (id, email) VALUES (9, 'ann@x')", undefined, "lk_app");
    expect(dup.code).toBe("CONSTRAINT");
    await sql("DELETE FROM users WHERE email = 'ann@x'", undefined, "lk_app");
    expect((await sql("SELECT email FROM email_idx ORDER BY email", undefined, "lk_idx")).rows).toEqual([["bob@x"], ["cyd@x"]]);
    await sql("INSERT INTO users (id, email) VALUES (9, 'ann@x')", undefined, "lk_app");
    expect((await sql("SELECT id FROM users WHERE email = 'ann@x'", undefined, "lk_app")).rows).toEqual([[9]]);
  });
});

describe("lookup vindexes: many rows in one statement", () => {
  it("a 120-row INSERT into a table owning a lookup_unique vindex answers success and keeps every lookup row", async () => {
    const rows = Array.from({ length: 120 }, (_, i) => 1000 + i);
    const placeholders = rows.map(() => "(?, ?)").join(", ");
    const res = await sql(
      `INSERT INTO users (id, email) VALUES ${placeholders}`,
      rows.flatMap((id) => [id, `many${id}@x`]),
      "lk_app",
    );
    expect(res.rowsAffected).toBe(120);
    expect((await sql("SELECT count(*) FROM email_idx WHERE email LIKE 'many%'", undefined, "lk_idx")).rows).toEqual([[120]]);
    expect((await sql("SELECT count(*) FROM users WHERE id >= 1000", undefined, "lk_app")).rows).toEqual([[120]]);
  });

  it("a 10-row INSERT into a table owning a lookup_unique vindex answers success (its re-read is not one compound SELECT)", async () => {
    const rows = Array.from({ length: 10 }, (_, i) => 2000 + i);
    const res = await sql(
      `INSERT INTO users (id, email) VALUES ${rows.map(() => "(?, ?)").join(", ")}`,
      rows.flatMap((id) => [id, `ten${id}@x`]),
      "lk_app",
    );
    expect(res.rowsAffected).toBe(10);
    expect((await sql("SELECT id FROM users WHERE email = 'ten2009@x'", undefined, "lk_app")).rows).toEqual([[2009]]);
  });
});
