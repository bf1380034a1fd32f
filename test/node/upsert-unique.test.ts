// INSERT … ON CONFLICT DO UPDATE into tables with keyspace-wide unique keys and lookup_unique
// vindexes, over in-memory shards (fake-cursor.ts), each statement judged against one SQLite.

import { describe, expect, it } from "vitest";
import type { SqlValue } from "../../contract/sql-values.ts";
import { clusterPerTest, idsOnTwoShards } from "./cluster-per-test.ts";
import type { Cluster, TableSpec } from "./fake-cursor.ts";

const newCluster = clusterPerTest();

function make(tables: Record<string, TableSpec>, shards = 4): Cluster {
  return newCluster({ shards, tables });
}

const USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT, n INTEGER)";

async function refused(p: Promise<unknown>): Promise<{ code?: string; id?: string }> {
  return p.then(
    () => ({ code: "none" }),
    (e: unknown) => e as { code?: string; id?: string },
  );
}

/** Runs a statement on the gate and on the reference; both answer alike (rows affected, RETURNING rows, error code). */
async function both(cl: Cluster, sql: string, params: SqlValue[] = []): Promise<void> {
  const gate = await cl.run(sql, params).then(
    (r) => ({ ok: r.rowsAffected, rows: [...r.rows].map((x) => JSON.stringify(x)).sort() }),
    (e: unknown) => ({ err: (e as { code?: string }).code }),
  );
  let ref: typeof gate;
  try {
    const r = cl.reference(sql, params);
    ref = { ok: r.rowsAffected, rows: [...r.rows].map((x) => JSON.stringify(x)).sort() };
  } catch (e) {
    ref = { err: (e as { code?: string }).code };
  }
  expect(gate, sql).toEqual(ref);
  const all = "SELECT id, email, name, n FROM users ORDER BY id";
  expect((await cl.run(all)).rows).toEqual(cl.reference(all).rows);
}

