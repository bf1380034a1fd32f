// The join differential property end to end: scenarios of the Node join grammar
// (test/node/join-gen.ts: co-located and gate-side joins, CTEs, correlated subqueries, window
// functions, INSERT … SELECT and reference-table writes) through the real gate and tablets in
// workerd, on a sharded keyspace (t by id, u by t_id, v by id, r a reference table) against an
// unsharded one (one SQLite Durable Object the gate passes statements to whole). Same categories
// and rules as the Node test: the gate answers as the unsharded keyspace does, or refuses with
// UNSUPPORTED where the README lists the form as refused. After each write every shard is read
// straight from its tablet: each copy of r equals the unsharded r, and the sharded rows are the
// unsharded ones, each on the shard its vindex value maps to.
// Statements of known open gate bugs (join-gen.ts KNOWN_OPEN_BUGS) are skipped.
// Few cases: each creates two keyspaces. Raise RUNS below locally for a longer hunt.

import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, it } from "vitest";
import { tabletName, tabletRpc } from "../../contract/tablet-rpc.ts";
import type { Envelope } from "../../contract/envelope.ts";
import type { QueryResult } from "../../contract/tablet-rpc.ts";
import type { TopologyView } from "../../contract/serving-graph.ts";
import { evenShards, keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import { ERROR_CODES, VtError, type ErrorCode } from "../../contract/errors.ts";
import { createVindex } from "../../topology/vindex.ts";
import { createSql, DUMP_SQL, knownOpenBug, newStats, runSteps, scenarioArb, statsReport, TABLES, type JoinStats, type Scenario } from "../node/join-gen.ts";
import { diffResults, show } from "../node/result-compare.ts";
import { api } from "./helpers.ts";
import { createKeyspace, run, type Params } from "./differential.harness.ts";

/** Cases of the property (each creates two keyspaces, loads four tables and runs up to 8 statements). */
const RUNS = 10;

const VSCHEMA = {
  sharded: true,
  vindexes: { xx: { type: "xxhash" } },
  tables: {
    t: { column_vindexes: [{ column: "id", name: "xx" }] },
    u: { column_vindexes: [{ column: "t_id", name: "xx" }] },
    v: { column_vindexes: [{ column: "id", name: "xx" }] },
    r: { type: "reference" },
  },
};

const xxhash = createVindex("xxhash");

/** Runs `sql` straight on one tablet of `keyspace`. */
async function onTablet(keyspace: string, shard: string, sql: string): Promise<QueryResult> {
  const view = (await api<TopologyView>("GET", "/v1/topology")).body;
  const res = (await tabletRpc(env.TABLET, tabletName(keyspace, shard)).execute({ keyspace, shard, version: view.version }, [
    { sql, params: [], kind: "read" },
  ])) as Envelope<QueryResult[]>;
  if (!res.ok) throw new Error(`${keyspace}/${shard}: ${res.error.message}`);
  const r = res.value[0];
  if (!r) throw new Error(`${keyspace}/${shard}: no result`);
  return r;
}

/** Through the gate; a refusal throws a VtError with its catalogue code (as the Node runner expects). */
async function through(keyspace: string, sql: string, params?: Params): Promise<QueryResult> {
  const o = await run(keyspace, sql, params);
  if (!o.ok) throw new VtError(o.code in ERROR_CODES ? (o.code as ErrorCode) : "INTERNAL", o.code in ERROR_CODES ? o.message : `${o.code}: ${o.message}`);
  return o.value;
}

let cases = 0;

async function runScenario(sc: Scenario, st: JoinStats): Promise<void> {
  const n = cases++;
  const sharded = `jd_s${n}`;
  const single = `jd_u${n}`;
  await createKeyspace(sharded, sc.shards);
  await createKeyspace(single, 1);
  const vs = await api("POST", "/v1/vschema", { keyspace: sharded, vschema: VSCHEMA });
  if (vs.status !== 200) throw new Error(`vschema: ${JSON.stringify(vs.body)}`);
  const creates = TABLES.map((t) => createSql(sc.schema, t));
  for (const ks of [sharded, single]) for (const c of creates) await through(ks, c);
  const names = evenShards(sc.shards);
  const ranges = names.map((name) => ({ name, range: parseKeyRange(name) }));
  const shardOf = (v: SqlValue): string | undefined => ranges.find((r) => keyRangeContains(r.range, xxhash.map(v)))?.name;

  async function verify(): Promise<string | undefined> {
    const rRef = await through(single, DUMP_SQL.r);
    for (const shard of names) {
      const d = diffResults(await onTablet(sharded, shard, DUMP_SQL.r), rRef, { ordered: true });
      if (d) return `shard ${shard}'s copy of r: ${d}`;
    }
    for (const [table, col] of [
      ["t", 0],
      ["u", 1],
      ["v", 0],
    ] as const) {
      const ref = await through(single, DUMP_SQL[table]);
      const rows: SqlValue[][] = [];
      for (const shard of names) {
        for (const row of (await onTablet(sharded, shard, DUMP_SQL[table])).rows) {
          const at = shardOf(row[col] ?? null);
          if (at !== shard) return `${table} row ${show(row)} is on shard ${shard}, its vindex value maps to ${String(at)}`;
          rows.push([...row]);
        }
      }
      const d = diffResults({ columns: ref.columns, rows, rowsAffected: 0 }, ref, { ordered: false });
      if (d) return `table ${table} over the shards: ${d}`;
    }
    return undefined;
  }

  const header = [`-- ${sc.shards} shard(s) (keyspace ${sharded}) vs unsharded (${single})`, ...creates.map((c) => `${c};`)];
  await runSteps(
    sc,
    { header, run: (sql, p) => through(sharded, sql, p), reference: (sql, p) => through(single, sql, p), verify },
    st,
    (q) => knownOpenBug(q) !== undefined,
  );
}

describe("joins differential end to end: a sharded keyspace vs an unsharded one", () => {
  it("every join, CTE, subquery, window and write the gate answers, it answers as one SQLite Durable Object does", async () => {
    // The seed is printed first, so a run that never ends (a hang rather than a failure) can be replayed.
    const seed = Date.now() % 2 ** 31;
    console.log(`joins e2e: fast-check seed ${seed}`);
    const stats = newStats();
    try {
      await fc.assert(
        fc.asyncProperty(scenarioArb, (sc) => runScenario(sc, stats)),
        { numRuns: RUNS, seed, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false },
      );
    } finally {
      console.log(`joins e2e (${RUNS} runs):\n${statsReport(stats)}`);
    }
  }, 120_000);
});
