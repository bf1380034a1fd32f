// The workerd side of the end-to-end differential test: statements go to the real gate over its
// HTTP handler (in process), values cross as the JSON contract says, and answers come back as
// QueryResults the Node-side comparison (test/node/result-compare.ts) understands. Also reads a
// sharded keyspace's rows straight from its tablets, to check where each row lives.

import { env } from "cloudflare:workers";
import { tabletName, tabletRpc } from "../../contract/tablet-rpc.ts";
import type { Envelope } from "../../contract/envelope.ts";
import type { QueryResult } from "../../contract/tablet-rpc.ts";
import type { TopologyView } from "../../contract/serving-graph.ts";
import { evenShards, keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { fromJsonValue, toJsonValue, type JsonValue, type SqlValue } from "../../contract/sql-values.ts";
import { createVindex } from "../../topology/vindex.ts";
import { api } from "./helpers.ts";

/** Params as the generators produce them (test/node/fake-cursor.ts Params, without its node:sqlite import). */
export type Params = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;

export type Outcome = { readonly ok: true; readonly value: QueryResult } | { readonly ok: false; readonly code: string; readonly message: string };

export type BatchOutcome =
  | { readonly ok: true; readonly value: QueryResult[] }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly statementIndex: unknown; readonly committed: unknown };

export interface Statement {
  readonly sql: string;
  readonly params: Params | undefined;
}

function paramsToJson(p: Params): JsonValue[] | Record<string, JsonValue> {
  if (Array.isArray(p)) return (p as readonly SqlValue[]).map(toJsonValue);
  return Object.fromEntries(Object.entries(p as Readonly<Record<string, SqlValue>>).map(([k, v]) => [k, toJsonValue(v)]));
}

interface JsonResult {
  columns?: string[];
  rows?: unknown[][];
  rowsAffected?: number;
  lastInsertRowid?: unknown;
}

interface JsonError {
  error?: { code?: string; message?: string; statementIndex?: unknown; committed?: unknown };
}

function decodeResult(b: JsonResult): QueryResult {
  const value: QueryResult = {
    columns: b.columns ?? [],
    rows: (b.rows ?? []).map((row) => row.map((v, i) => fromJsonValue(v, `column ${i}`))),
    rowsAffected: b.rowsAffected ?? 0,
  };
  if (b.lastInsertRowid !== undefined) {
    const id = fromJsonValue(b.lastInsertRowid, "lastInsertRowid");
    if (typeof id === "number" || typeof id === "bigint") value.lastInsertRowid = id;
  }
  return value;
}

function body(st: Statement): { sql: string; params?: JsonValue[] | Record<string, JsonValue> } {
  return { sql: st.sql, ...(st.params === undefined ? {} : { params: paramsToJson(st.params) }) };
}

/** Runs one statement on `keyspace` through POST /v1/sql; errors come back as their catalogue code. */
export async function run(keyspace: string, sql: string, params?: Params): Promise<Outcome> {
  const r = await api<JsonResult & JsonError>("POST", "/v1/sql", { keyspace, ...body({ sql, params }) });
  const e = r.body.error;
  if (r.status !== 200) return { ok: false, code: e?.code ?? `HTTP ${r.status}`, message: e?.message ?? JSON.stringify(r.body) };
  return { ok: true, value: decodeResult(r.body) };
}

/** Runs statements on `keyspace` through POST /v1/batch. */
export async function runBatch(keyspace: string, statements: readonly Statement[], transaction: boolean): Promise<BatchOutcome> {
  const r = await api<{ results?: JsonResult[] } & JsonError>("POST", "/v1/batch", { keyspace, statements: statements.map(body), transaction });
  const e = r.body.error;
  if (r.status !== 200) {
    return {
      ok: false,
      code: e?.code ?? `HTTP ${r.status}`,
      message: e?.message ?? JSON.stringify(r.body),
      statementIndex: e?.statementIndex,
      committed: e?.committed,
    };
  }
  return { ok: true, value: (r.body.results ?? []).map(decodeResult) };
}

/** Like `run`, but a refusal throws. */
export async function must(keyspace: string, sql: string, params?: Params): Promise<QueryResult> {
  const o = await run(keyspace, sql, params);
  if (!o.ok) throw new Error(`${o.code}: ${o.message} for ${sql} on ${keyspace}`);
  return o.value;
}

/** Creates a keyspace of `shards` even shards (1 = unsharded). */
export async function createKeyspace(name: string, shards: number): Promise<void> {
  const r = await api("POST", "/v1/keyspaces", { name, shards });
  if (r.status !== 200) throw new Error(`creating keyspace ${name}: ${JSON.stringify(r.body)}`);
}

/** Where a row lives: its shard and the shard its id maps to with the xxhash vindex. */
export interface Placement {
  readonly id: SqlValue;
  readonly shard: string;
  readonly expected: string | null;
}

const xxhash = createVindex("xxhash");

/** Reads `SELECT id FROM <table>` from each tablet of a sharded keyspace of `shards` even shards. */
export async function placements(keyspace: string, shards: number, table: string): Promise<Placement[]> {
  const view = (await api<TopologyView>("GET", "/v1/topology")).body;
  const names = evenShards(shards);
  const ranges = names.map((n) => ({ name: n, range: parseKeyRange(n) }));
  const out: Placement[] = [];
  for (const shard of names) {
    const res = (await tabletRpc(env.TABLET, tabletName(keyspace, shard)).execute({ keyspace, shard, version: view.version }, [
      { sql: `SELECT id FROM ${table}`, params: [], kind: "read" },
    ])) as Envelope<QueryResult[]>;
    if (!res.ok) throw new Error(`${keyspace}/${shard}: ${res.error.message}`);
    for (const [id] of res.value[0]?.rows ?? []) {
      const v = id ?? null;
      const ksid = xxhash.map(v);
      out.push({ id: v, shard, expected: ranges.find((r) => keyRangeContains(r.range, ksid))?.name ?? null });
    }
  }
  return out;
}
