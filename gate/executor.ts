// The gate's executor: plans statements against the cached serving graph, runs them through a
// VCursor on the request's Backend, and recovers from a stale graph (refresh, re-plan, retry)
// only where a retry cannot apply anything twice. Batches (batch.ts), sequences (sequences.ts)
// and admin calls (admin.ts) live beside it.

import { toVtError } from "../contract/errors.ts";
import { readView, type KeyspaceGraph, type ServingGraph, type TopologyView } from "../contract/serving-graph.ts";
import { toJsonValue } from "../contract/sql-values.ts";
import type { QueryResult } from "../contract/tablet-rpc.ts";
import type { KeyspaceRetention } from "../contract/topology-rpc.ts";
import * as admin from "./admin.ts";
import { Backend } from "./backend.ts";
import { Batch } from "./batch.ts";
import { Deadline, queryTimeoutMs } from "./deadline.ts";
import { PlanCache, type Plan } from "./planner/plan.ts";
import { withResultNames } from "./planner/column-names.ts";
import { Retry, retryLoop } from "./retry.ts";
import { routedKeyspace } from "./routing-rules.ts";
import { Bindings } from "./sql/template.ts";
import { checkStatement, type Statement } from "./statement.ts";
import { gateCursor, type RunStatement } from "./vcursor.ts";

/** Shared by every request of the isolate. */
const plans = new PlanCache();

/**
 * One per gate request: every tablet and Topology call it makes shares one deadline
 * (`QUERY_TIMEOUT_MS`, see deadline.ts), so the request answers TIMEOUT rather than waiting on a
 * Durable Object that does not answer.
 */
export class Executor {
  readonly #backend: Backend;

  constructor(env: Env, deadline?: Deadline) {
    this.#backend = new Backend(env, deadline ?? new Deadline(queryTimeoutMs(env.QUERY_TIMEOUT_MS)));
  }

  graph(refresh = false): Promise<ServingGraph> {
    return this.#backend.graph(refresh);
  }

  keyspace(name: string | undefined, refresh = false): Promise<KeyspaceGraph> {
    return this.#backend.keyspace(name, refresh);
  }

  /** Plans against the cached graph; an unknown table first refreshes the graph once. */
  async #plan(keyspace: string | undefined, sql: string, refresh: boolean): Promise<{ ks: KeyspaceGraph; plan: Plan }> {
    let ks = await this.#routed(keyspace, sql, refresh);
    try {
      return { ks, plan: plans.plan(sql, ks) };
    } catch (e) {
      const vt = toVtError(e);
      if (vt.code !== "UNKNOWN_TABLE" || refresh) throw vt;
      ks = await this.#routed(keyspace, sql, true);
      return { ks, plan: plans.plan(sql, ks) };
    }
  }

  /** The named keyspace, or the one the routing rules send the statement's tables to. */
  async #routed(keyspace: string | undefined, sql: string, refresh: boolean): Promise<KeyspaceGraph> {
    const ks = await this.keyspace(keyspace, refresh);
    return routedKeyspace(await this.graph(), ks, sql);
  }

  async execute(keyspace: string | undefined, st: Statement): Promise<QueryResult> {
    checkStatement(st, "statement");
    const b = new Bindings(st.params);
    const vx = /^\s*vexplain(\s+(plan|all|queries))?\s+/i.exec(st.sql);
    if (vx) {
      // Blank the prefix out rather than cut it, so syntax error positions stay right.
      const { ks, plan } = await this.#plan(keyspace, " ".repeat(vx[0].length) + st.sql.slice(vx[0].length), false);
      b.check(plan.params);
      const tree = plan.primitive.describe({ keyspace: plan.kind === "read" ? readView(ks) : ks, bindings: b });
      const text = JSON.stringify(tree, (_k, v: unknown) => (typeof v === "bigint" || v instanceof Uint8Array ? toJsonValue(v) : v), 2);
      return { columns: ["plan"], rows: [[text]], rowsAffected: 0 };
    }
    const run: RunStatement = (ks, sql, params) => this.execute(ks, { sql, params });
    return retryLoop(
      async (_attempt, refresh) => {
        const { ks, plan } = await this.#plan(keyspace, st.sql, refresh);
        b.check(plan.params);
        const touched = new Set<string>();
        try {
          // A read-only statement goes where the keyspace serves reads (serving-graph.ts readView).
          const on = plan.kind === "read" ? readView(ks) : ks;
          return withResultNames(await plan.primitive.execute(gateCursor(this.#backend, on, touched, run), b), plan.names);
        } catch (e) {
          const vt = toVtError(e);
          // A stale graph: retry after a refresh, unless some shard already applied a write. DDL
          // retries itself with its request id (admin.ts); a new attempt here would get a new one.
          // A write whose outcome is unknown is never retried: it may have applied.
          const safe = plan.kind === "read" || (touched.size === 0 && plan.kind !== "ddl" && vt["applied"] !== "unknown");
          if (vt.code !== "NOT_SERVING" || !safe) throw vt;
          return new Retry(vt, ks);
        }
      },
      (retry, n, held) => this.#backend.afterStale(retry, n, held),
      this.#backend.buffering,
    );
  }

  /**
   * Statements in order. With `transaction`, all must reach one shard and run there as one
   * SQLite transaction (all or nothing); multi-shard transactions are UNSUPPORTED for now.
   * Without it each commits on its own and the first error stops the batch.
   */
  batch(keyspace: string | undefined, statements: readonly Statement[], transaction: boolean): Promise<QueryResult[]> {
    return new Batch({
      backend: this.#backend,
      execute: (ks, st) => this.execute(ks, st),
      plan: (ks, sql) => this.#plan(ks, sql, false),
      planOn: (ks, sql) => plans.plan(sql, ks),
    }).run(keyspace, statements, transaction);
  }

  view(): Promise<TopologyView> {
    return admin.view(this.#backend);
  }

  createKeyspace(name: unknown, shards: unknown): Promise<TopologyView> {
    return admin.createKeyspace(this.#backend, name, shards);
  }

  applyVSchema(keyspace: unknown, vschema: unknown): Promise<{ keyspace: string; vschema: unknown }> {
    return admin.applyVSchema(this.#backend, keyspace, vschema);
  }

  retention(keyspace: unknown, change: unknown): Promise<KeyspaceRetention> {
    return admin.retention(this.#backend, keyspace, change);
  }

  getVSchema(keyspace: string | undefined): Promise<{ keyspace: string; vschema: unknown }> {
    return admin.getVSchema(this.#backend, keyspace);
  }
}
