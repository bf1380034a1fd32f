// Batches: statements in order, each on its own or all in one single-shard transaction; a
// transactional batch holding DDL runs as consecutive all-or-nothing parts.

import { toVtError, VtError, errorBody } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { BoundQuery, QueryResult } from "../contract/tablet-rpc.ts";
import { unsupportedError } from "../topology/refusals.ts";
import type { Backend } from "./backend.ts";
import { Insert } from "./engine/insert.ts";
import { PointRoute } from "./engine/point-route.ts";
import { concatResults, Route } from "./engine/route.ts";
import { withResultNames, type ResultNames } from "./planner/column-names.ts";
import type { Plan } from "./planner/plan.ts";
import { Retry, retryLoop } from "./retry.ts";
import { routedBatch } from "./routing-rules.ts";
import { parseOne } from "./sql/parse.ts";
import { Bindings, render } from "./sql/template.ts";
import { checkStatement, type Statement } from "./statement.ts";

/** What a batch needs of the executor running it. */
export interface BatchContext {
  readonly backend: Backend;
  /** One statement as the gate runs it outside a batch (with its own retries). */
  execute(keyspace: string | undefined, st: Statement): Promise<QueryResult>;
  /** The plan of `sql` on the cached graph (an unknown table refreshes the graph once). */
  plan(keyspace: string | undefined, sql: string): Promise<{ ks: KeyspaceGraph; plan: Plan }>;
  /** The plan of `sql` on `ks` as given. */
  planOn(ks: KeyspaceGraph, sql: string): Plan;
}

export class Batch {
  readonly #ctx: BatchContext;

  constructor(ctx: BatchContext) {
    this.#ctx = ctx;
  }

  /**
   * Statements in order. With `transaction`, all must reach one shard and run there as one
   * SQLite transaction (all or nothing); multi-shard transactions are UNSUPPORTED for now.
   * Without it each commits on its own and the first error stops the batch.
   */
  async run(keyspace: string | undefined, statements: readonly Statement[], transaction: boolean): Promise<QueryResult[]> {
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
          out.push(await this.#ctx.execute(keyspace, st));
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
        if (lone && (run.ddl || (await this.#runsAlone(keyspace, lone)))) out.push(await this.#ctx.execute(keyspace, lone));
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
    const { plan } = await this.#ctx.plan(keyspace, st.sql);
    const p = plan.primitive instanceof PointRoute ? plan.primitive.point : plan.primitive;
    return plan.kind === "read" || (p instanceof Route && p.spec.opcode === "all");
  }

  /** One single-shard SQLite transaction: all statements commit or none (multi-shard is UNSUPPORTED). */
  async #transaction(keyspace: string | undefined, statements: readonly Statement[]): Promise<QueryResult[]> {
    const backend = this.#ctx.backend;
    return retryLoop(
      async (_attempt, refresh) => {
        const ks = routedBatch(await backend.graph(), await backend.keyspace(keyspace, refresh), statements);
        const queries: BoundQuery[] = [];
        /** The statement each query came from (a long INSERT may become several queries). */
        const owner: number[] = [];
        let shard: string | undefined;
        /** Statements that read no sharded data (`SELECT 1`, reference tables) run wherever the rest do. */
        let firstAny: string | undefined;
        const names: (ResultNames | undefined)[] = [];
        statements.forEach((st, i) => {
          try {
            const plan = this.#ctx.planOn(ks, st.sql);
            names.push(plan.names);
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
          const raw = await backend.tablet(ks, shard, queries);
          return statements.map((_, i) => withResultNames(concatResults(raw.filter((_, q) => owner[q] === i)), names[i]));
        } catch (e) {
          const vt = toVtError(e);
          const qi = vt["statementIndex"];
          vt["statementIndex"] = typeof qi === "number" ? owner[qi] : owner[0];
          // Only a refusal is retried; a transaction whose outcome is unknown may have committed.
          if (vt["applied"] === "unknown") throw vt;
          if (vt.code === "NOT_SERVING") return new Retry(vt, ks);
          if (vt.code === "TIMEOUT") throw vt;
          const extra = { ...vt, statementIndex: vt["statementIndex"] };
          throw new VtError(vt.code === "INTERNAL" ? "INTERNAL" : vt.code, `transaction rolled back: ${vt.message}`, extra);
        }
      },
      (retry, n, held) => backend.afterStale(retry, n, held),
      backend.buffering,
    );
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
