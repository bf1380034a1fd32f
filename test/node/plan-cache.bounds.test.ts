// The plan cache is bounded by an estimate of the heap its plans hold, not only by entries: a
// gate that sees many long distinct statements keeps at most the byte budget of them.

import { describe, expect, it } from "vitest";
import { PlanCache, planBytes } from "../../gate/planner/plan.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { evenShards } from "../../topology/keyrange.ts";

function keyspace(): KeyspaceGraph {
  return {
    name: "m",
    sharded: true,
    vschema: { sharded: true, vindexes: { xxhash: { type: "xxhash" } }, tables: { t: { column_vindexes: [{ column: "id", name: "xxhash" }] } } },
    shards: evenShards(4).map((n) => ({ name: n, keyRange: n, serving: true, tablet: n })),
    tables: {
      t: {
        name: "t",
        sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
        columns: [
          { name: "id", type: "INTEGER", pk: 1, notNull: true },
          { name: "v", type: "TEXT", pk: 0, notNull: false },
        ],
      },
    },
    schemaIndex: 1,
    version: 1,
  };
}

/** A distinct ~85 KB statement (a long string literal; all of the same length). */
function long(i: number): string {
  return `SELECT id FROM t WHERE id = ${1000 + i} AND v <> '${"x".repeat(85_000)}'`;
}

describe("plan cache memory bound", () => {
  it("20 distinct 85 KB statements do not all stay cached: the estimate stays within the 16 MiB default budget", () => {
    const ks = keyspace();
    const cache = new PlanCache();
    for (let i = 0; i < 20; i++) cache.plan(long(i), ks);
    expect(cache.size).toBeLessThan(20);
    expect(cache.bytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    // The newest stays cached (a hit), the oldest was evicted (a miss).
    const misses = cache.misses;
    cache.plan(long(19), ks);
    expect(cache.misses).toBe(misses);
    cache.plan(long(0), ks);
    expect(cache.misses).toBe(misses + 1);
  });

  it("evicts least recently used plans until the estimate fits, and keeps the estimate exact across evictions", () => {
    const ks = keyspace();
    const one = planBytes(`m\u00011\u0001${long(0)}`.length);
    const cache = new PlanCache(2000, one * 3 + 10);
    for (let i = 0; i < 3; i++) cache.plan(long(i), ks);
    expect(cache.size).toBe(3);
    cache.plan(long(0), ks); // touch 0: 1 is now the oldest
    cache.plan(long(3), ks);
    expect(cache.size).toBe(3);
    expect(cache.bytes).toBe(
      planBytes(`m\u00011\u0001${long(0)}`.length) + planBytes(`m\u00011\u0001${long(2)}`.length) + planBytes(`m\u00011\u0001${long(3)}`.length),
    );
    const misses = cache.misses;
    cache.plan(long(0), ks);
    expect(cache.misses).toBe(misses);
    cache.plan(long(1), ks);
    expect(cache.misses).toBe(misses + 1);
  });

  it("a plan whose estimate is over the whole budget is answered but not kept", () => {
    const ks = keyspace();
    const cache = new PlanCache(2000, 64 * 1024);
    cache.plan("SELECT v FROM t WHERE id = ?", ks);
    const plan = cache.plan(long(0), ks);
    expect(plan.kind).toBe("read");
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBe(planBytes("m\u00011\u0001SELECT v FROM t WHERE id = ?".length));
  });

  it("still bounds the number of entries", () => {
    const ks = keyspace();
    const cache = new PlanCache(5);
    for (let i = 0; i < 20; i++) cache.plan(`SELECT v FROM t WHERE id = ${i}`, ks);
    expect(cache.size).toBe(5);
  });
});
