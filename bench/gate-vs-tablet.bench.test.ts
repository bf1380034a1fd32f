// What the gate costs per statement: the same point SELECT and single-row INSERT sent through
// the gate's HTTP handler (parse the JSON body, plan from the plan cache, route by vindex, one
// tablet RPC, encode JSON) versus straight to the owning tablet's `execute` over RPC. Both paths
// start in this test isolate and end in the same Tablet Durable Object, so the ratio is the gate's
// share on top of one tablet round trip. Local workerd: no network between gate and tablet.

import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { KeyspaceGraph, ServingGraph } from "../contract/serving-graph.ts";
import { keyRangeContains, parseKeyRange } from "../topology/keyrange.ts";
import { vindexOf } from "../topology/vschema.ts";
import type { BoundQuery, QueryResult, Target } from "../contract/tablet-rpc.ts";
import type { Envelope } from "../contract/envelope.ts";
import { compare, emit, timedLoop } from "./measure.ts";

const KEYSPACE = "main";
const TABLE = "bench_users";
const SEEDED = 1000;
const ROUNDS = 20;
const OPS_PER_ROUND = 100;
const WARMUP = 200;

/** RPC wraps return types; envelopes are plain data, so view them as such. */
const asEnvelope = <T>(x: unknown): Envelope<T> => x as Envelope<T>;

function unwrap<T>(e: Envelope<T>): T {
  if (!e.ok) throw new Error(`${e.error.code}: ${e.error.message}`);
  return e.value;
}

interface GateResult {
  readonly rows: unknown[][];
  readonly rowsAffected: number;
}

async function gateSql(sql: string, params: readonly unknown[]): Promise<GateResult> {
  const res = await exports.default.fetch(
    new Request("http://gate/v1/sql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql, params }),
    }),
  );
  const text = await res.text();
  if (res.status !== 200) throw new Error(`gate answered ${res.status}: ${text}`);
  return JSON.parse(text) as GateResult;
}

