// Lookup vindexes: the gate keeps each owned lookup table in step with its owner's INSERTs and
// DELETEs, and routes reads of the looked-up column to the shards the table names.

import { afterEach, describe, expect, it } from "vitest";
import { createVindex } from "../../topology/vindex.ts";
import { validateVSchema } from "../../topology/vschema.ts";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { diffResults, show } from "./result-compare.ts";

let c: Cluster | undefined;
afterEach(() => {
  c?.close();
  c = undefined;
});

const xx = createVindex("xxhash");

function cluster(): Cluster {
  c = createCluster({
    shards: 4,
    vindexes: {
      email_idx: { type: "lookup_unique", params: { table: "user_email_idx", from: "email", to: "keyspace_id" }, owner: "users" },
      name_idx: { type: "lookup", params: { table: "user_name_idx", from: "name", to: "keyspace_id" }, owner: "users" },
    },
    tables: {
      users: {
        create: "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, note TEXT)",
        column: "id",
        secondary: [
          { column: "email", name: "email_idx" },
          { column: "name", name: "name_idx" },
        ],
      },
      user_email_idx: { create: "CREATE TABLE user_email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", column: "email" },
      user_name_idx: { create: "CREATE TABLE user_name_idx (name TEXT NOT NULL, keyspace_id BLOB NOT NULL, PRIMARY KEY (name, keyspace_id))", column: "name" },
    },
  });
  return c;
}

async function both(cl: Cluster, sql: string, params?: unknown[]): Promise<void> {
  const exp = cl.reference(sql, params as never);
  const act = await cl.run(sql, params as never);
  expect(diffResults(act, exp, { ordered: false }), sql).toBeUndefined();
}

/** The lookup rows the gate should hold for the users rows (through the gate, every shard). */
async function expectLookupsInStep(cl: Cluster): Promise<void> {
  const users = (await cl.run("SELECT id, email, name FROM users")).rows;
  const hex = (b: unknown) => Buffer.from(b as Uint8Array).toString("hex");
  const emails = users
    .filter((r) => r[1] !== null)
    .map((r) => `${String(r[1])}=${hex(xx.map(r[0] ?? null))}`)
    .sort();
  const names = [...new Set(users.filter((r) => r[2] !== null).map((r) => `${String(r[2])}=${hex(xx.map(r[0] ?? null))}`))].sort();
  expect((await cl.run("SELECT email, keyspace_id FROM user_email_idx")).rows.map((r) => `${String(r[0])}=${hex(r[1])}`).sort()).toEqual(emails);
  expect((await cl.run("SELECT name, keyspace_id FROM user_name_idx")).rows.map((r) => `${String(r[0])}=${hex(r[1])}`).sort()).toEqual(names);
}

const seed = "INSERT INTO users (id, email, name) VALUES (1, 'ann@x', 'ann'), (2, 'bob@x', 'bob'), (3, NULL, 'ann'), (4, 'dan@x', NULL), (5, 'eve@x', 'ann')";

