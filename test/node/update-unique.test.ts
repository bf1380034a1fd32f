// UPDATE of columns covered by keyspace-wide unique keys and lookup vindexes, over in-memory
// shards (fake-cursor.ts), each statement judged against one SQLite: the lookup rows move with
// the values, a duplicate anywhere is CONSTRAINT and changes nothing.

import { describe, expect, it } from "vitest";
import type { SqlValue } from "../../contract/sql-values.ts";
import { clusterPerTest, idsOnTwoShards } from "./cluster-per-test.ts";
import type { Cluster, TableSpec } from "./fake-cursor.ts";

const newCluster = clusterPerTest();

function make(tables: Record<string, TableSpec>, shards = 4): Cluster {
  return newCluster({ shards, tables });
}

const USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)";

async function outcome(p: Promise<{ rowsAffected: number }>): Promise<{ ok?: number | undefined; code?: string | undefined; id?: string | undefined }> {
  return p.then(
    (r) => ({ ok: r.rowsAffected }),
    (e: unknown) => ({ code: (e as { code?: string }).code, id: (e as { id?: string }).id }),
  );
}

/** The statement on the gate and on the reference: same outcome code, same rows after. */
async function both(cl: Cluster, sql: string, params: SqlValue[] = []): Promise<void> {
  const gate = await outcome(cl.run(sql, params));
  let ref: { ok?: number | undefined; code?: string | undefined };
  try {
    ref = { ok: cl.reference(sql, params).rowsAffected };
  } catch (e) {
    ref = { code: (e as { code?: string }).code };
  }
  expect({ ok: gate.ok, code: gate.code }, sql).toEqual({ ok: ref.ok, code: ref.code });
  const all = "SELECT id, email, name FROM users ORDER BY id";
  expect((await cl.run(all)).rows).toEqual(cl.reference(all).rows);
}

describe("UPDATE of a keyspace-wide unique column", () => {
  it("moves the value: the old one is free for any shard, the new one is taken everywhere", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "INSERT INTO users (id, email) VALUES (?, 'x@x'), (?, 'y@x')", [a, b]);
    await both(cl, "UPDATE users SET email = 'z@x', name = 'moved' WHERE id = ?", [a]);
    await both(cl, "INSERT INTO users (id, email) VALUES (?, 'x@x')", [b + 100]);
    await both(cl, "INSERT INTO users (id, email) VALUES (?, 'z@x')", [b + 200]);
    expect((await cl.run("SELECT id FROM users WHERE email = 'z@x'")).rows).toEqual([[a]]);
  });

  it("a value held on another shard is CONSTRAINT, changing nothing (the claimed lookup row goes)", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "INSERT INTO users (id, email) VALUES (?, 'x@x'), (?, 'y@x')", [a, b]);
    await both(cl, "UPDATE users SET email = 'y@x', name = 'no' WHERE id = ?", [a]);
    // Two rows given one value is a duplicate too; nothing changed, and the value is free.
    await both(cl, "UPDATE users SET email = 'w@x'");
    await both(cl, "INSERT INTO users (id, email) VALUES (?, 'w@x')", [b + 100]);
  });

  it("setting a row's own value, NULL, and an expression of the old row", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    await both(cl, "INSERT INTO users (id, email, name) VALUES (1, 'a@x', 'p'), (2, 'b@x', 'q'), (3, NULL, 'r')");
    await both(cl, "UPDATE users SET email = 'a@x' WHERE id = 1");
    await both(cl, "UPDATE users SET email = NULL WHERE id = 2");
    await both(cl, "INSERT INTO users (id, email) VALUES (4, 'b@x')");
    await both(cl, "UPDATE users SET email = name || '@y' WHERE email IS NULL");
    await both(cl, "INSERT INTO users (id, email) VALUES (9, 'q@y')");
    await both(cl, "UPDATE users SET email = upper(email) RETURNING id, email");
  });

  it("an UPDATE its shard refuses (a CHECK) after the new value was claimed leaves no lookup row for it", async () => {
    const cl = make({ users: { create: "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT CHECK (length(name) < 5))", column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "INSERT INTO users (id, email, name) VALUES (?, 'x@x', 'p')", [a]);
    await both(cl, "UPDATE users SET email = 'new@x', name = 'too long' WHERE id = ?", [a]);
    const keys = cl.shardNames.flatMap((s) => cl.onShard(s, "SELECT k FROM _vtl_users__email").rows.map((r) => r[0]));
    expect(keys).toEqual([JSON.stringify([["t", "x@x"]])]);
    await both(cl, "INSERT INTO users (id, email) VALUES (?, 'new@x')", [b]);
  });

  it("a concurrent INSERT that takes the claimed value before the UPDATE lands wins: the UPDATE sets the row back and answers CONSTRAINT", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email, name) VALUES (?, 'x@x', 'p')", [a]);
    const run = cl.cursor.execute.bind(cl.cursor);
    let raced = false;
    // Between the claim and the UPDATE, another client inserts the same email (the claim names no row holding it yet, so it is taken over).
    cl.cursor.execute = async (shard, queries) => {
      if (!raced && queries.some((q) => q.kind === "write" && /^UPDATE/.test(q.sql))) {
        raced = true;
        await cl.run("INSERT INTO users (id, email) VALUES (?, 'new@x')", [b]);
      }
      return run(shard, queries);
    };
    expect(await outcome(cl.run("UPDATE users SET email = 'new@x' WHERE id = ?", [a]))).toMatchObject({ code: "CONSTRAINT" });
    expect(raced).toBe(true);
    expect((await cl.run("SELECT id, email FROM users ORDER BY email")).rows).toEqual([
      [b, "new@x"],
      [a, "x@x"],
    ]);
    const keys = cl.shardNames.flatMap((s) => cl.onShard(s, "SELECT k FROM _vtl_users__email").rows.map((r) => r[0])).sort();
    expect(keys).toEqual([JSON.stringify([["t", "new@x"]]), JSON.stringify([["t", "x@x"]])]);
  });

  it("a value passed from one row to another in one UPDATE is refused (VD2414): SQLite's row order decides", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    await cl.run("INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b')");
    expect(await outcome(cl.run("UPDATE users SET email = CASE email WHEN 'a' THEN 'b' ELSE 'c' END"))).toMatchObject({ code: "UNSUPPORTED", id: "VD2414" });
    expect((await cl.run("SELECT id, email FROM users ORDER BY id")).rows).toEqual([
      [1, "a"],
      [2, "b"],
    ]);
  });

  it("a multi-column key sharded by another column", async () => {
    const cl = make({
      posts: { create: "CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER NOT NULL, slug TEXT, site TEXT, UNIQUE (slug, site))", column: "author" },
    });
    for (const sql of ["INSERT INTO posts VALUES (1, 1, 's', 'w')", "INSERT INTO posts VALUES (2, 7, 't', 'w')"]) {
      await cl.run(sql);
      cl.reference(sql);
    }
    const check = async (sql: string) => {
      const g = await outcome(cl.run(sql));
      let r: { ok?: number | undefined; code?: string | undefined };
      try {
        r = { ok: cl.reference(sql).rowsAffected };
      } catch (e) {
        r = { code: (e as { code?: string }).code };
      }
      expect({ ok: g.ok, code: g.code }, sql).toEqual(r);
      const all = "SELECT * FROM posts ORDER BY id";
      expect((await cl.run(all)).rows).toEqual(cl.reference(all).rows);
    };
    await check("UPDATE posts SET slug = 's' WHERE id = 2");
    await check("UPDATE posts SET site = 'v' WHERE id = 2");
    await check("UPDATE posts SET slug = 's' WHERE id = 2");
    await check("UPDATE posts SET id = 5 WHERE id = 1");
    await check("INSERT INTO posts VALUES (1, 3, 'q', 'q')");
    await check("INSERT INTO posts VALUES (6, 3, 's', 'v')");
  });
});

