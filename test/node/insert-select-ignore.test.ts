// INSERT OR IGNORE … SELECT and INSERT … SELECT … ON CONFLICT DO NOTHING into a table with a
// keyspace-wide unique key or a lookup_unique vindex, judged against one SQLite: a row its own
// shard skips (its id taken there) claims no lookup value, so a later row of the statement, or a
// later statement, may take that value as SQLite lets it.

import { describe, expect, it } from "vitest";
import type { SqlValue } from "../../contract/sql-values.ts";
import { clusterPerTest, idsOnTwoShards } from "./cluster-per-test.ts";
import type { Cluster } from "./fake-cursor.ts";

const newCluster = clusterPerTest();

const USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)";

async function outcome(p: Promise<{ rowsAffected: number }>): Promise<{ ok?: number | undefined; code?: string | undefined }> {
  return p.then(
    (r) => ({ ok: r.rowsAffected }),
    (e: unknown) => ({ code: (e as { code?: string }).code }),
  );
}

/** The statement on the gate and on the reference: same outcome, same rows of `table` after. */
async function both(cl: Cluster, table: string, sql: string, params: SqlValue[] = []): Promise<void> {
  const gate = await outcome(cl.run(sql, params));
  let ref: { ok?: number | undefined; code?: string | undefined };
  try {
    ref = { ok: cl.reference(sql, params).rowsAffected };
  } catch (e) {
    ref = { code: (e as { code?: string }).code };
  }
  expect(gate, sql).toEqual(ref);
  const all = `SELECT id, email FROM ${table} ORDER BY id`;
  expect((await cl.run(all)).rows, sql).toEqual(cl.reference(all).rows);
}

function systemLookupKeys(cl: Cluster): unknown[] {
  return cl.shardNames.flatMap((s) => cl.onShard(s, "SELECT k FROM _vtl_users__email").rows.map((r) => r[0])).sort();
}

describe("INSERT OR IGNORE … SELECT into a table with a keyspace-wide unique key", () => {
  it("a row its shard skips (id taken) claims no email: a later row of the statement takes it, as in SQLite", async () => {
    const cl = newCluster({ shards: 4, tables: { users: { create: USERS, column: "id" } } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "users", "INSERT INTO users (id, email) VALUES (?, 'x@x')", [a]);
    await both(cl, "users", "INSERT OR IGNORE INTO users (id, email) SELECT ?, 'z@x' UNION ALL SELECT ?, 'z@x'", [a, b]);
    expect(systemLookupKeys(cl)).toEqual([JSON.stringify([["t", "x@x"]]), JSON.stringify([["t", "z@x"]])]);
  });

  it("a skipped row leaves no lookup row: a later INSERT of its email succeeds", async () => {
    const cl = newCluster({ shards: 4, tables: { users: { create: USERS, column: "id" } } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "users", "INSERT INTO users (id, email) VALUES (?, 'x@x')", [a]);
    await both(cl, "users", "INSERT OR IGNORE INTO users (id, email) SELECT ?, 'w@x'", [a]);
    expect(systemLookupKeys(cl)).toEqual([JSON.stringify([["t", "x@x"]])]);
    await both(cl, "users", "INSERT INTO users (id, email) VALUES (?, 'w@x')", [b]);
  });

  it("ON CONFLICT (id) DO NOTHING skips the row whose id is taken and lets a later row take its email", async () => {
    const cl = newCluster({ shards: 4, tables: { users: { create: USERS, column: "id" } } });
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "users", "INSERT INTO users (id, email) VALUES (?, 'x@x')", [a]);
    await both(cl, "users", "INSERT INTO users (id, email) SELECT ?, 'z@x' UNION ALL SELECT ?, 'z@x' WHERE true ON CONFLICT (id) DO NOTHING", [a, b]);
    expect(systemLookupKeys(cl)).toEqual([JSON.stringify([["t", "x@x"]]), JSON.stringify([["t", "z@x"]])]);
  });
});

describe("INSERT OR IGNORE … SELECT into a table owning a lookup_unique vindex", () => {
  const make = () =>
    newCluster({
      shards: 4,
      vindexes: { by_email: { type: "lookup_unique", params: { table: "email_idx", from: "email", to: "keyspace_id" }, owner: "owners" } },
      tables: {
        owners: { create: "CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT)", column: "id", secondary: [{ column: "email", name: "by_email" }] },
        email_idx: { create: "CREATE TABLE email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", column: "email" },
      },
    });

  it("a row its shard skips claims no lookup row; a later row of the statement and a later INSERT take the value", async () => {
    const cl = make();
    const [a, b] = idsOnTwoShards(cl);
    await both(cl, "owners", "INSERT INTO owners (id, email) VALUES (?, 'x@x')", [a]);
    await both(cl, "owners", "INSERT OR IGNORE INTO owners (id, email) SELECT ?, 'z@x' UNION ALL SELECT ?, 'z@x'", [a, b]);
    await both(cl, "owners", "INSERT OR IGNORE INTO owners (id, email) SELECT ?, 'w@x'", [a]);
    expect((await cl.run("SELECT email FROM email_idx ORDER BY email")).rows).toEqual([["x@x"], ["z@x"]]);
    await both(cl, "owners", "INSERT INTO owners (id, email) VALUES (?, 'w@x')", [b + 1000]);
  });
});
