// INSERT … SELECT through real tablets writes the SELECT's values back exactly, judged against an
// unsharded keyspace (one Durable Object SQLite runs the statement as written): Durable Object
// SQLite hands a REAL 1.0 to JavaScript as 1, and the tablet says which integral numbers are REALs.

import { describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";

const SCHEMA = [
  "CREATE TABLE src (id INTEGER PRIMARY KEY, r REAL, n INTEGER, big INTEGER)",
  "CREATE TABLE dst (id INTEGER PRIMARY KEY, t TEXT, u, r REAL, n NUMERIC)",
];
const SEED =
  "INSERT INTO src (id, r, n, big) VALUES (1, 4.0, 4, 9007199254740993), (2, 2.5, 3, -9007199254740993), (3, -7.0, 0, 1), (4, NULL, 5, NULL), (5, 1e16, 6, 2)";
const READ = "SELECT id, quote(t), typeof(t), quote(u), typeof(u), quote(r), quote(n) FROM dst ORDER BY id";
const INSERTS = [
  "INSERT INTO dst (id, t, u, r, n) SELECT 1, 1.0, 1.0, 1.0, 1.0",
  "INSERT INTO dst (id, t, u, r, n) SELECT id + 10, r, r, r, r FROM src",
  "INSERT INTO dst (id, t, u, r, n) SELECT id + 20, n * 1.0, n * 1.0, n, n * 1.0 FROM src",
  "INSERT INTO dst (id, t, u, r, n) SELECT id + 30, big, big, big, big FROM src",
  "INSERT INTO dst (id, t, u) SELECT id + 40, 1e16, 2.0 FROM src WHERE id = 1",
  "INSERT INTO dst (id, t, u) SELECT id + 50, r, n FROM src WHERE id IN (1, 3) ORDER BY r LIMIT 5",
];

describe("INSERT … SELECT values through real tablets", () => {
  it("an integral REAL stays a REAL (TEXT '1.0', untyped REAL) and an integer beyond 2^53 stays exact, as in one SQLite", async () => {
    for (const [name, shards] of [
      ["isr_one", 1],
      ["isr_two", 2],
    ] as const) {
      expect((await api("POST", "/v1/keyspaces", { name, shards })).status).toBe(200);
      for (const s of [...SCHEMA, SEED, ...INSERTS]) await sql(s, undefined, name);
    }
    const one = await sql(READ, undefined, "isr_one");
    expect(one.rows.length).toBe(19);
    expect((await sql(READ, undefined, "isr_two")).rows).toEqual(one.rows);
  });
});