describe("ON CONFLICT DO UPDATE with keyspace-wide unique keys", () => {
  it("updates the row holding the email on another shard (Drizzle's onConflictDoUpdate on email)", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "INSERT INTO users (id, email, name, n) VALUES (?, 'x@x', 'old', 1)", [a]);
    await both(
      cl,
      'insert into "users" ("id", "email", "name", "n") values (?, ?, ?, ?) on conflict ("email") do update set "name" = ?, "n" = "users"."n" + excluded.n',
      [b, "x@x", "new", 5, "set"],
    );
    expect((await cl.run("SELECT id, name, n FROM users")).rows).toEqual([[a, "set", 6]]);
    // Drizzle's spelling of the target ("table"."column"), for DO NOTHING too.
    await both(cl, 'insert into "users" ("id", "email", "name") values (?, ?, ?) on conflict ("users"."email") do update set "name" = excluded.name', [
      b,
      "x@x",
      "drz",
    ]);
    await both(cl, 'insert into "users" ("id", "email", "name") values (?, ?, ?) on conflict ("users"."email") do nothing', [b, "x@x", "skip"]);
    // Nothing was inserted on b's shard, and the lookup still names a's row.
    await both(cl, "INSERT INTO users (id, email) VALUES (?, 'x@x')", [b]);
  });

  it("excluded., a WHERE on the DO UPDATE, several rows (some inserted, some updated) and RETURNING", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    await both(cl, "INSERT INTO users (id, email, name, n) VALUES (1, 'a@x', 'A', 1), (2, 'b@x', 'B', 2), (3, 'c@x', 'C', 3)");
    await both(
      cl,
      "INSERT INTO users (id, email, name, n) VALUES (11, 'a@x', 'a2', 10), (12, 'b@x', 'b2', 20), (13, 'z@x', 'z', 30) ON CONFLICT (email) DO UPDATE SET name = excluded.name || '!', n = n + excluded.n WHERE excluded.n > 10 RETURNING id, email, name, n",
    );
  });

  it("a conflict on the PK (the vindex column) updates in place; the new email is not claimed", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "INSERT INTO users (id, email, name) VALUES (?, 'a@x', 'A'), (?, 'b@x', 'B')", [a, b]);
    // Row a's id conflicts; its proposed email b@x is held by row b, which SQLite never checks: the update goes ahead.
    await both(cl, "INSERT INTO users (id, email, name) VALUES (?, 'b@x', 'new') ON CONFLICT (id) DO UPDATE SET name = excluded.name", [a]);
    // A fresh id with a taken email is a duplicate.
    await both(cl, "INSERT INTO users (id, email, name) VALUES (?, 'b@x', 'new') ON CONFLICT (id) DO UPDATE SET name = excluded.name", [a + 200]);
    // The email target does not cover a conflict on the id.
    await both(cl, "INSERT INTO users (id, email, name) VALUES (?, 'fresh@x', 'new') ON CONFLICT (email) DO UPDATE SET name = excluded.name", [b]);
  });

  it("without a target the one conflicting row is updated; a later row of the statement updates an earlier one", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "INSERT INTO users (id, email, name, n) VALUES (?, 'a@x', 'A', 0)", [a]);
    await both(cl, "INSERT INTO users (id, email, name, n) VALUES (?, 'a@x', 'x', 1) ON CONFLICT DO UPDATE SET n = n + 1", [b]);
    await both(
      cl,
      "INSERT INTO users (id, email, name, n) VALUES (?, 'q@x', 'x', 1), (?, 'q@x', 'y', 1), (?, 'a@x', 'z', 1) ON CONFLICT (email) DO UPDATE SET n = n + 10, name = excluded.name",
      [b + 100, b + 200, a],
    );
    await both(
      cl,
      "INSERT INTO users (id, email, name, n) VALUES (?, 'r@x', 'x', 1), (?, 'q@x', 'y', 1), (?, 'r@x', 'z', 1) ON CONFLICT (id) DO UPDATE SET n = n + 100",
      [a, b + 100, b + 100],
    );
  });

  it("several rows conflicting with different rows without a target are refused (VD2412), changing nothing", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO users (id, email) VALUES (?, 'a@x'), (?, 'b@x')", [a, b]);
    expect(await refused(cl.run("INSERT INTO users (id, email) VALUES (?, 'b@x') ON CONFLICT DO UPDATE SET name = 'z'", [a]))).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2412",
    });
    // Rows of one statement sharing a value, without a target, are refused before anything is written.
    expect(
      await refused(cl.run("INSERT INTO users (id, email) VALUES (?, 'n@x'), (?, 'n@x') ON CONFLICT DO UPDATE SET name = 'z'", [a + 100, b + 100])),
    ).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2412",
    });
    expect((await cl.run("SELECT count(*) FROM users WHERE name IS NOT NULL OR email = 'n@x'")).rows).toEqual([[0]]);
  });

  it("several ON CONFLICT clauses with a DO UPDATE are refused (VD1033)", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    expect(
      await refused(cl.run("INSERT INTO users (id, email) VALUES (1, 'a@x') ON CONFLICT (id) DO NOTHING ON CONFLICT (email) DO UPDATE SET name = 'z'")),
    ).toMatchObject({ code: "UNSUPPORTED", id: "VD1033" });
  });

  it("a DO UPDATE of the unique column is refused (VD2410) unless it sets the target from excluded", async () => {
    const cl = make({ users: { create: USERS, column: "id" } });
    await both(cl, "INSERT INTO users (id, email, name) VALUES (1, 'a@x', 'A')");
    expect(await refused(cl.run("INSERT INTO users (id, email) VALUES (1, 'b@x') ON CONFLICT (id) DO UPDATE SET email = excluded.email"))).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2410",
    });
    await both(cl, "INSERT INTO users (id, email, name) VALUES (5, 'a@x', 'B') ON CONFLICT (email) DO UPDATE SET email = excluded.email, name = excluded.name");
  });

  it("INSERT … SELECT … ON CONFLICT (email) DO UPDATE updates the rows holding the selected emails", async () => {
    const cl = make({
      users: { create: USERS, column: "id" },
      staged: { create: "CREATE TABLE staged (id INTEGER PRIMARY KEY, email TEXT, n INTEGER)", column: "id" },
    });
    for (const sql of [
      "INSERT INTO users (id, email, name, n) VALUES (1, 'a@x', 'A', 1), (2, 'b@x', 'B', 2)",
      "INSERT INTO staged (id, email, n) VALUES (11, 'a@x', 10), (12, 'c@x', 20), (13, 'b@x', 30)",
    ]) {
      await cl.run(sql);
      cl.reference(sql);
    }
    await both(cl, "INSERT INTO users (id, email, n) SELECT id, email, n FROM staged WHERE true ON CONFLICT (email) DO UPDATE SET n = users.n + excluded.n");
    await both(cl, "INSERT INTO users (id, email, n) SELECT id + 100, email, n FROM staged WHERE n > 10 ON CONFLICT (id) DO UPDATE SET n = 0");
  });

  it("a multi-column key sharded by another column (posts by author, UNIQUE (slug, site))", async () => {
    const cl = make({
      posts: {
        create: "CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER NOT NULL, slug TEXT, site TEXT, hits INTEGER DEFAULT 0, UNIQUE (slug, site))",
        column: "author",
      },
    });
    await cl.run("INSERT INTO posts (id, author, slug, site, hits) VALUES (1, 1, 's', 'w', 1)");
    cl.reference("INSERT INTO posts (id, author, slug, site, hits) VALUES (1, 1, 's', 'w', 1)");
    const sql =
      "INSERT INTO posts (id, author, slug, site, hits) VALUES (2, 7, 's', 'w', 5), (3, 8, 's', 'v', 1) ON CONFLICT (slug, site) DO UPDATE SET hits = hits + excluded.hits";
    const r = await cl.run(sql);
    expect(r.rowsAffected).toBe(cl.reference(sql).rowsAffected);
    const all = "SELECT id, author, slug, site, hits FROM posts ORDER BY id";
    expect((await cl.run(all)).rows).toEqual(cl.reference(all).rows);
  });
});