describe("lookup vindexes", () => {
  it("INSERT writes the lookup rows; reads by the column reach the lookup's shards only", async () => {
    const cl = cluster();
    await cl.run(seed);
    cl.reference(seed);
    await expectLookupsInStep(cl);
    await both(cl, "SELECT id, name FROM users WHERE email = ?", ["bob@x"]);
    // The lookup table's shard for 'bob@x', then the one owner shard.
    expect(new Set(cl.lastTouched)).toEqual(new Set([cl.shardOf("bob@x"), cl.shardOf(2)]));
    await both(cl, "SELECT count(*) FROM users WHERE email = 'nobody@x'");
    await both(cl, "SELECT id, email FROM users WHERE name = 'ann' ORDER BY id DESC");
    await both(cl, "SELECT name, count(*) FROM users WHERE name IN ('ann', 'bob', 'zed') GROUP BY name");
    await both(cl, "UPDATE users SET note = 'vip' WHERE email = 'bob@x'");
    await both(cl, "SELECT id, note FROM users WHERE note IS NOT NULL");
  });

  it("a unique lookup refuses a duplicate (in the table or in one statement) and writes nothing", async () => {
    const cl = cluster();
    await cl.run(seed);
    await expect(cl.run("INSERT INTO users (id, email) VALUES (10, 'ann@x')")).rejects.toMatchObject({ code: "CONSTRAINT" });
    await expect(cl.run("INSERT INTO users (id, email) VALUES (11, 'new@x'), (12, 'new@x')")).rejects.toMatchObject({ code: "CONSTRAINT" });
    expect((await cl.run("SELECT count(*) FROM users")).rows).toEqual([[5]]);
    await expectLookupsInStep(cl);
  });

  it("DELETE removes the lookup rows after the owner rows; the value can then be used again", async () => {
    const cl = cluster();
    await cl.run(seed);
    const d = await cl.run("DELETE FROM users WHERE email = ?", ["ann@x"]);
    expect(d.rowsAffected).toBe(1);
    await cl.run("DELETE FROM users WHERE name = 'ann'");
    await expectLookupsInStep(cl);
    await cl.run("INSERT INTO users (id, email, name) VALUES (20, 'ann@x', 'ann')");
    await expectLookupsInStep(cl);
    expect((await cl.run("SELECT id FROM users WHERE email = 'ann@x'")).rows).toEqual([[20]]);
  });

  it("a lookup row left by a failed write (no owner row) is taken over", async () => {
    const cl = cluster();
    await cl.run("INSERT INTO user_email_idx (email, keyspace_id) VALUES ('ghost@x', ?)", [xx.map(99)]);
    await cl.run("INSERT INTO users (id, email) VALUES (7, 'ghost@x')");
    await expectLookupsInStep(cl);
    expect((await cl.run("SELECT id FROM users WHERE email = 'ghost@x'")).rows).toEqual([[7]]);
  });

  it("concurrent INSERTs of one unique value: never both kept", async () => {
    const cl = cluster();
    for (let i = 0; i < 30; i++) {
      const email = `race${i}@x`;
      // A dangling lookup row for some of them, so the takeover path races too.
      if (i % 2 === 0) await cl.run("INSERT INTO user_email_idx (email, keyspace_id) VALUES (?, ?)", [email, xx.map(5000 + i)]);
      const settled = await Promise.allSettled([
        cl.run("INSERT INTO users (id, email) VALUES (?, ?)", [1000 + 2 * i, email]),
        cl.run("INSERT INTO users (id, email) VALUES (?, ?)", [1001 + 2 * i, email]),
      ]);
      for (const s of settled) if (s.status === "rejected") expect(s.reason).toMatchObject({ code: "CONSTRAINT" });
      const held = (await cl.run("SELECT id FROM users WHERE email = ?", [email])).rows;
      const everywhere = (await cl.run("SELECT id FROM users WHERE email || '' = ?", [email])).rows;
      expect(everywhere.length, email).toBeLessThanOrEqual(1);
      expect(held, email).toEqual(everywhere);
      expect(settled.filter((s) => s.status === "fulfilled").length).toBe(everywhere.length);
    }
  });

  it("an owner INSERT that fails removes the lookup rows it added", async () => {
    const cl = cluster();
    await cl.run(seed);
    await expect(cl.run("INSERT INTO users (id, email, name) VALUES (1, 'dup-id@x', 'zed')")).rejects.toMatchObject({ code: "CONSTRAINT" });
    await expectLookupsInStep(cl);
  });

  it("INSERT … SELECT keeps the lookups too", async () => {
    const cl = cluster();
    await cl.run(seed);
    await cl.run("INSERT INTO users (id, email, name) SELECT id + 100, 'copy-' || email, name FROM users WHERE email IS NOT NULL");
    await expectLookupsInStep(cl);
    expect((await cl.run("SELECT id FROM users WHERE email = 'copy-bob@x'")).rows).toEqual([[102]]);
  });

  // UPDATE of email and ON CONFLICT DO UPDATE were refused here before; UPDATE now moves the
  // lookup row, and an upsert on id updates in place (test/node/update-unique.test.ts, upsert-unique.test.ts).
  it("refuses what would let the lookup go stale", async () => {
    const cl = cluster();
    await cl.run(seed);
    for (const sql of [
      "INSERT INTO users (id, email) VALUES (1, 'r@x') ON CONFLICT (id) DO UPDATE SET email = 'n'",
      "INSERT INTO users (id, email) VALUES (30, lower('A@X'))",
    ]) {
      await expect(cl.run(sql), sql).rejects.toMatchObject({ code: "UNSUPPORTED" });
    }
    await expectLookupsInStep(cl);
    expect(show((await cl.run("SELECT count(*) FROM users")).rows)).toBe(show([[5]]));
  });

  // REPLACE was refused here before (its replaced row's lookup rows could go stale); it now deletes
  // the rows it replaces, wherever they live, with their lookup rows.
  it("REPLACE by id keeps the lookups in step: the replaced row's email goes, the new one is kept", async () => {
    const cl = cluster();
    await cl.run(seed);
    await cl.run("REPLACE INTO users (id, email) VALUES (1, 'r@x')");
    await expectLookupsInStep(cl);
    expect(show((await cl.run("SELECT count(*) FROM users")).rows)).toBe(show([[5]]));
    expect(show((await cl.run("SELECT id FROM users WHERE email = 'r@x'")).rows)).toBe(show([[1]]));
  });

  it("vschema: a lookup vindex is secondary only, and names its owner", () => {
    const vindexes = { xx: { type: "xxhash" }, lk: { type: "lookup_unique", params: { table: "t_idx", from: "e", to: "keyspace_id" }, owner: "t" } };
    expect(() =>
      validateVSchema({
        sharded: true,
        vindexes,
        tables: {
          t: {
            column_vindexes: [
              { column: "id", name: "xx" },
              { column: "e", name: "lk" },
            ],
          },
        },
      }),
    ).not.toThrow();
    expect(() => validateVSchema({ sharded: true, vindexes, tables: { t: { column_vindexes: [{ column: "e", name: "lk" }] } } })).toThrow(
      /primary vindex must compute/,
    );
    expect(() =>
      validateVSchema({
        sharded: true,
        vindexes,
        tables: {
          u: {
            column_vindexes: [
              { column: "id", name: "xx" },
              { column: "e", name: "lk" },
            ],
          },
        },
      }),
    ).toThrow(/owner/);
    expect(() => validateVSchema({ sharded: true, vindexes: { lk: { type: "lookup_unique", params: { table: "t_idx" } } }, tables: {} })).toThrow(
      /params.from/,
    );
  });
});
