// What a scatter aggregate costs against the same query on one tablet: the same ROWS rows loaded
// into a 4-shard keyspace and into a 1-shard one, then a GROUP BY with every aggregate the gate
// combines (COUNT, SUM, AVG, MIN, MAX) and a bare COUNT(*), both through the gate's HTTP handler.
// The 4-shard side fans out to four Tablet RPCs in parallel, each aggregating its quarter, and the
// gate merges the partial groups (AVG travels as SUM and COUNT); the 1-shard keyspace is unsharded,
// so the gate passes the statement whole to its one tablet and SQLite does all of it.
//
// Local workerd runs every Durable Object on one thread, so the four shards' SQLite work does not
// overlap here as it would on four machines: the ratio is the price of fan-out (four RPCs, a
// partial result per shard, the merge) with no parallel speed-up to offset it.

import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { TopologyView } from "../contract/serving-graph.ts";
import { compare, emit, timedLoop } from "./measure.ts";

const ROWS = 20_000;
const GROUPS = 100;
/** ROWS is a multiple of it. */
const ROWS_PER_INSERT = 500;
const ROUNDS = 15;

const SHARDED = "agg4";
const SINGLE = "agg1";

interface SqlResult {
  readonly columns: string[];
  readonly rows: unknown[][];
  readonly rowsAffected: number;
}

/** One gate request in-process; anything but 200 fails the benchmark. */
async function call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: { "content-type": "application/json" } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await exports.default.fetch(new Request(`http://gate${path}`, init));
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

const sql = (keyspace: string, text: string, params: readonly number[] = []): Promise<SqlResult> =>
  call<SqlResult>("POST", "/v1/sql", { keyspace, sql: text, params });

/** Row i of the data set; integer values, so SUM is exact and AVG is the same double on both sides. */
function row(i: number): [id: number, g: number, v: number] {
  return [i + 1, i % GROUPS, (i * 7919) % 1000];
}

/**
 * ROWS rows in INSERTs of ROWS_PER_INSERT rows each. The values travel as params so every batch
 * has the same text: the gate parses and plans it once, and loading stays quick.
 */
async function load(keyspace: string): Promise<void> {
  await sql(keyspace, "CREATE TABLE t (id INTEGER PRIMARY KEY, g INTEGER NOT NULL, v INTEGER NOT NULL)");
  const insert = `INSERT INTO t (id, g, v) VALUES ${Array.from({ length: ROWS_PER_INSERT }, () => "(?, ?, ?)").join(", ")}`;
  for (let i = 0; i < ROWS; i += ROWS_PER_INSERT) {
    const params = Array.from({ length: ROWS_PER_INSERT }, (_, j) => row(i + j)).flat();
    const r = await sql(keyspace, insert, params);
    if (r.rowsAffected !== ROWS_PER_INSERT) throw new Error(`${keyspace}: inserted ${r.rowsAffected} of ${ROWS_PER_INSERT}`);
  }
}

/** The GROUP BY answer computed here, sorted by g: what both keyspaces must return. */
function expectedGroups(): unknown[][] {
  const acc = new Map<number, { count: number; sum: number; min: number; max: number }>();
  for (let i = 0; i < ROWS; i++) {
    const [, g, v] = row(i);
    const a = acc.get(g) ?? { count: 0, sum: 0, min: v, max: v };
    acc.set(g, { count: a.count + 1, sum: a.sum + v, min: Math.min(a.min, v), max: Math.max(a.max, v) });
  }
  return [...acc.entries()].sort(([a], [b]) => a - b).map(([g, a]) => [g, a.count, a.sum, a.sum / a.count, a.min, a.max]);
}

const byFirstColumn = (rows: readonly unknown[][]): unknown[][] => [...rows].sort((a, b) => Number(a[0]) - Number(b[0]));

describe("scatter aggregate", () => {
  it("GROUP BY and COUNT(*) over 4 shards vs the same rows on one tablet", async () => {
    await call("POST", "/v1/keyspaces", { name: SHARDED, shards: 4 });
    await call("POST", "/v1/keyspaces", { name: SINGLE, shards: 1 });
    await load(SHARDED);
    await load(SINGLE);

    const groupBy = "SELECT g, count(*), sum(v), avg(v), min(v), max(v) FROM t GROUP BY g";
    const count = "SELECT count(*) FROM t";

    // The plans are the ones named above: a gate-side Aggregate over a 4-shard scatter, and a
    // pass-through to the one shard.
    const planOf = async (keyspace: string): Promise<string> => String((await sql(keyspace, `VEXPLAIN PLAN ${groupBy}`)).rows[0]?.[0]);
    expect(await planOf(SHARDED)).toMatch(/"operator": "Aggregate"[\s\S]*"opcode": "scatter"/);
    expect(await planOf(SINGLE)).toMatch(/"opcode": "unsharded"/);

    // Every shard holds a share of the rows, and both keyspaces answer alike (GROUP BY output
    // order is not promised, so compare sorted by g).
    const topo = await call<TopologyView>("GET", "/v1/topology");
    const counts = topo.keyspaces.find((k) => k.name === SHARDED)?.shards.map((s) => s.rowCount ?? 0) ?? [];
    expect(counts.length).toBe(4);
    expect(counts.every((c) => c > ROWS / 8)).toBe(true);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(ROWS);
    const want = expectedGroups();
    expect(byFirstColumn((await sql(SHARDED, groupBy)).rows)).toEqual(want);
    expect(byFirstColumn((await sql(SINGLE, groupBy)).rows)).toEqual(want);
    expect((await sql(SHARDED, count)).rows).toEqual([[ROWS]]);
    expect((await sql(SINGLE, count)).rows).toEqual([[ROWS]]);

    const side = (keyspace: string, text: string, rows: number) =>
      timedLoop(async () => {
        const r = await sql(keyspace, text);
        if (r.rows.length !== rows) throw new Error(`${keyspace}: ${r.rows.length} rows for ${text}`);
      });
    emit(
      await compare({
        name: `scatter GROUP BY, ${ROWS} rows: 4 shards vs 1`,
        note: `${groupBy}; ${GROUPS} groups; gate HTTP in-process; 4 shards = scatter + gate-side merge of partial aggregates`,
        baseline: { label: "1 shard", run: side(SINGLE, groupBy, GROUPS) },
        subject: { label: "4 shards", run: side(SHARDED, groupBy, GROUPS) },
        rounds: ROUNDS,
        opsPerRound: 5,
        warmupOps: 5,
      }),
    );
    emit(
      await compare({
        name: `scatter COUNT(*), ${ROWS} rows: 4 shards vs 1`,
        note: `${count}; gate HTTP in-process; 4 shards = scatter + gate-side sum of counts`,
        baseline: { label: "1 shard", run: side(SINGLE, count, 1) },
        subject: { label: "4 shards", run: side(SHARDED, count, 1) },
        rounds: ROUNDS,
        opsPerRound: 20,
        warmupOps: 20,
      }),
    );
  });
});
