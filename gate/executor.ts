// The gate's executor: plans statements against the cached serving graph, runs them through a
// VCursor backed by tablet RPC, and recovers from a stale cache (refresh, re-plan, retry) only
// where a retry cannot apply anything twice.

import { errorBody, toVtError, VtError } from "../contract/errors.ts";
import { unsupportedError } from "../topology/refusals.ts";
import type { KeyspaceGraph, ServingGraph, TopologyView } from "../contract/serving-graph.ts";
import { toJsonValue, type SqlValue } from "../contract/sql-values.ts";
import { MAX_VALUE_BYTES } from "../topology/value-limits.ts";
import { catalogRpc, topologyRpc, type DdlRequest, type TopologyRpc } from "../contract/topology-rpc.ts";
import { tabletRpc, type BoundQuery, type QueryResult } from "../contract/tablet-rpc.ts";
import { unwrap, type Envelope } from "../contract/envelope.ts";
import type { VCursor } from "./engine/primitive.ts";
import { PlanCache, type Plan } from "./planner/plan.ts";
import { Bindings, render } from "./sql/template.ts";
import { parseOne } from "./sql/parse.ts";
import { PointRoute } from "./engine/point-route.ts";
import { concatResults, Route } from "./engine/route.ts";
import { Insert } from "./engine/insert.ts";
import { blockOf, reserveQuery, SequenceCache } from "./engine/sequence.ts";
import { own } from "../topology/own.ts";
import { Deadline, queryTimeoutMs, type CallInfo } from "./deadline.ts";

export type Params = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;

export interface Statement {
  readonly sql: string;
  readonly params?: Params;
}

export { MAX_VALUE_BYTES };
export const MAX_SQL_CHARS = 100_000;
const GRAPH_TTL_MS = 5_000;
const RETRIES = 3;

/** Shared per isolate: the serving graph cache and the plan cache. */
const state: { graph: ServingGraph | null; fetchedAt: number; plans: PlanCache; sequences: SequenceCache } = {
  graph: null,
  fetchedAt: 0,
  plans: new PlanCache(),
  sequences: new SequenceCache(),
};

/**
 * The keyspace and table of a sequence named `table` or `keyspace.table`: a table of an
 * unsharded keyspace, marked `{"type": "sequence"}` in its vschema (or, named with its keyspace,
 * any table of an unsharded keyspace).
 */
export function locateSequence(g: ServingGraph, name: string): { keyspace: string; table: string } {
  const dot = name.indexOf(".");
  const hint = `create it in an unsharded keyspace (CREATE TABLE ${name.slice(dot + 1)} (id INTEGER PRIMARY KEY, next_id INTEGER NOT NULL, cache INTEGER NOT NULL), then INSERT (0, 1, 100)) and mark it {"type": "sequence"} in that keyspace's vschema`;
  if (dot > 0) {
    const keyspace = name.slice(0, dot);
    const table = name.slice(dot + 1);
    const ks = own(g.keyspaces, keyspace);
    if (!ks || ks.sharded || !own(ks.tables, table.toLowerCase())) throw new VtError("INVALID_ARGUMENT", `no sequence table ${name}: ${hint}`);
    return { keyspace, table };
  }
  const lower = name.toLowerCase();
  const marked = Object.values(g.keyspaces).filter(
    (ks) => !ks.sharded && Object.entries(ks.vschema.tables).some(([t, v]) => t.toLowerCase() === lower && v.type === "sequence"),
  );
  const found = marked.length > 0 ? marked : Object.values(g.keyspaces).filter((ks) => !ks.sharded && own(ks.tables, lower));
  if (found.length !== 1) {
    throw new VtError(
      "INVALID_ARGUMENT",
      found.length === 0
        ? `no sequence table ${name}: ${hint}`
        : `sequence ${name} is in several keyspaces (${found.map((k) => k.name).join(", ")}); name it as keyspace.${name}`,
    );
  }
  return { keyspace: (found[0] as KeyspaceGraph).name, table: name };
}

export function planCache(): PlanCache {
  return state.plans;
}

