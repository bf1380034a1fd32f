// Comparing a gate result with the reference database's: exact for every value, except REAL
// aggregates (a relative tolerance: summing in another order can change the last bits) and text
// where SQLite may return any of several values equal under a collation (the group value of a
// NOCASE or RTRIM group, min / max of such a column): compared folded by that collation.

import type { Collation } from "../../gate/engine/compare.ts";
import type { QueryResult } from "../../contract/tablet-rpc.ts";
import type { SqlValue } from "../../contract/sql-values.ts";

export const REL_TOLERANCE = 1e-9;

export interface CompareOptions {
  readonly ordered: boolean;
  /**
   * Output columns of REAL sums / averages → an absolute slack on top of the relative tolerance:
   * shards round their partial sums to doubles, so terms that cancel can leave an error of a few
   * ulps of the largest term (SQLite itself sums with Kahan-Babuska-Neumaier compensation).
   */
  readonly approx?: ReadonlyMap<number, number>;
  /** Output columns whose text is compared folded by a collation. */
  readonly fold?: ReadonlyMap<number, Collation>;
  /** Output columns of group_concat → separator: element order is arbitrary, parts compared as multisets. */
  readonly split?: ReadonlyMap<number, string>;
}

/** Rows with each group_concat text replaced by its parts sorted. */
function unsplit(rows: readonly (readonly SqlValue[])[], split: ReadonlyMap<number, string> | undefined): readonly (readonly SqlValue[])[] {
  if (!split || split.size === 0) return rows;
  return rows.map((r) =>
    r.map((v, i) => {
      const sep = split.get(i);
      return sep !== undefined && typeof v === "string" ? v.split(sep).sort().join(sep) : v;
    }),
  );
}

function foldText(s: string, c: Collation | undefined): string {
  if (c === "NOCASE") return s.replace(/[A-Z]/g, (x) => x.toLowerCase());
  if (c === "RTRIM") return s.replace(/ +$/, "");
  return s;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A value as readable text that keeps its JS type (1 vs 1n vs "1" vs x'01'). */
export function show(v: unknown): string {
  if (v === null) return "NULL";
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof Uint8Array) return `x'${hex(v)}'`;
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (typeof v === "object")
    return `{${Object.entries(v)
      .map(([k, x]) => `${k}: ${show(x)}`)
      .join(", ")}}`;
  return String(v);
}

/** Canonical key of a value: numbers and bigints stay apart (a safe integer must be a number). */
function key(v: SqlValue, fold: Collation | undefined): string {
  if (v === null) return "N";
  if (typeof v === "bigint") return `B${v}`;
  if (typeof v === "number") return `F${v === 0 ? 0 : v}`;
  if (typeof v === "string") return `T${JSON.stringify(foldText(v, fold))}`;
  return `X${hex(v)}`;
}

/** Equal values; `slack` (an approx column) allows a relative tolerance plus that absolute error. */
export function sameValue(a: SqlValue, b: SqlValue, slack?: number, fold?: Collation): boolean {
  if (typeof a === "number" && typeof b === "number") {
    if (a === b) return true;
    if (slack === undefined || !Number.isFinite(a) || !Number.isFinite(b)) return false;
    return Math.abs(a - b) <= REL_TOLERANCE * Math.max(1, Math.abs(a), Math.abs(b)) + slack;
  }
  return key(a, fold) === key(b, fold);
}

function rowKey(row: readonly SqlValue[], o: CompareOptions): string {
  return row.map((v, i) => (o.approx?.has(i) ? "~" : key(v, o.fold?.get(i)))).join("\u0000");
}

function sorted(rows: readonly (readonly SqlValue[])[], o: CompareOptions): (readonly SqlValue[])[] {
  return rows
    .map((r) => ({ r, k: rowKey(r, o) }))
    .sort((x, y) => (x.k < y.k ? -1 : x.k > y.k ? 1 : 0))
    .map((x) => x.r);
}

/** Undefined when `actual` matches `expected`, else what differs. */
export function diffResults(actual: QueryResult, expected: QueryResult, o: CompareOptions): string | undefined {
  if (show(actual.columns) !== show(expected.columns)) return `columns ${show(actual.columns)} != expected ${show(expected.columns)}`;
  const ar = unsplit(actual.rows, o.split);
  const er = unsplit(expected.rows, o.split);
  const a = o.ordered ? ar : sorted(ar, o);
  const e = o.ordered ? er : sorted(er, o);
  if (a.length !== e.length) return `${a.length} rows != expected ${e.length}\n  got      ${show(a)}\n  expected ${show(e)}`;
  for (let i = 0; i < a.length; i++) {
    const ra = a[i] ?? [];
    const re = e[i] ?? [];
    const bad = ra.length !== re.length || ra.some((v, j) => !sameValue(v, re[j] ?? null, o.approx?.get(j), o.fold?.get(j)));
    if (bad) return `row ${i} ${show(ra)} != expected ${show(re)}${o.ordered ? " (ordered)" : ""}\n  got      ${show(a)}\n  expected ${show(e)}`;
  }
  return undefined;
}

/** Undefined when every row of `part` is a distinct row of `whole` (LIMIT without ORDER BY). */
export function diffSubset(part: QueryResult, whole: QueryResult): string | undefined {
  const left = new Map<string, number>();
  const o = { ordered: false };
  for (const r of whole.rows) left.set(rowKey(r, o), (left.get(rowKey(r, o)) ?? 0) + 1);
  for (const r of part.rows) {
    const k = rowKey(r, o);
    const n = left.get(k) ?? 0;
    if (n === 0) return `row ${show(r)} is not in the unlimited result ${show(whole.rows)}`;
    left.set(k, n - 1);
  }
  return undefined;
}
