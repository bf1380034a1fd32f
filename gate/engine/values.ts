// Values known at plan time (literals) or at execution (placeholders), and the shard a value
// routes to.

import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { keyRangeContains, parseKeyRange, type KeyRange } from "../../topology/keyrange.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import type { Vindex } from "../../topology/vindex.ts";
import type { ParamRef } from "../sql/parse.ts";
import type { Bindings } from "../sql/template.ts";

export type ValueExpr = { readonly literal: SqlValue } | { readonly param: ParamRef };

export function evalValue(v: ValueExpr, b: Bindings): SqlValue {
  return "literal" in v ? v.literal : b.get(v.param);
}

export function describeValue(v: ValueExpr): string {
  if ("param" in v) return v.param.kind === "index" ? `?${v.param.index + 1}` : `${v.param.sigil}${v.param.name}`;
  const l = v.literal;
  if (l instanceof Uint8Array) return "x'…'";
  return typeof l === "string" ? `'${l}'` : String(l);
}

const rangeCache = new WeakMap<KeyspaceGraph, { name: string; range: KeyRange }[]>();

function servingRanges(ks: KeyspaceGraph): { name: string; range: KeyRange }[] {
  let r = rangeCache.get(ks);
  if (!r) {
    r = ks.shards.filter((s) => s.serving).map((s) => ({ name: s.name, range: parseKeyRange(s.keyRange) }));
    rangeCache.set(ks, r);
  }
  return r;
}

export function servingShards(ks: KeyspaceGraph): string[] {
  return servingRanges(ks).map((s) => s.name);
}

export function shardForKsid(ks: KeyspaceGraph, ksid: Uint8Array): string {
  for (const s of servingRanges(ks)) if (keyRangeContains(s.range, ksid)) return s.name;
  throw new VtError(
    "NOT_SERVING",
    `no serving shard of keyspace ${ks.name} covers keyspace id ${Array.from(ksid, (x) => x.toString(16).padStart(2, "0")).join("")}`,
  );
}

/** The shard of one vindex column value; throws INVALID_ARGUMENT when the vindex cannot map it. */
export function shardForValue(ks: KeyspaceGraph, vindex: Vindex, v: SqlValue): string {
  return shardForKsid(ks, vindex.map(v));
}

export type Affinity = "INTEGER" | "TEXT" | "BLOB" | "REAL" | "NUMERIC";

/** SQLite's column affinity from a declared type (https://sqlite.org/datatype3.html §3.1). */
export function affinityOf(declared: string): Affinity {
  const t = declared.toUpperCase();
  if (t.includes("INT")) return "INTEGER";
  if (t.includes("CHAR") || t.includes("CLOB") || t.includes("TEXT")) return "TEXT";
  if (t === "" || t.includes("BLOB")) return "BLOB";
  if (t.includes("REAL") || t.includes("FLOA") || t.includes("DOUB")) return "REAL";
  return "NUMERIC";
}

/**
 * True when the vindex sees `v` as SQLite will store or compare it in a column of this
 * affinity. A numeric column turns the text '42.0' into the integer 42, which the vindex would
 * hash as text: such a value cannot be routed by the vindex.
 */
export function routableValue(v: SqlValue, affinity: Affinity): boolean {
  // A REAL column stores an integer as a double: past 2^53 it is stored as a different number.
  if (affinity === "REAL" && (typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v))) && !Number.isSafeInteger(Number(v))) return false;
  if (affinity === "REAL" && typeof v === "string" && /^-?\d{16,}$/.test(v)) return false;
  if (typeof v !== "string" || affinity === "TEXT" || affinity === "BLOB") return true;
  if (!/^-?(0|[1-9]\d{0,18})$/.test(v) || v === "-0") return false;
  const n = BigInt(v);
  return n >= -(2n ** 63n) && n < 2n ** 63n;
}