async function keyspaceGraph(): Promise<KeyspaceGraph> {
  const g = unwrap(asEnvelope<ServingGraph>(await env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global")).graph()));
  const ks = g.keyspaces[KEYSPACE];
  if (!ks) throw new Error(`no keyspace ${KEYSPACE}`);
  return ks;
}

/** The shard an id routes to, by the table's primary vindex: what the gate computes per statement. */
function shardResolver(ks: KeyspaceGraph): (id: number) => string {
  const cv = ks.vschema.tables[TABLE]?.column_vindexes?.[0];
  if (!cv) throw new Error(`${TABLE} has no primary vindex`);
  const vindex = vindexOf(ks.vschema, cv.name);
  const ranges = ks.shards.filter((s) => s.serving).map((s) => ({ name: s.name, range: parseKeyRange(s.keyRange) }));
  return (id) => {
    const ksid = vindex.map(id);
    const hit = ranges.find((r) => keyRangeContains(r.range, ksid));
    if (!hit) throw new Error(`no shard for id ${id}`);
    return hit.name;
  };
}

function tablet(shard: string) {
  return env.TABLET.get(env.TABLET.idFromName(`${KEYSPACE}/${shard}`));
}

async function direct(shard: string, version: number, q: BoundQuery): Promise<QueryResult> {
  const target: Target = { keyspace: KEYSPACE, shard, version };
  const [r] = unwrap(asEnvelope<QueryResult[]>(await tablet(shard).execute(target, [q])));
  if (!r) throw new Error("no result");
  return r;
}

describe("gate vs tablet", () => {
  it("point SELECT and single-row INSERT, through the gate and straight to the tablet", async () => {
    await gateSql(`CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)`, []);
    for (let i = 0; i < SEEDED; i += 100) {
      const values = Array.from({ length: 100 }, (_, j) => `(${i + j + 1}, 'user${i + j + 1}', ${((i + j) % 37) * 1.5})`);
      await gateSql(`INSERT INTO ${TABLE} (id, name, score) VALUES ${values.join(", ")}`, []);
    }
    const ks = await keyspaceGraph();
    const shardOf = shardResolver(ks);

    // Point SELECT: cycle through the seeded ids; both sides read the same id in the same order.
    const select = `SELECT * FROM ${TABLE} WHERE id = ?`;
    const idAt = (i: number): number => (i % SEEDED) + 1;
    let gi = 0;
    let di = 0;
    expect((await gateSql(select, [7])).rows).toEqual([[7, "user7", 9]]);
    expect((await direct(shardOf(7), ks.version, { sql: select, params: [7], kind: "read" })).rows).toEqual([[7, "user7", 9]]);
    emit(
      await compare({
        name: "point SELECT: gate vs tablet",
        note: "HTTP POST /v1/sql to the gate vs Tablet.execute RPC to the owning shard",
        baseline: {
          label: "tablet RPC",
          run: timedLoop(async () => {
            const id = idAt(di++);
            const r = await direct(shardOf(id), ks.version, { sql: select, params: [id], kind: "read" });
            if (r.rows.length !== 1) throw new Error(`id ${id}: ${r.rows.length} rows`);
          }),
        },
        subject: {
          label: "gate HTTP",
          run: timedLoop(async () => {
            const id = idAt(gi++);
            const r = await gateSql(select, [id]);
            if (r.rows.length !== 1) throw new Error(`id ${id}: ${r.rows.length} rows`);
          }),
        },
        rounds: ROUNDS,
        opsPerRound: OPS_PER_ROUND,
        warmupOps: WARMUP,
      }),
    );

    // The Worker hop alone, for reading the two above: a gate request that runs no SQL (GET
    // /healthz) against the same tablet point read. What the gate SELECT costs beyond both is
    // the gate's own work (JSON, planning, routing).
    emit(
      await compare({
        name: "gate hop, no SQL: /healthz vs tablet SELECT",
        note: "GET /healthz on the gate (same loopback as /v1/sql, no SQL) vs the tablet point SELECT above",
        baseline: {
          label: "tablet RPC",
          run: timedLoop(async () => {
            const id = idAt(di++);
            await direct(shardOf(id), ks.version, { sql: select, params: [id], kind: "read" });
          }),
        },
        subject: {
          label: "gate /healthz",
          run: timedLoop(async () => {
            const res = await exports.default.fetch(new Request("http://gate/healthz"));
            if ((await res.text()) !== "ok") throw new Error("healthz");
          }),
        },
        rounds: ROUNDS,
        opsPerRound: OPS_PER_ROUND,
        warmupOps: WARMUP,
      }),
    );

    // Single-row INSERT: distinct id ranges per side; the direct side routes each id itself.
    const insert = `INSERT INTO ${TABLE} (id, name, score) VALUES (?, ?, ?)`;
    let nextGate = 1_000_000;
    let nextDirect = 2_000_000;
    emit(
      await compare({
        name: "single-row INSERT: gate vs tablet",
        note: "HTTP POST /v1/sql to the gate vs Tablet.execute RPC to the owning shard; each is one write transaction with its binlog",
        baseline: {
          label: "tablet RPC",
          run: timedLoop(async () => {
            const id = nextDirect++;
            const r = await direct(shardOf(id), ks.version, { sql: insert, params: [id, `user${id}`, 1.5], kind: "insert" });
            if (r.rowsAffected !== 1) throw new Error(`id ${id} not inserted`);
          }),
        },
        subject: {
          label: "gate HTTP",
          run: timedLoop(async () => {
            const id = nextGate++;
            const r = await gateSql(insert, [id, `user${id}`, 1.5]);
            if (r.rowsAffected !== 1) throw new Error(`id ${id} not inserted`);
          }),
        },
        rounds: ROUNDS,
        opsPerRound: OPS_PER_ROUND,
        warmupOps: WARMUP,
      }),
    );

    // The direct inserts went where the gate looks for them, and both sides wrote every row.
    const inserted = WARMUP + ROUNDS * OPS_PER_ROUND;
    expect((await gateSql(`SELECT count(*) FROM ${TABLE} WHERE id >= 2000000`, [])).rows).toEqual([[inserted]]);
    expect((await gateSql(`SELECT count(*) FROM ${TABLE} WHERE id >= 1000000 AND id < 2000000`, [])).rows).toEqual([[inserted]]);
    for (const id of [2_000_000, 2_000_001, nextDirect - 1]) {
      expect((await gateSql(select, [id])).rows).toEqual([[id, `user${id}`, 1.5]]);
    }
  });
});