/**
 * A UTF-16 surrogate without its pair (JSON and capnweb can carry one, as `\ud800`) has no UTF-8
 * form: SQLite would store bytes that read back as U+FFFD, a silently different value.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function checkStatement(st: Statement, where: string): void {
  if (typeof st.sql !== "string") throw new VtError("INVALID_ARGUMENT", `${where}: "sql" must be a string`);
  if (st.sql.length > MAX_SQL_CHARS) throw new VtError("INVALID_ARGUMENT", `${where}: SQL text is over ${MAX_SQL_CHARS} characters`);
  const lone = LONE_SURROGATE.exec(st.sql);
  if (lone)
    throw new VtError("INVALID_ARGUMENT", `${where}: the SQL text holds a lone UTF-16 surrogate at position ${lone.index}, which is not Unicode text`, {
      position: lone.index,
    });
  const values = st.params === undefined ? [] : Array.isArray(st.params) ? st.params : Object.values(st.params);
  values.forEach((v, i) => {
    if (typeof v === "string" && LONE_SURROGATE.test(v)) {
      throw new VtError(
        "INVALID_ARGUMENT",
        `${where}: param ${i + 1} holds a lone UTF-16 surrogate, which is not Unicode text (SQLite would store it as U+FFFD)`,
      );
    }
    const size = typeof v === "string" ? new TextEncoder().encode(v).length : v instanceof Uint8Array ? v.length : 0;
    if (size > MAX_VALUE_BYTES) {
      throw new VtError("INVALID_ARGUMENT", `${where}: param ${i + 1} is ${size} bytes; a value may be at most ${MAX_VALUE_BYTES} bytes`, {
        limit: MAX_VALUE_BYTES,
      });
    }
  });
}

/**
 * One per gate request: every tablet and Topology call it makes shares one deadline
 * (`QUERY_TIMEOUT_MS`, see deadline.ts), so the request answers TIMEOUT rather than waiting on a
 * Durable Object that does not answer.
 */
export class Executor {
  readonly #env: Env;
  readonly #deadline: Deadline;

  constructor(env: Env, deadline?: Deadline) {
    this.#env = env;
    this.#deadline = deadline ?? new Deadline(queryTimeoutMs(env.QUERY_TIMEOUT_MS));
  }

  /** A Topology call under the request's deadline; `writes` when it may change the topology. */
  async #topology<T>(writes: boolean, call: (t: TopologyRpc) => Promise<Envelope<T>>): Promise<T> {
    const stub = topologyRpc(this.#env.TOPOLOGY);
    return unwrap(await this.#deadline.race(() => call(stub), { target: "the topology", writes }));
  }

  /** Statements on one tablet under the request's deadline. */
  async #tablet(keyspace: string, shard: string, version: number, queries: BoundQuery[]): Promise<QueryResult[]> {
    const stub = tabletRpc(this.#env.TABLET, keyspace, shard);
    const info: CallInfo = { target: `tablet ${keyspace}/${shard}`, writes: queries.some((q) => q.kind !== "read"), shard };
    return unwrap(await this.#deadline.race(async () => stub.execute({ keyspace, shard, version }, queries), info));
  }

  #backoff(attempt: number): Promise<void> {
    return this.#deadline.sleep(10 * 4 ** attempt, { target: "a retry after a serving-graph change", writes: false });
  }

  async graph(refresh = false): Promise<ServingGraph> {
    if (!refresh && state.graph && Date.now() - state.fetchedAt < GRAPH_TTL_MS) return state.graph;
    const g = await this.#topology(false, (t) => t.graph());
    state.graph = g;
    state.fetchedAt = Date.now();
    return g;
  }

  #adopt(g: ServingGraph): void {
    state.graph = g;
    state.fetchedAt = Date.now();
  }