describe("UPDATE of a lookup vindex column", () => {
  it("moves the lookup row; reads by the column find the row; a taken unique value is CONSTRAINT", async () => {
    const cl = newCluster({
      shards: 4,
      vindexes: {
        by_email: { type: "lookup_unique", params: { table: "email_idx", from: "email", to: "keyspace_id" }, owner: "owners" },
        by_name: { type: "lookup", params: { table: "name_idx", from: "name", to: "keyspace_id" }, owner: "owners" },
      },
      tables: {
        owners: {
          create: "CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT, name TEXT)",
          column: "id",
          secondary: [
            { column: "email", name: "by_email" },
            { column: "name", name: "by_name" },
          ],
        },
        email_idx: { create: "CREATE TABLE email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", column: "email" },
        name_idx: { create: "CREATE TABLE name_idx (name TEXT NOT NULL, keyspace_id BLOB NOT NULL, PRIMARY KEY (name, keyspace_id))", column: "name" },
      },
    });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO owners (id, email, name) VALUES (?, 'x', 'ann'), (?, 'y', 'bob')", [a, b]);
    await cl.run("UPDATE owners SET email = 'z', name = 'cy' WHERE id = ?", [a]);
    expect((await cl.run("SELECT id FROM owners WHERE email = 'z'")).rows).toEqual([[a]]);
    expect((await cl.run("SELECT id FROM owners WHERE name = 'cy'")).rows).toEqual([[a]]);
    expect((await cl.run("SELECT email FROM email_idx ORDER BY email")).rows).toEqual([["y"], ["z"]]);
    expect((await cl.run("SELECT name FROM name_idx ORDER BY name")).rows).toEqual([["bob"], ["cy"]]);
    expect(await outcome(cl.run("UPDATE owners SET email = 'y' WHERE id = ?", [a]))).toMatchObject({ code: "CONSTRAINT" });
    expect((await cl.run("SELECT email FROM email_idx ORDER BY email")).rows).toEqual([["y"], ["z"]]);
    await cl.run("INSERT INTO owners (id, email) VALUES (?, 'x')", [b + 100]);
  });
});
