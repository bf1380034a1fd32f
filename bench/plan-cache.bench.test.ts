// What the plan cache saves per statement: a cold parse+plan (`planParsed(parseOne(sql), ks)`,
// exactly what PlanCache.plan does on a miss, called directly so no cache is anywhere on that
// side) versus a hit (`PlanCache.plan` with the same text again: build the key, one Map lookup,
// LRU touch). Five statements a gate sees, planned against a hand-built 4-shard keyspace, so no
// Durable Object or RPC is involved: this is pure gate CPU.
//
// "Cold" means a cache miss, not a cold JIT: both sides are warmed before timing. A miss also
// re-parses the table's CREATE TABLE text wherever the planner asks a column's collation
// (routing, ORDER BY, GROUP BY, MIN/MAX), so wide tables and aggregates cost more than their own
// statement's length suggests.
//
// A hit is thousands of times cheaper than a miss, so both cannot run the same number of
// operations in a round and still both take tens of ms (local workerd's clock moves in ~1 ms
// steps). Each side is calibrated to ~ROUND_MS per round, and the hit side runs `repeat` times as
// many operations as the cold one (measure.ts keeps µs/op and the ratio per operation).

import { describe, expect, it } from "vitest";
import { PlanCache, planParsed, type Plan } from "../gate/planner/plan.ts";
import { parseOne } from "../gate/sql/parse.ts";
import type { PlanDescription } from "../gate/engine/primitive.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import { evenShards } from "../topology/keyrange.ts";
import type { VSchema } from "../contract/vschema.ts";
import type { ColumnInfo, TableInfo } from "../contract/tablet-rpc.ts";
import { compare, emit, type Timed } from "./measure.ts";

const ROUNDS = 15;
/** Target length of one timed round per side, in ms. */
const ROUND_MS = 60;
/** Untimed running of each side before calibration, in ms. */
const WARM_MS = 300;
const WIDE_COLUMNS = 50;

/** A TableInfo as the tablet reports it; `pk` names the one primary-key column. */
function tableInfo(name: string, columns: readonly (readonly [string, string])[], pk: string): TableInfo {
  const cols: ColumnInfo[] = columns.map(([n, type]) => ({ name: n, type, pk: n === pk ? 1 : 0, notNull: n === pk }));
  const defs = columns.map(([n, type]) => `${n} ${type}${n === pk ? " PRIMARY KEY" : ""}`);
  return { name, columns: cols, sql: `CREATE TABLE ${name} (${defs.join(", ")})` };
}

const wideColumns = Array.from({ length: WIDE_COLUMNS }, (_, i) => `c${String(i + 1).padStart(2, "0")}`);

const TABLES: readonly TableInfo[] = [
  tableInfo(
    "bench_t",
    [
      ["id", "INTEGER"],
      ["g", "INTEGER"],
      ["v", "REAL"],
      ["name", "TEXT"],
    ],
    "id",
  ),
  tableInfo("bench_wide", [["id", "INTEGER"], ...wideColumns.map((c) => [c, "TEXT"] as const)], "id"),
];

/** A sharded keyspace as the Topology would serve it: 4 even shards, xxhash on id. */
function keyspace(): KeyspaceGraph {
  const vschema: VSchema = { sharded: true, vindexes: { xxhash: { type: "xxhash" } }, tables: {} };
  const tables: Record<string, TableInfo> = {};
  for (const t of TABLES) {
    vschema.tables[t.name] = { column_vindexes: [{ column: "id", name: "xxhash" }] };
    tables[t.name.toLowerCase()] = t;
  }
  return {
    name: "bench",
    sharded: true,
    vschema,
    shards: evenShards(4).map((n) => ({ name: n, keyRange: n, serving: true, tablet: n })),
    tables,
    schemaIndex: TABLES.length,
    version: 1,
  };
}

interface Case {
  readonly name: string;
  readonly sql: string;
  /** The root operator and the Route opcode under it: the planner really did the work we name. */
  readonly root: string;
  readonly route: string;
}

