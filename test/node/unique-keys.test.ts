// Keyspace-wide UNIQUE / PRIMARY KEY constraints over in-memory shards (fake-cursor.ts): a key
// without the vindex column is refused wherever the other row lives, as one SQLite would, unless
// the table's vschema says "unique": "per_shard".

import { describe, expect, it } from "vitest";
import type { SqlValue } from "../../contract/sql-values.ts";
import { clusterPerTest, idsOnTwoShards } from "./cluster-per-test.ts";
import type { Cluster, TableSpec } from "./fake-cursor.ts";

const newCluster = clusterPerTest();

function make(tables: Record<string, TableSpec>, shards = 4): Cluster {
  return newCluster({ shards, tables });
}

const users = (extra: Partial<TableSpec> = {}): Record<string, TableSpec> => ({
  users: { create: "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)", column: "id", ...extra },
});

async function refused(p: Promise<unknown>): Promise<{ code?: string; id?: string; committedShards?: unknown }> {
  return p.then(
    () => ({ code: "none" }),
    (e: unknown) => e as { code?: string; id?: string },
  );
}

async function count(cl: Cluster, sql: string, params?: SqlValue[]): Promise<unknown> {
  return (await cl.run(sql, params)).rows[0]?.[0];
}

describe("keyspace-wide unique keys", () => {
  it("refuses a duplicate UNIQUE email whose other row lives on another shard", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, ?)", [a, "x@x"]);
    expect(await refused(cl.run("INSERT INTO users (id, email) VALUES (?, ?)", [b, "x@x"]))).toMatchObject({ code: "CONSTRAINT" });
    expect(await count(cl, "SELECT count(*) FROM users")).toBe(1);
  });

  it("refuses a duplicate PRIMARY KEY of a table sharded by another column (posts by author)", async () => {
    const cl = make({ posts: { create: "CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL, title TEXT)", column: "author_id" } });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO posts (id, author_id, title) VALUES (10, ?, 'one')", [a]);
    expect(await refused(cl.run("INSERT INTO posts (id, author_id, title) VALUES (10, ?, 'two')", [b]))).toMatchObject({ code: "CONSTRAINT" });
    await cl.run("INSERT INTO posts (id, author_id, title) VALUES (11, ?, 'two')", [b]);
    expect((await cl.run("SELECT id, title FROM posts ORDER BY id")).rows).toEqual([
      [10, "one"],
      [11, "two"],
    ]);
  });

  it("refuses a duplicate within one multi-row INSERT and writes none of its rows", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    expect(await refused(cl.run("INSERT INTO users (id, email) VALUES (?, 'd@x'), (?, 'd@x')", [a, b]))).toMatchObject({ code: "CONSTRAINT" });
    expect(await count(cl, "SELECT count(*) FROM users")).toBe(0);
    // Its lookup rows went too: the value is free.
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'd@x')", [b]);
  });

  it("a 120-row INSERT keeps every key, and the next duplicate of any of them is refused", async () => {
    const cl = make(users());
    const ids = Array.from({ length: 120 }, (_, i) => i + 1);
    const r = await cl.run(
      `INSERT INTO users (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((i) => [i, `u${i}@x`]),
    );
    expect(r.rowsAffected).toBe(120);
    expect(await refused(cl.run("INSERT INTO users (id, email) VALUES (500, 'u77@x')"))).toMatchObject({ code: "CONSTRAINT" });
  });

  it("a DELETE frees its rows' values for other shards", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x')", [a]);
    await cl.run("DELETE FROM users WHERE email = 'x@x'");
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x')", [b]);
    expect((await cl.run("SELECT id FROM users WHERE email = 'x@x'")).rows).toEqual([[b]]);
  });

  it("NULLs never collide", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, NULL), (?, NULL)", [a, b]);
    await cl.run("INSERT INTO users (id) VALUES (?)", [a + 100]);
    expect(await count(cl, "SELECT count(*) FROM users WHERE email IS NULL")).toBe(3);
  });

  it("a NOCASE unique column collides case-insensitively, as SQLite does", async () => {
    const cl = make({ users: { create: "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE UNIQUE)", column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'Ann@X')", [a]);
    expect(await refused(cl.run("INSERT INTO users (id, email) VALUES (?, 'ann@x')", [b]))).toMatchObject({ code: "CONSTRAINT" });
  });

  it("a multi-column key collides only on the whole tuple; a NULL part never collides", async () => {
    const cl = make({ m: { create: "CREATE TABLE m (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, UNIQUE (a, b))", column: "id" } });
    const [x, y] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO m (id, a, b) VALUES (?, 1, 'p')", [x]);
    await cl.run("INSERT INTO m (id, a, b) VALUES (?, 1, 'q')", [y]);
    await cl.run("INSERT INTO m (id, a, b) VALUES (?, 1, NULL), (?, 1, NULL)", [x + 100, y + 100]);
    expect(await refused(cl.run("INSERT INTO m (id, a, b) VALUES (?, 1, 'p')", [y + 200]))).toMatchObject({ code: "CONSTRAINT" });
    expect(await count(cl, "SELECT count(*) FROM m")).toBe(4);
  });

  it("integers and integral reals are the same key; an INTEGER column's '5' is refused, not keyed as text", async () => {
    const cl = make({ m: { create: "CREATE TABLE m (id INTEGER PRIMARY KEY, n NUMERIC UNIQUE)", column: "id" } });
    const [x, y] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO m (id, n) VALUES (?, 5)", [x]);
    expect(await refused(cl.run("INSERT INTO m (id, n) VALUES (?, 5.0)", [y]))).toMatchObject({ code: "CONSTRAINT" });
    expect(await refused(cl.run("INSERT INTO m (id, n) VALUES (?, '5')", [y]))).toMatchObject({ code: "UNSUPPORTED", id: "VD2400" });
  });

  it('"unique": "per_shard" keeps per-shard semantics: a duplicate on another shard is accepted', async () => {
    const cl = make(users({ unique: "per_shard" }));
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x')", [a]);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x')", [b]);
    expect(await count(cl, "SELECT count(*) FROM users WHERE email = 'x@x'")).toBe(2);
  });

  it("an INSERT leaving out the INTEGER PRIMARY KEY of a table sharded by another column gets keyspace-unique ids", async () => {
    const cl = make({ posts: { create: "CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL)", column: "author_id" } });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO posts (id, author_id) VALUES (3, ?)", [b]);
    const one = await cl.run("INSERT INTO posts (author_id) VALUES (?) RETURNING id", [a]);
    expect(one.rows).toEqual([[4]]);
    expect(one.lastInsertRowid).toBe(4);
    const two = await cl.run("INSERT INTO posts (id, author_id) VALUES (?, ?), (NULL, ?) RETURNING id", [null, a, b]);
    expect(two.rows.map((r) => r[0]).sort()).toEqual([5, 6]);
    expect(two.lastInsertRowid).toBe(6);
    expect((await cl.run("SELECT id FROM posts ORDER BY id")).rows).toEqual([[3], [4], [5], [6]]);
  });

  it("an id the sequence hands out that an explicit id took meanwhile is skipped, never stored twice", async () => {
    const cl = make({ posts: { create: "CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL)", column: "author_id" } });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO posts (author_id) VALUES (?)", [a]); // id 1; the sequence's next is 2
    await cl.run("INSERT INTO posts (id, author_id) VALUES (2, ?), (3, ?)", [b, a]);
    const r = await cl.run("INSERT INTO posts (author_id) VALUES (?) RETURNING id", [b]);
    expect(r.rows).toEqual([[4]]);
    expect(await refused(cl.run("INSERT OR IGNORE INTO posts (id, author_id) VALUES (4, ?)", [a]))).toMatchObject({ code: "none" });
    // A conflict-resolving INSERT checks its fresh id is free first: OR IGNORE would skip the row, REPLACE overwrite another.
    await cl.run("INSERT INTO posts (id, author_id) VALUES (5, ?)", [a]);
    cl.cursor.sequences.set("auto posts", 5);
    const kept = await cl.run("INSERT OR IGNORE INTO posts (author_id) VALUES (?) RETURNING id", [b]);
    expect(kept.rows).toEqual([[6]]);
    cl.cursor.sequences.set("auto posts", 6);
    await cl.run("REPLACE INTO posts (author_id) VALUES (?)", [a]);
    expect((await cl.run("SELECT id, author_id FROM posts ORDER BY id")).rows).toEqual([
      [1, a],
      [2, b],
      [3, a],
      [4, b],
      [5, a],
      [6, b],
      [7, a],
    ]);
  });

  it('"unique": "per_shard" leaves an omitted INTEGER PRIMARY KEY to each shard, as Vitess does', async () => {
    const cl = make({
      posts: { create: "CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL)", column: "author_id", unique: "per_shard" },
    });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO posts (author_id) VALUES (?), (?)", [a, b]);
    expect((await cl.run("SELECT id FROM posts ORDER BY id")).rows).toEqual([[1], [1]]);
  });

  it("UPDATE of a keyspace-wide unique column moves its key: a duplicate elsewhere is refused, changing nothing", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x'), (?, 'y@x')", [a, b]);
    expect(await refused(cl.run("UPDATE users SET email = 'y@x' WHERE id = ?", [a]))).toMatchObject({ code: "CONSTRAINT" });
    await cl.run("UPDATE users SET email = 'z@x' WHERE id = ?", [a]);
    expect((await cl.run("SELECT id, email FROM users ORDER BY email")).rows).toEqual([
      [b, "y@x"],
      [a, "z@x"],
    ]);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x')", [b + 100]);
  });

  it("CREATE UNIQUE INDEX without the vindex column is refused; with it, it is a per-shard index", async () => {
    const cl = make(users());
    expect(await refused(cl.run("CREATE UNIQUE INDEX users_name ON users (name)"))).toMatchObject({ code: "UNSUPPORTED", id: "VD2402" });
    await cl.run("CREATE UNIQUE INDEX users_id_name ON users (id, name)");
  });

  it("CREATE TABLE makes the system lookup tables, and user SQL cannot name them", async () => {
    const cl = make({});
    await cl.run("CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE)");
    expect(Object.keys(cl.keyspace.tables)).toContain("_vtl_t__email");
    expect(await refused(cl.run("SELECT * FROM _vtl_t__email"))).toMatchObject({ code: "PERMISSION_DENIED" });
    await cl.run("INSERT INTO t (id, email) VALUES (1, 'x'), (2, 'y')");
    expect(await refused(cl.run("INSERT INTO t (id, email) VALUES (3, 'x')"))).toMatchObject({ code: "CONSTRAINT" });
    await cl.run("DROP TABLE t");
    expect(Object.keys(cl.keyspace.tables)).not.toContain("_vtl_t__email");
  });
});

describe("keyspace-wide unique keys: OR IGNORE and ON CONFLICT DO NOTHING", () => {
  it("ON CONFLICT (email) DO NOTHING skips a row whose email lives on another shard, and writes the others", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email, name) VALUES (?, 'x@x', 'first')", [a]);
    const r = await cl.run("INSERT INTO users (id, email, name) VALUES (?, 'x@x', 'second'), (?, 'y@x', 'third') ON CONFLICT (email) DO NOTHING", [
      b,
      b + 1000,
    ]);
    expect(r.rowsAffected).toBe(1);
    expect((await cl.run("SELECT email, name FROM users ORDER BY email")).rows).toEqual([
      ["x@x", "first"],
      ["y@x", "third"],
    ]);
  });

  it("INSERT OR IGNORE skips a repeated value within one statement (the first row wins, as in SQLite)", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    const r = await cl.run("INSERT OR IGNORE INTO users (id, email, name) VALUES (?, 'x@x', 'one'), (?, 'x@x', 'two')", [a, b]);
    expect(r.rowsAffected).toBe(1);
    expect((await cl.run("SELECT id, name FROM users")).rows).toEqual([[a, "one"]]);
  });

  it("ON CONFLICT DO NOTHING on another key still refuses a taken email (the target decides)", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x')", [a]);
    expect(await refused(cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x') ON CONFLICT (id) DO NOTHING", [b]))).toMatchObject({ code: "CONSTRAINT" });
  });

  it("a row the shard ignores itself (its id taken) leaves no lookup row for its new email", async () => {
    const cl = make(users());
    await cl.run("INSERT INTO users (id, email) VALUES (1, 'x@x')");
    const r = await cl.run("INSERT OR IGNORE INTO users (id, email) VALUES (1, 'z@x')");
    expect(r.rowsAffected).toBe(0);
    // 'z@x' is free: its lookup row did not stay.
    await cl.run("INSERT INTO users (id, email) VALUES (2, 'z@x')");
    expect(await count(cl, "SELECT count(*) FROM users")).toBe(2);
  });

  it("ON CONFLICT DO NOTHING works on a table owning a lookup_unique vindex (it answered CONSTRAINT)", async () => {
    const cl = newCluster({
      shards: 4,
      vindexes: { by_email: { type: "lookup_unique", params: { table: "email_idx", from: "email", to: "keyspace_id" }, owner: "owners" } },
      tables: {
        owners: { create: "CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT)", column: "id", secondary: [{ column: "email", name: "by_email" }] },
        email_idx: { create: "CREATE TABLE email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", column: "email" },
      },
    });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO owners (id, email) VALUES (?, 'x@x')", [a]);
    const r = await cl.run("INSERT INTO owners (id, email) VALUES (?, 'x@x') ON CONFLICT DO NOTHING", [b]);
    expect(r.rowsAffected).toBe(0);
    expect((await cl.run("SELECT id FROM owners")).rows).toEqual([[a]]);
    expect((await cl.run("SELECT count(*) FROM email_idx")).rows).toEqual([[1]]);
  });
});

describe("keyspace-wide unique keys: REPLACE", () => {
  it("INSERT OR REPLACE deletes the row holding the email on another shard, then inserts (as one SQLite)", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email, name) VALUES (?, 'x@x', 'old')", [a]);
    await cl.run("INSERT OR REPLACE INTO users (id, email, name) VALUES (?, 'x@x', 'new')", [b]);
    expect((await cl.run("SELECT id, email, name FROM users")).rows).toEqual([[b, "x@x", "new"]]);
    // The replaced row's lookup row went with it: the key now names the new row only.
    expect(await refused(cl.run("INSERT INTO users (id, email) VALUES (?, 'x@x')", [a]))).toMatchObject({ code: "CONSTRAINT" });
  });

  it("REPLACE of a row by its own id with a new email frees the old email", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'old@x')", [a]);
    await cl.run("REPLACE INTO users (id, email) VALUES (?, 'old@x')", [a]);
    await cl.run("REPLACE INTO users (id, email) VALUES (?, 'new@x')", [a]);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'old@x')", [b]);
    expect((await cl.run("SELECT id, email FROM users ORDER BY email")).rows).toEqual([
      [a, "new@x"],
      [b, "old@x"],
    ]);
  });

  it("within one REPLACE the later row with the same email wins", async () => {
    const cl = make(users());
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT OR REPLACE INTO users (id, email, name) VALUES (?, 'x@x', 'one'), (?, 'x@x', 'two')", [a, b]);
    expect((await cl.run("SELECT id, name FROM users")).rows).toEqual([[b, "two"]]);
  });
});

describe("vschema unique setting", () => {
  it('accepts "keyspace" and "per_shard" on a sharded table, refuses anything else or on a reference table', async () => {
    const { validateVSchema } = await import("../../topology/vschema.ts");
    const vs = (entry: Record<string, unknown>) => ({ sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { t: entry } });
    expect(validateVSchema(vs({ column_vindexes: [{ column: "id", name: "xx" }], unique: "per_shard" })).tables["t"]?.unique).toBe("per_shard");
    expect(() => validateVSchema(vs({ column_vindexes: [{ column: "id", name: "xx" }], unique: "global" }))).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
    expect(() => validateVSchema(vs({ type: "reference", unique: "per_shard" }))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });
});