describe("ON CONFLICT DO UPDATE with a lookup_unique vindex", () => {
  const lookupCluster = (create: string) => {
    return newCluster({
      shards: 4,
      vindexes: { by_email: { type: "lookup_unique", params: { table: "email_idx", from: "email", to: "keyspace_id" }, owner: "owners" } },
      tables: {
        owners: { create, column: "id", secondary: [{ column: "email", name: "by_email" }] },
        email_idx: { create: "CREATE TABLE email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", column: "email" },
      },
    });
  };

  it("updates the row holding the email when the table declares it UNIQUE", async () => {
    const cl = lookupCluster("CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)");
    const [a, b] = idsOnTwoShards(cl);
    await cl.run("INSERT INTO owners (id, email, name) VALUES (?, 'x@x', 'old')", [a]);
    const r = await cl.run(
      "INSERT INTO owners (id, email, name) VALUES (?, 'x@x', 'new') ON CONFLICT (email) DO UPDATE SET name = excluded.name RETURNING id, name",
      [b],
    );
    expect(r.rows).toEqual([[a, "new"]]);
    expect((await cl.run("SELECT id, name FROM owners")).rows).toEqual([[a, "new"]]);
    expect((await cl.run("SELECT count(*) FROM email_idx")).rows).toEqual([[1]]);
  });

  it("is refused (VD2411) on a column unique only through the vindex", async () => {
    const cl = lookupCluster("CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT, name TEXT)");
    expect(await refused(cl.run("INSERT INTO owners (id, email) VALUES (1, 'x') ON CONFLICT (email) DO UPDATE SET name = 'n'"))).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2411",
    });
    // On the vindex column's own key it works.
    await cl.run("INSERT INTO owners (id, email, name) VALUES (1, 'x', 'a')");
    await cl.run("INSERT INTO owners (id, email, name) VALUES (1, 'y', 'b') ON CONFLICT (id) DO UPDATE SET name = excluded.name");
    expect((await cl.run("SELECT id, email, name FROM owners")).rows).toEqual([[1, "x", "b"]]);
    expect((await cl.run("SELECT email FROM email_idx")).rows).toEqual([["x"]]);
  });
});