const insertRows = 20;
const CASES: readonly Case[] = [
  { name: "point SELECT", sql: "SELECT id, name, v FROM bench_t WHERE id = ?", root: "PointRoute", route: "equal" },
  {
    name: "scatter ORDER BY … LIMIT",
    sql: "SELECT id, name, v FROM bench_t WHERE v > ? ORDER BY v DESC, id LIMIT 10",
    root: "Limit",
    route: "scatter",
  },
  {
    name: "GROUP BY aggregate + HAVING",
    sql: "SELECT g, count(*), sum(v), avg(v), min(name), max(v) FROM bench_t GROUP BY g HAVING count(*) > 1 ORDER BY g",
    root: "Aggregate",
    route: "scatter",
  },
  {
    name: `INSERT, ${insertRows} rows`,
    sql: `INSERT INTO bench_t (id, g, v, name) VALUES ${Array.from({ length: insertRows }, () => "(?, ?, ?, ?)").join(", ")}`,
    root: "Insert",
    route: "",
  },
  {
    name: `SELECT of ${WIDE_COLUMNS} columns`,
    sql: `SELECT ${wideColumns.join(", ")} FROM bench_wide WHERE id = ?`,
    root: "PointRoute",
    route: "equal",
  },
];

function routeOpcode(d: PlanDescription): string {
  if (d.operator === "Route") return typeof d["opcode"] === "string" ? d["opcode"] : "";
  for (const i of d.inputs ?? []) {
    const op = routeOpcode(i);
    if (op) return op;
  }
  return "";
}

/** `op` repeated `ops` times, timed around the synchronous loop. */
function syncLoop(op: () => Plan): Timed {
  return (ops) => {
    let sink = 0;
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) sink += op().params.length;
    const ms = performance.now() - t0;
    if (sink < 0) throw new Error("unreachable");
    return Promise.resolve(ms);
  };
}

/**
 * Runs `run` for about `ms` so the parser and planner reach optimised code before anything is
 * timed; the few warm-up operations `compare` runs are not enough for a multi-ms parse.
 */
async function warm(run: Timed, ms: number): Promise<void> {
  const t0 = performance.now();
  for (let n = 1; performance.now() - t0 < ms; n = Math.min(n * 2, 1 << 16)) await run(n);
}

/** How many operations of `run` fit in `ms` (at least 1), from a run that itself took `ms` or more. */
async function opsIn(run: Timed, ms: number): Promise<number> {
  for (let n = 1; ; n *= 2) {
    const took = await run(n);
    if (took >= ms) return Math.max(1, Math.round((n * ms) / took));
  }
}

describe("plan cache", () => {
  it("cold parse+plan vs plan-cache hit, per statement", async () => {
    const ks = keyspace();
    for (const c of CASES) {
      // Both sides give the same plan, of the shape the case is named for.
      const cold = (): Plan => planParsed(parseOne(c.sql), ks);
      const cache = new PlanCache();
      const hit = (): Plan => cache.plan(c.sql, ks);
      const first = hit();
      expect(cache.misses).toBe(1);
      const d = first.primitive.describe();
      expect(d.operator).toBe(c.root);
      expect(routeOpcode(d)).toBe(c.route);
      expect(cold().primitive.describe()).toEqual(d);
      expect(hit()).toBe(first);

      const coldRun = syncLoop(cold);
      const hitRun = syncLoop(hit);
      await warm(coldRun, WARM_MS);
      await warm(hitRun, WARM_MS);
      const coldOps = await opsIn(coldRun, ROUND_MS);
      const repeat = Math.max(1, Math.round((await opsIn(hitRun, ROUND_MS)) / coldOps));
      emit(
        await compare({
          name: `plan ${c.name}: cache hit vs cold`,
          note: `cold = planParsed(parseOne(sql)) with no cache; hit = PlanCache.plan on the same text (hit side runs ${repeat}× the ops per round); ${c.sql.length} chars`,
          baseline: { label: "cache hit", run: hitRun, repeat },
          subject: { label: "cold parse+plan", run: coldRun },
          rounds: ROUNDS,
          opsPerRound: coldOps,
          warmupOps: coldOps,
        }),
      );
      // The hit side never planned again: every call after the first was served from the map.
      expect(cache.misses).toBe(1);
      expect(cache.hits).toBeGreaterThan(ROUNDS * coldOps * repeat);
    }
  });
});
