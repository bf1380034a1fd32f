// drizzle-orm's migrate() (the sqlite-proxy migrator, unchanged) against the gate, sharded and
// unsharded: the migrations table, the DDL of each migration and the row recording it, sent as
// one transactional batch. Each DDL applies on every shard or none; the batch stops at the first
// failure and says which statements were applied.

import { mkdirSync, writeFileSync } from "node:fs";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import { migrate } from "drizzle-orm/sqlite-proxy/migrator";
import { describe, expect, it } from "vitest";
import { expectConverged } from "./ddl-helpers.ts";
import { api, sql } from "./helpers.ts";

let n = 0;

interface Migration {
  readonly tag: string;
  readonly when: number;
  readonly statements: readonly string[];
}

/** Writes a drizzle-kit style migrations folder (journal + one .sql file per migration). */
function folder(migrations: readonly Migration[]): string {
  const dir = `/tmp/drizzle-mig-${n++}`;
  mkdirSync(`${dir}/meta`, { recursive: true });
  const entries = migrations.map((m, idx) => ({ idx, version: "6", when: m.when, tag: m.tag, breakpoints: true }));
  writeFileSync(`${dir}/meta/_journal.json`, JSON.stringify({ version: "7", dialect: "sqlite", entries }));
  for (const m of migrations) writeFileSync(`${dir}/${m.tag}.sql`, m.statements.join("\n--> statement-breakpoint\n"));
  return dir;
}

/** A drizzle sqlite-proxy database over the gate's HTTP API, and its migrate() callback. */
function client(keyspace: string) {
  const db = drizzle(async (text, params, method) => {
    const r = await api<{ rows: unknown[][]; error?: { message: string } }>("POST", "/v1/sql", { keyspace, sql: text, params });
    if (r.status !== 200) throw new Error(r.body.error?.message ?? `status ${r.status}`);
    return { rows: method === "get" ? (r.body.rows[0] ?? []) : r.body.rows };
  });
  // What an application passes to migrate(): the statements as one transactional batch.
  const batch = async (queries: string[]): Promise<void> => {
    if (queries.length === 0) return;
    const r = await api<{ error?: { code: string; message: string; committed?: number; statementIndex?: number } }>("POST", "/v1/batch", {
      keyspace,
      transaction: true,
      statements: queries.map((q) => ({ sql: q })),
    });
    if (r.status !== 200) throw Object.assign(new Error(r.body.error?.message ?? "batch failed"), r.body.error);
  };
  return { db, batch };
}

const INIT: Migration = {
  tag: "0000_init",
  when: 1_700_000_000_000,
  statements: [
    "CREATE TABLE `users` (\n\t`id` integer PRIMARY KEY NOT NULL,\n\t`email` text NOT NULL\n);",
    "CREATE INDEX `users_email_idx` ON `users` (`email`);",
  ],
};
const MORE: Migration = {
  tag: "0001_posts",
  when: 1_700_000_100_000,
  statements: ["CREATE TABLE `posts` (\n\t`id` integer PRIMARY KEY NOT NULL,\n\t`title` text\n);", "ALTER TABLE `users` ADD `name` text;"],
};

async function migrationsRecorded(keyspace: string): Promise<number> {
  const r = await sql('SELECT count(*) FROM "__drizzle_migrations"', undefined, keyspace);
  return Number(r.rows[0]?.[0]);
}

describe("drizzle migrate()", () => {
  for (const shards of [1, 3]) {
    it(`runs unchanged against a keyspace of ${shards} shard(s), once per migration`, async () => {
      const ks = `drz${n++}`;
      expect((await api("POST", "/v1/keyspaces", { name: ks, shards })).status).toBe(200);
      const { db, batch } = client(ks);
      await migrate(db, batch, { migrationsFolder: folder([INIT]) });
      expect(await migrationsRecorded(ks)).toBe(1);
      await sql("INSERT INTO users (id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x')", undefined, ks);
      // Again with one more migration: only the new one runs.
      await migrate(db, batch, { migrationsFolder: folder([INIT, MORE]) });
      await migrate(db, batch, { migrationsFolder: folder([INIT, MORE]) });
      expect(await migrationsRecorded(ks)).toBe(2);
      await sql("INSERT INTO posts (id, title) VALUES (1, 't')", undefined, ks);
      expect((await sql("SELECT count(name) FROM users", undefined, ks)).rows).toEqual([[0]]);
      await expectConverged(ks);
    });
  }

  it("a migration failing part-way stops the batch and says exactly which statements were applied", async () => {
    const ks = `drz${n++}`;
    expect((await api("POST", "/v1/keyspaces", { name: ks, shards: 2 })).status).toBe(200);
    const { db, batch } = client(ks);
    await migrate(db, batch, { migrationsFolder: folder([INIT]) });
    const bad: Migration = {
      tag: "0001_bad",
      when: 1_700_000_200_000,
      statements: ["CREATE TABLE `t2` (`id` integer PRIMARY KEY);", "CREATE INDEX `x` ON `nope` (`id`);"],
    };
    const err = await migrate(db, batch, { migrationsFolder: folder([INIT, bad]) }).then(
      () => null,
      (e: unknown) => e as { code?: string; statementIndex?: number; committed?: number },
    );
    expect(err).toMatchObject({ statementIndex: 1, committed: 1 });
    // The failing DDL reached no shard; the migration is not recorded.
    expect(await migrationsRecorded(ks)).toBe(1);
    const { history } = await expectConverged(ks);
    expect(history.some((h) => h.includes("`x`"))).toBe(false);
    expect(history.some((h) => h.includes("`t2`"))).toBe(true);
  });
});
