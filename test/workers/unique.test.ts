// Keyspace-wide unique keys end to end: real gate, topology and tablets. A UNIQUE column other
// than the vindex column is refused wherever the other row lives; its system lookup table is made
// with CREATE TABLE and hidden from users.

import { exports } from "cloudflare:workers";
import { eq, sql as dsql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../client/index.ts";
import { api, sql, sqlError } from "./helpers.ts";
import { drizzleProxy } from "./orm-dialects.ts";

const KS = "uq_app";

beforeAll(async () => {
  expect((await api("POST", "/v1/keyspaces", { name: KS, shards: 4 })).status).toBe(200);
  await sql("CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)", undefined, KS);
});

describe("keyspace-wide unique keys through the gate", () => {
  it("refuses a duplicate email on another shard; DO NOTHING skips it; the system table stays hidden", async () => {
    const ids = Array.from({ length: 12 }, (_, i) => i + 1);
    const r = await sql(
      `INSERT INTO accounts (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((i) => [i, `a${i}@x`]),
      KS,
    );
    expect(r.rowsAffected).toBe(12);
    // Twelve rows over four shards: some id other than 1 lives on another shard than 1; each is refused alike.
    for (const id of [100, 101, 102, 103]) {
      const err = await sqlError("INSERT INTO accounts (id, email) VALUES (?, 'a1@x')", [id], KS);
      expect(err.code).toBe("CONSTRAINT");
    }
    const skipped = await sql("INSERT INTO accounts (id, email) VALUES (200, 'a2@x'), (201, 'fresh@x') ON CONFLICT (email) DO NOTHING", undefined, KS);
    expect(skipped.rowsAffected).toBe(1);
    expect((await sql("SELECT count(*) FROM accounts", undefined, KS)).rows).toEqual([[13]]);
    const denied = await sqlError("SELECT * FROM _vtl_accounts__email", undefined, KS);
    expect(denied.code).toBe("PERMISSION_DENIED");
    const topo = await api<{ keyspaces: { name: string; tables: string[]; shards: { rowCount: number }[] }[] }>("GET", "/v1/topology");
    const ks = topo.body.keyspaces.find((k) => k.name === KS);
    expect(ks?.tables).toEqual(["accounts"]);
    expect(ks?.shards.reduce((a, s) => a + s.rowCount, 0)).toBe(13);
  });

  it("DELETE frees a value for any shard, and REPLACE moves it", async () => {
    await sql("DELETE FROM accounts WHERE email = 'a3@x'", undefined, KS);
    await sql("INSERT INTO accounts (id, email) VALUES (300, 'a3@x')", undefined, KS);
    await sql("INSERT OR REPLACE INTO accounts (id, email, name) VALUES (301, 'a3@x', 'moved')", undefined, KS);
    expect((await sql("SELECT id, name FROM accounts WHERE email = 'a3@x'", undefined, KS)).rows).toEqual([[301, "moved"]]);
  });
});

describe("upserts and key UPDATEs through the gate", () => {
  it("ON CONFLICT (email) DO UPDATE updates the row holding the email wherever it lives, with excluded. and RETURNING", async () => {
    await sql("INSERT INTO accounts (id, email, name) VALUES (400, 'up@x', 'old')", undefined, KS);
    // Four candidate ids: at least one lives on another shard than 400; each updates row 400 and inserts nothing.
    for (const [i, id] of [401, 402, 403, 404].entries()) {
      const r = await sql(
        "INSERT INTO accounts (id, email, name) VALUES (?, 'up@x', ?) ON CONFLICT (email) DO UPDATE SET name = excluded.name || '!' RETURNING id, name",
        [id, `n${i}`],
        KS,
      );
      expect(r.rows).toEqual([[400, `n${i}!`]]);
    }
    expect((await sql("SELECT id, name FROM accounts WHERE email = 'up@x'", undefined, KS)).rows).toEqual([[400, "n3!"]]);
    expect((await sql("SELECT count(*) FROM accounts WHERE id BETWEEN 401 AND 404", undefined, KS)).rows).toEqual([[0]]);
  });

  it("UPDATE of the unique email moves its key: the old value is free, a taken one is CONSTRAINT", async () => {
    await sql("INSERT INTO accounts (id, email) VALUES (500, 'm1@x'), (501, 'm2@x'), (502, 'm3@x'), (503, 'm4@x')", undefined, KS);
    for (const id of [501, 502, 503]) {
      const err = await sqlError("UPDATE accounts SET email = 'm1@x' WHERE id = ?", [id], KS);
      expect(err.code).toBe("CONSTRAINT");
    }
    await sql("UPDATE accounts SET email = 'moved@x' WHERE id = 500", undefined, KS);
    await sql("INSERT INTO accounts (id, email) VALUES (504, 'm1@x')", undefined, KS);
    for (const id of [505, 506, 507]) {
      const err = await sqlError("INSERT INTO accounts (id, email) VALUES (?, 'moved@x')", [id], KS);
      expect(err.code).toBe("CONSTRAINT");
    }
    expect((await sql("SELECT id, email FROM accounts WHERE id BETWEEN 500 AND 504 ORDER BY id", undefined, KS)).rows).toEqual([
      [500, "moved@x"],
      [501, "m2@x"],
      [502, "m3@x"],
      [503, "m4@x"],
      [504, "m1@x"],
    ]);
  });
});

describe("Drizzle's onConflictDoUpdate on a keyspace-wide unique column", () => {
  const accounts = sqliteTable("accounts", { id: integer("id").primaryKey(), email: text("email").unique(), name: text("name") });
  const gateFetch = ((input: RequestInfo | URL, init?: RequestInit) => exports.default.fetch(new Request(input, init))) as typeof fetch;

  it("target: accounts.email updates the existing row, wherever it lives, and returns it", async () => {
    const client = createClient({ url: "http://gate", fetch: gateFetch, keyspace: KS });
    try {
      const d = drizzle(drizzleProxy(client));
      await d.insert(accounts).values({ id: 600, email: "dz@x", name: "first" });
      for (const id of [601, 602, 603, 604]) {
        const out = await d
          .insert(accounts)
          .values({ id, email: "dz@x", name: `from ${id}` })
          .onConflictDoUpdate({ target: accounts.email, set: { name: dsql`excluded.name` } })
          .returning({ id: accounts.id, name: accounts.name });
        expect(out).toEqual([{ id: 600, name: `from ${id}` }]);
      }
      expect(await d.select({ id: accounts.id, name: accounts.name }).from(accounts).where(eq(accounts.email, "dz@x"))).toEqual([
        { id: 600, name: "from 604" },
      ]);
      // onConflictDoNothing names the target the same way ("accounts"."email"): the row is skipped.
      for (const id of [605, 606, 607]) {
        await d.insert(accounts).values({ id, email: "dz@x", name: "skipped" }).onConflictDoNothing({ target: accounts.email });
      }
      expect(await d.select({ id: accounts.id, name: accounts.name }).from(accounts).where(eq(accounts.email, "dz@x"))).toEqual([
        { id: 600, name: "from 604" },
      ]);
    } finally {
      await client.close();
    }
  });
});
