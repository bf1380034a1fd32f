// RETURNING through real tablets: Durable Object SQLite hands INTEGER and REAL back as JS
// numbers, so a REAL of 1e16 and an integer beyond 2^53 look alike. Every write answers its
// RETURNING values exactly: REALs as JSON numbers, integers beyond 2^53 as {"int": …}.

import { describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";

const BIG = { int: "9007199254740993" };

async function keyspace(name: string, shards: number): Promise<void> {
  const r = await api("POST", "/v1/keyspaces", { name, shards });
  expect(r.status).toBe(200);
}

describe("exact RETURNING", () => {
  for (const shards of [1, 2]) {
    it(`a REAL ≥ 2^53 and an integer beyond 2^53 come back exact from INSERT, UPDATE and DELETE … RETURNING (${shards} shard${shards > 1 ? "s" : ""})`, async () => {
      const ks = `ret${shards}`;
      await keyspace(ks, shards);
      await sql("CREATE TABLE m (id INTEGER PRIMARY KEY, r REAL, i INTEGER, t TEXT, g AS (i * 2))", undefined, ks);
      const ins = await sql(
        "INSERT INTO m (id, r, i, t) VALUES (1, 1e16, ?, 'a'), (2, 1e308, -9007199254740993, NULL) RETURNING id, r, i, r * 2 AS r2, t",
        [BIG],
        ks,
      );
      expect(ins.columns).toEqual(["id", "r", "i", "r2", "t"]);
      expect(ins.rows).toEqual([
        [1, 1e16, BIG, 2e16, "a"],
        [2, 1e308, { int: "-9007199254740993" }, { real: "Infinity" }, null],
      ]);
      const star = await sql("UPDATE m SET r = r + 2, i = i + 1 WHERE id = 1 RETURNING *", undefined, ks);
      expect(star.columns).toEqual(["id", "r", "i", "t", "g"]);
      expect(star.rows).toEqual([[1, 10000000000000002, { int: "9007199254740994" }, "a", { int: "18014398509481988" }]]);
      const del = await sql("DELETE FROM m WHERE id = 2 RETURNING i, typeof(r), r", undefined, ks);
      expect(del.rows).toEqual([[{ int: "-9007199254740993" }, "real", 1e308]]);
      // What was written reads back the same.
      expect((await sql("SELECT r, i FROM m", undefined, ks)).rows).toEqual([[10000000000000002, { int: "9007199254740994" }]]);
    });
  }

  it("an upsert and a reference-table write return exact values too", async () => {
    await keyspace("retref", 2);
    await api("POST", "/v1/vschema", {
      keyspace: "retref",
      vschema: { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { c: { type: "reference" } } },
    });
    await sql("CREATE TABLE c (code TEXT PRIMARY KEY, big INTEGER, r REAL)", undefined, "retref");
    const a = await sql("INSERT INTO c VALUES ('x', ?, 1e17) RETURNING big, r", [BIG], "retref");
    expect(a.rows).toEqual([[BIG, 1e17]]);
    const b = await sql("INSERT INTO c VALUES ('x', 1, 2.5) ON CONFLICT (code) DO UPDATE SET big = big + 1 RETURNING code, big", undefined, "retref");
    expect(b.rows).toEqual([["x", { int: "9007199254740994" }]]);
  });
});