  async keyspace(name: string | undefined, refresh = false): Promise<KeyspaceGraph> {
    const ksName = name ?? (this.#env.DEFAULT_KEYSPACE || "main");
    let g = await this.graph(refresh);
    let ks = own(g.keyspaces, ksName);
    if (!ks && !refresh) {
      g = await this.graph(true);
      ks = own(g.keyspaces, ksName);
    }
    if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${ksName}"`, { keyspace: ksName });
    return ks;
  }

  #cursor(ks: KeyspaceGraph, touched: Set<string>): VCursor {
    return {
      keyspace: ks,
      execute: async (shard: string, queries: BoundQuery[]): Promise<QueryResult[]> => {
        const res = await this.#tablet(ks.name, shard, ks.version, queries);
        touched.add(shard);
        return res;
      },
      catalog: async (query: BoundQuery): Promise<QueryResult> => {
        return unwrap(await catalogRpc(this.#env.CATALOG, ks.name).query(ks.name, ks.schemaIndex, query));
      },
      nextValues: (sequence, count) => this.#nextValues(sequence, count),
      lookupExecute: (keyspace, sql, params) => this.execute(keyspace, { sql, params }),
      forgetSequence: (sequence) => {
        try {
          const { keyspace, table } = locateSequence(state.graph ?? { version: 0, keyspaces: {} }, sequence);
          state.sequences.forget(`${keyspace}.${table}`.toLowerCase());
        } catch {
          // unknown sequence: nothing cached
        }
      },
      applyDdl: (req) => this.#applyDdl({ keyspace: ks.name, ...req, requestId: crypto.randomUUID() }),
    };
  }

  /**
   * A DDL through the Topology. A retryable failure (the Topology restarted, a shard did not
   * answer) is retried with the same request id, so a retry answers the first attempt's outcome
   * when that attempt was decided, and never applies the statement twice.
   */
  async #applyDdl(req: DdlRequest): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.#adopt(await this.#topology(true, (t) => t.applyDdl(req)));
        return;
      } catch (e) {
        const vt = toVtError(e);
        if (!vt.retryable || attempt >= RETRIES) throw vt;
        await this.#backoff(attempt);
      }
    }
  }

  /** Ids from a sequence table, served from this isolate's cached block or a newly reserved one. */
  async #nextValues(sequence: string, count: number): Promise<SqlValue[]> {
    const { keyspace, table } = locateSequence(await this.graph(), sequence);
    return state.sequences.take(`${keyspace}.${table}`.toLowerCase(), count, async (n) => {
      for (let attempt = 0; ; attempt++) {
        const ks = await this.keyspace(keyspace, attempt > 0);
        const shard = ks.shards[0]?.name;
        if (!shard) throw new VtError("NOT_SERVING", `keyspace ${keyspace} has no shard`);
        try {
          const [res] = await this.#tablet(ks.name, shard, ks.version, [reserveQuery(table, n)]);
          return blockOf(sequence, res?.rows ?? []);
        } catch (e) {
          const vt = toVtError(e);
          // Only a stale graph is retried: the tablet refused before running anything.
          if (vt.code !== "NOT_SERVING" || vt["servingVersion"] === undefined || attempt >= RETRIES) throw vt;
        }
      }
    });
  }

  /** Plans against the cached graph; an unknown table first refreshes the graph once. */
  async #plan(keyspace: string | undefined, sql: string, refresh: boolean): Promise<{ ks: KeyspaceGraph; plan: Plan }> {
    let ks = await this.keyspace(keyspace, refresh);
    try {
      return { ks, plan: state.plans.plan(sql, ks) };
    } catch (e) {
      const vt = toVtError(e);
      if (vt.code !== "UNKNOWN_TABLE" || refresh) throw vt;
      ks = await this.keyspace(keyspace, true);
      return { ks, plan: state.plans.plan(sql, ks) };
    }
  }

  async execute(keyspace: string | undefined, st: Statement): Promise<QueryResult> {
    checkStatement(st, "statement");
    const b = new Bindings(st.params);
    const vx = /^\s*vexplain(\s+(plan|all|queries))?\s+/i.exec(st.sql);
    if (vx) {
      // Blank the prefix out rather than cut it, so syntax error positions stay right.
      const { ks, plan } = await this.#plan(keyspace, " ".repeat(vx[0].length) + st.sql.slice(vx[0].length), false);
      b.check(plan.params);
      const tree = plan.primitive.describe({ keyspace: ks, bindings: b });
      const text = JSON.stringify(tree, (_k, v: unknown) => (typeof v === "bigint" || v instanceof Uint8Array ? toJsonValue(v) : v), 2);
      return { columns: ["plan"], rows: [[text]], rowsAffected: 0 };
    }
    let refresh = false;
    for (let attempt = 0; ; attempt++) {
      const { ks, plan } = await this.#plan(keyspace, st.sql, refresh);
      b.check(plan.params);
      const touched = new Set<string>();
      try {
        return await plan.primitive.execute(this.#cursor(ks, touched), b);
      } catch (e) {
        const vt = toVtError(e);
        // A stale graph: retry after a refresh, unless some shard already applied a write. DDL
        // retries itself with its request id (#applyDdl); a new attempt here would get a new one.
        const safe = plan.kind === "read" || (touched.size === 0 && plan.kind !== "ddl");
        if (vt.code !== "NOT_SERVING" || !safe || attempt >= RETRIES) throw vt;
        await this.#repairIfBehind(ks, vt);
        await this.#backoff(attempt);
        refresh = true;
      }
    }
  }

  /**
   * Statements in order. With `transaction`, all must reach one shard and run there as one
   * SQLite transaction (all or nothing); multi-shard transactions are UNSUPPORTED for now.
   * Without it each commits on its own and the first error stops the batch.
   */
  async batch(keyspace: string | undefined, statements: readonly Statement[], transaction: boolean): Promise<QueryResult[]> {
    if (!Array.isArray(statements) || statements.length === 0) {
      throw new VtError("INVALID_ARGUMENT", '"statements" must be a non-empty array of {sql, params?}');
    }
    statements.forEach((s, i) => {
      if (typeof s !== "object" || s === null) throw new VtError("INVALID_ARGUMENT", `statement ${i}: must be {sql, params?}`, { statementIndex: i });
      try {
        checkStatement(s, `statement ${i}`);
      } catch (e) {
        const vt = toVtError(e);
        vt["statementIndex"] = i;
        throw vt;
      }
    });
    if (!transaction) {
      const out: QueryResult[] = [];
      for (let i = 0; i < statements.length; i++) {
        const st = statements[i];
        if (!st) continue;
        try {
          out.push(await this.execute(keyspace, st));
        } catch (e) {
          const vt = toVtError(e);
          vt["statementIndex"] = i;
          vt["committed"] = i;
          throw vt;
        }
      }
      return out;
    }
    const runs = ddlRuns(statements);
    if (runs.length > 1 || runs[0]?.ddl) return this.#transactionWithDdl(keyspace, statements, runs);
    return this.#transaction(keyspace, statements);
  }

  /**
   * A transactional batch holding DDL runs as consecutive parts, in order, each all or nothing
   * on its own: a DDL through the Topology (every shard or none), a run of other statements as
   * one single-shard transaction (one statement alone: as it runs outside a batch). The first
   * part that fails stops the batch; its error says which statements were applied (`committed`:
   * the statements before the failing part) and nothing of the failing part is.
   */
  async #transactionWithDdl(keyspace: string | undefined, statements: readonly Statement[], runs: readonly BatchRun[]): Promise<QueryResult[]> {
    const out: QueryResult[] = [];
    for (const run of runs) {
      const part = statements.slice(run.from, run.to);
      try {
        const lone = part.length === 1 ? part[0] : undefined;
        if (lone && (run.ddl || (await this.#runsAlone(keyspace, lone)))) out.push(await this.execute(keyspace, lone));
        else out.push(...(await this.#transaction(keyspace, part)));
      } catch (e) {
        const vt = toVtError(e);
        const inner = vt["statementIndex"];
        const at = run.from + (typeof inner === "number" ? inner : 0);
        const applied =
          run.from === 0
            ? "no statement was applied"
            : `statements 0 to ${run.from - 1} were applied (each DDL, and each run of other statements, commits on its own)`;
        throw new VtError(vt.code, `batch stopped at statement ${at}: ${applied}, nothing of statements ${run.from} to ${run.to - 1} was: ${vt.message}`, {
          ...errorFields(vt),
          statementIndex: at,
          committed: run.from,
        });
      }
    }
    return out;
  }

  /**
   * Whether a statement is all or nothing on its own without a shard transaction: a read, or a
   * write to a reference table (every copy, the first first: one it refuses changes no copy).
   */
  async #runsAlone(keyspace: string | undefined, st: Statement): Promise<boolean> {
    const { plan } = await this.#plan(keyspace, st.sql, false);
    const p = plan.primitive instanceof PointRoute ? plan.primitive.point : plan.primitive;
    return plan.kind === "read" || (p instanceof Route && p.spec.opcode === "all");
  }

  /** One single-shard SQLite transaction: all statements commit or none (multi-shard is UNSUPPORTED). */
  async #transaction(keyspace: string | undefined, statements: readonly Statement[]): Promise<QueryResult[]> {
    for (let attempt = 0; ; attempt++) {
      const ks = await this.keyspace(keyspace, attempt > 0);
      const queries: BoundQuery[] = [];
      /** The statement each query came from (a long INSERT may become several queries). */
      const owner: number[] = [];
      let shard: string | undefined;
      /** Statements that read no sharded data (`SELECT 1`, reference tables) run wherever the rest do. */
      let firstAny: string | undefined;
      statements.forEach((st, i) => {
        try {
          const plan = state.plans.plan(st.sql, ks);
          const b = new Bindings(st.params);
          b.check(plan.params);
          const one = singleShard(plan, ks, b);
          if (!one)
            throw unsupportedError(
              "VD1099",
              "a transaction whose statements reach several shards (or run DDL) is not supported yet; each statement must target the same single shard",
            );
          if (!one.anyShard) {
            if (shard !== undefined && one.shard !== shard) {
              throw unsupportedError("VD1100", `a transaction across shards (${shard} and ${one.shard}) is not supported yet`);
            }
            shard = one.shard;
          } else firstAny ??= one.shard;
          for (const q of one.queries) {
            queries.push(q);
            owner.push(i);
          }
        } catch (e) {
          const vt = toVtError(e);
          vt["statementIndex"] = i;
          throw vt;
        }
      });
      shard ??= firstAny;
      if (shard === undefined) throw new VtError("INTERNAL", "empty transaction");
      try {
        const raw = await this.#tablet(ks.name, shard, ks.version, queries);
        return statements.map((_, i) => concatResults(raw.filter((_, q) => owner[q] === i)));
      } catch (e) {
        const vt = toVtError(e);
        const qi = vt["statementIndex"];
        vt["statementIndex"] = typeof qi === "number" ? owner[qi] : owner[0];
        if (vt.code !== "NOT_SERVING" || attempt >= RETRIES) {
          if (vt.code !== "NOT_SERVING" && vt.code !== "TIMEOUT") {
            const extra = { ...vt, statementIndex: vt["statementIndex"] };
            throw new VtError(vt.code === "INTERNAL" ? "INTERNAL" : vt.code, `transaction rolled back: ${vt.message}`, extra);
          }
          throw vt;
        }
        await this.#repairIfBehind(ks, vt);
        await this.#backoff(attempt);
      }
    }
  }

  /** A tablet that knows an older version than the graph missed a sync: have the Topology redo it. */
  async #repairIfBehind(ks: KeyspaceGraph, vt: VtError): Promise<void> {
    const known = vt["servingVersion"];
    if (typeof known === "number" && known < ks.version) this.#adopt(await this.#topology(true, (t) => t.repair(ks.name)));
  }

  async view(): Promise<TopologyView> {
    return this.#topology(false, (t) => t.view());
  }

  async createKeyspace(name: unknown, shards: unknown): Promise<TopologyView> {
    if (typeof name !== "string") throw new VtError("INVALID_ARGUMENT", '"name" must be a string');
    if (typeof shards !== "number" && !Array.isArray(shards)) {
      throw new VtError("INVALID_ARGUMENT", '"shards" must be a count or a list of key ranges such as ["-80", "80-"]');
    }
    this.#adopt(await this.#topology(true, (t) => t.createKeyspace(name, shards as number | string[])));
    return this.view();
  }

  async applyVSchema(keyspace: unknown, vschema: unknown): Promise<{ keyspace: string; vschema: unknown }> {
    if (typeof keyspace !== "string") throw new VtError("INVALID_ARGUMENT", '"keyspace" must be a string');
    const g = await this.#topology(true, (t) => t.applyVSchema(keyspace, vschema));
    this.#adopt(g);
    return { keyspace, vschema: own(g.keyspaces, keyspace)?.vschema };
  }

  async getVSchema(keyspace: string | undefined): Promise<{ keyspace: string; vschema: unknown }> {
    const ks = await this.keyspace(keyspace, true);
    return { keyspace: ks.name, vschema: ks.vschema };
  }
}

/** A stretch of a batch: one DDL statement, or consecutive other statements. */
interface BatchRun {
  readonly ddl: boolean;
  readonly from: number;
  readonly to: number;
}

const MAYBE_DDL = /\b(create|drop|alter)\b/i;

/** Splits a batch at its DDL statements (a statement that does not parse fails here, before anything runs). */
function ddlRuns(statements: readonly Statement[]): BatchRun[] {
  if (!statements.some((st) => MAYBE_DDL.test(st.sql))) return [{ ddl: false, from: 0, to: statements.length }];
  const runs: BatchRun[] = [];
  statements.forEach((st, i) => {
    let ddl: boolean;
    try {
      ddl = /^(create|drop|alter)_/.test(parseOne(st.sql).stmt.type);
    } catch (e) {
      const vt = toVtError(e);
      vt["statementIndex"] = i;
      throw vt;
    }
    const last = runs.at(-1);
    if (last && !ddl && !last.ddl) runs[runs.length - 1] = { ...last, to: i + 1 };
    else runs.push({ ddl, from: i, to: i + 1 });
  });
  return runs;
}

function errorFields(vt: VtError): Record<string, unknown> {
  const { code: _c, message: _m, retryable: _r, ...rest } = errorBody(vt);
  return rest;
}

/** The one shard and query a plan needs, or undefined when it needs several (or is DDL). */
function singleShard(plan: Plan, ks: KeyspaceGraph, b: Bindings): { shard: string; queries: BoundQuery[]; anyShard?: boolean } | undefined {
  const p = plan.primitive instanceof PointRoute ? plan.primitive.point : plan.primitive;
  if (p instanceof Route) {
    const shards = p.shards(ks, b);
    const shard = shards[0];
    if (shards.length !== 1 || shard === undefined || (p.spec.opcode === "scatter" && ks.shards.length > 1)) return undefined;
    if (p.spec.opcode === "reference" && plan.kind !== "read") return undefined;
    const anyShard = p.spec.opcode === "reference" && ks.sharded;
    return { shard, queries: [{ ...render(p.spec.template, b), kind: p.spec.kind }], anyShard };
  }
  if (p instanceof Insert) {
    if (p.lookups.length > 0) {
      throw unsupportedError(
        "VD1101",
        `an INSERT into ${p.table}, which owns lookup vindexes, inside a transactional batch is not supported yet (its lookup rows live in another table)`,
      );
    }
    const bound = p.boundWithoutIds(b);
    if (!bound) {
      throw unsupportedError(
        "VD1102",
        "an INSERT that takes ids from a sequence inside a transactional batch is not supported yet; give the ids (or insert outside the transaction)",
      );
    }
    const { byShard, lastShard } = p.rowsByShard(ks, bound.b, bound.rows);
    if (byShard.size !== 1) return undefined;
    return { shard: lastShard, queries: p.statements(bound.rows).map((parts) => ({ ...render(parts, bound.b), kind: "insert" as const })) };
  }
  return undefined;
}
