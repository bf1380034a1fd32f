// Keyspace-wide unique keys end to end: real gate, topology and tablets. A UNIQUE column other
// than the vindex column is refused wherever the other row lives; its system lookup table is made
// with CREATE TABLE and hidden from users.

import { beforeAll, describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

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
