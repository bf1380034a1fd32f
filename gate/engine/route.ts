// Route: sends one statement to the shards a vindex picks (or to all of them) and concatenates
// what they answer. The per-shard SQL is the user's text, re-rendered with bound params.

import { toVtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { Vindex } from "../../topology/vindex.ts";
import type { BoundQuery } from "../../contract/tablet-rpc.ts";
import { render, type Bindings, type Template } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { describeValue, evalValue, routableValue, servingShards, shardForKsid, shardForValue, type Affinity, type ValueExpr } from "./values.ts";

/**
 * unsharded: the keyspace's one shard. equal / in: the shards of the vindex values.
 * scatter: every serving shard. reference: any one shard (the data is the same everywhere).
 * all: a write to a reference table, applied on every serving shard (see Route.execute).
 */
export type RouteOpcode = "unsharded" | "equal" | "in" | "scatter" | "reference" | "all";

export interface RouteSpec {
  readonly opcode: RouteOpcode;
  readonly table: string | null;
  readonly template: Template;
  readonly kind: BoundQuery["kind"];
  readonly vindex?: Vindex;
  readonly values?: readonly ValueExpr[];
  /** Affinity of the vindex column: values SQLite would convert are not routed by the vindex. */
  readonly affinity?: Affinity;
  /** False when the vindex column compares with a collation other than BINARY: equal values may hash apart. */
  readonly routable?: boolean;
  /** The vindex values are the first column of these Bindings rows (a gate join's lookup keys), not `values`. */
  readonly valuesSlot?: number;
  /** The shards are those of the keyspace ids in these Bindings rows (found by a lookup vindex). */
  readonly ksidSlot?: number;
}

function sqlOf(t: Template): string {
  return t.map((p) => (typeof p === "string" ? p : "param" in p ? "?" : "<computed>")).join("");
}

export class Route implements Primitive {
  readonly spec: RouteSpec;

  constructor(spec: RouteSpec) {
    this.spec = spec;
  }

  /** The shards this execution reaches. Values a vindex cannot map fall back to scatter. */
  shards(ks: KeyspaceGraph, b: Bindings): string[] {
    const { opcode, vindex, values, valuesSlot, ksidSlot } = this.spec;
    const all = servingShards(ks);
    if (opcode === "scatter" || opcode === "all") return all;
    if (opcode === "unsharded" || opcode === "reference") return all.slice(0, 1);
    if (ksidSlot !== undefined) {
      const picked = new Set<string>();
      for (const [k] of b.subquery(ksidSlot)) if (k instanceof Uint8Array) picked.add(shardForKsid(ks, k));
      // No row has the value: one shard still answers (an empty result, count(*) = 0).
      return picked.size === 0 ? all.slice(0, 1) : all.filter((s) => picked.has(s));
    }
    if (!vindex || (!values && valuesSlot === undefined) || this.spec.routable === false) return all;
    const picked = new Set<string>();
    const evaluated = valuesSlot !== undefined ? b.subquery(valuesSlot).map((r) => r[0] ?? null) : (values ?? []).map((v) => evalValue(v, b));
    for (const value of evaluated) {
      if (value === null) continue; // `col = NULL` / `col IN (NULL)` matches no row anywhere
      if (!routableValue(value, this.spec.affinity ?? "BLOB")) return all;
      try {
        picked.add(shardForValue(ks, vindex, value));
      } catch {
        // The vindex cannot place it (a REAL, say): every shard checks, which is always correct.
        return all;
      }
    }
    if (picked.size === 0) return all.slice(0, 1);
    return all.filter((s) => picked.has(s));
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const shards = this.shards(vc.keyspace, b);
    const q: BoundQuery = { ...render(this.spec.template, b), kind: this.spec.kind };
    if (this.spec.opcode === "all") {
      // A reference table holds the same rows on every shard. The first shard goes first: a write
      // it refuses (a constraint, bad input) is refused before any copy changed. The others then
      // apply the same deterministic statement; the answer is the first shard's (not a sum).
      const [first, ...rest] = shards;
      if (first === undefined) return concatResults([]);
      const result = (await vc.execute(first, [q]))[0];
      if (rest.length > 0) {
        try {
          await writeEach(rest, async (s) => (await vc.execute(s, [q]))[0]);
        } catch (e) {
          const err = toVtError(e);
          err["failedShard"] ??= rest[0];
          err["committedShards"] = [first, ...((err["committedShards"] as string[] | undefined) ?? [])];
          throw err;
        }
      }
      return concatResults([result]);
    }
    if (q.kind === "read" || shards.length === 1) {
      return concatResults(await Promise.all(shards.map(async (s) => (await vc.execute(s, [q]))[0])));
    }
    return concatResults(await writeEach(shards, async (s) => (await vc.execute(s, [q]))[0]));
  }

  describe(x?: Explain): PlanDescription {
    return {
      operator: "Route",
      opcode: this.spec.opcode,
      table: this.spec.table,
      ...(this.spec.values ? { values: this.spec.values.map(describeValue) } : {}),
      ...(this.spec.valuesSlot !== undefined ? { values: "the join keys" } : {}),
      ...(this.spec.ksidSlot !== undefined ? { shardsFrom: "the lookup vindex" } : {}),
      sql: sqlOf(this.spec.template),
      ...(x && this.spec.ksidSlot === undefined && this.spec.valuesSlot === undefined
        ? { shards: this.shards(x.keyspace, x.bindings), query: render(this.spec.template, x.bindings) }
        : {}),
    };
  }
}

export function concatResults(results: readonly (QueryResult | undefined)[]): QueryResult {
  const out: QueryResult = { columns: [], rows: [], rowsAffected: 0 };
  for (const r of results) {
    if (!r) continue;
    if (out.columns.length === 0) out.columns = r.columns;
    for (const row of r.rows) out.rows.push(row);
    out.rowsAffected += r.rowsAffected;
    if (r.lastInsertRowid !== undefined) out.lastInsertRowid = r.lastInsertRowid;
  }
  return out;
}

/**
 * Runs a write on several shards in parallel. Each shard commits on its own, so when one fails
 * the error says which shards did commit (`committedShards`) and which failed (`failedShard`).
 */
export async function writeEach<T>(shards: readonly string[], fn: (shard: string) => Promise<T>): Promise<T[]> {
  const settled = await Promise.allSettled(shards.map(fn));
  const failed = settled.findIndex((r) => r.status === "rejected");
  if (failed >= 0) {
    const r = settled[failed];
    const err = toVtError(r?.status === "rejected" ? r.reason : undefined);
    if (shards.length > 1) {
      err["committedShards"] = shards.filter((_, i) => settled[i]?.status === "fulfilled");
      err["failedShard"] = shards[failed];
      // Every failed shard whose outcome is unknown, not only the first failure's.
      const unknown = shards.filter((_, i) => {
        const r = settled[i];
        return r?.status === "rejected" && toVtError(r.reason)["applied"] === "unknown";
      });
      if (unknown.length > 0) {
        err["unknownShards"] = unknown;
        err["applied"] = "unknown";
      }
    }
    throw err;
  }
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}
