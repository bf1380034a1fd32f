// Keys of keyspace-wide unique constraints. A UNIQUE / PRIMARY KEY that does not contain the
// vindex column is enforced through a system lookup table (`_vtl_…`, sharded by the key): one row
// per owner row, mapping the constrained values to the row's keyspace id. The key is a canonical
// text: two tuples get the same key exactly when SQLite's unique index on one database would
// call them equal, after the columns' affinity (storage) and collation (comparison).
//
// Contract of uniqueKey: equal keys ⇔ SQLite equal; a value whose stored form the gate cannot
// compute exactly (text a numeric column would convert, a REAL into a TEXT column) is refused
// with UNSUPPORTED rather than keyed wrongly. A NULL anywhere gives no key: NULLs never collide.

import { unsupportedError } from "../../topology/refusals.ts";
import { normalizeInt, type SqlValue } from "../../contract/sql-values.ts";
import type { Collation } from "./compare.ts";
import type { Affinity } from "./values.ts";

export interface KeyColumn {
  readonly name: string;
  readonly affinity: Affinity;
  readonly collation: Collation;
}

type Part = readonly ["t", string] | readonly ["n", string] | readonly ["r", string] | readonly ["b", string];

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Text SQLite's numeric affinities might convert to a number (conservative: anything number-like). */
function looksNumeric(s: string): boolean {
  const t = s.trim();
  if (t === "") return false;
  return Number.isFinite(Number(t)) || /^[+-]?(\d|\.\d)/.test(t) || /^[+-]?(inf|nan)/i.test(t);
}

function numberPart(v: number | bigint): Part {
  if (typeof v === "bigint") return ["n", v.toString()];
  if (Number.isInteger(v)) {
    const b = BigInt(v);
    // Integral: compares equal to the integer of the same value (SQLite compares INTEGER and REAL numerically).
    if (b >= INT64_MIN && b <= INT64_MAX) return ["n", b.toString()];
  }
  // Shortest round-trip text: two doubles are equal exactly when their texts are.
  return ["r", Object.is(v, -0) ? "0" : String(v)];
}

function fold(s: string, c: Collation): string {
  if (c === "NOCASE") return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  if (c === "RTRIM") return s.replace(/ +$/, "");
  return s;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The canonical part of one value written to (or, `stored`, read from) a column, or a refusal naming why it has none. */
function partOf(v: SqlValue, col: KeyColumn, table: string, stored: boolean): Part {
  if (v instanceof Uint8Array) return ["b", hex(v)];
  if (stored && v !== null) return typeof v === "string" ? ["t", fold(v, col.collation)] : numberPart(v);
  const refuse = (why: string) =>
    unsupportedError("VD2400", `a value of ${table}.${col.name} (a keyspace-wide unique column) that ${why}; send the value as the column stores it`);
  if (typeof v === "string") {
    if (col.affinity !== "TEXT" && col.affinity !== "BLOB" && looksNumeric(v)) throw refuse(`its ${col.affinity} affinity would convert ('${v}')`);
    return ["t", fold(v, col.collation)];
  }
  if (v === null) throw new Error("unreachable: NULL has no key part");
  if (col.affinity === "TEXT") {
    if (typeof v === "bigint" || Number.isSafeInteger(v)) return ["t", v.toString()];
    throw refuse(`is a REAL stored as text (${String(v)})`);
  }
  if (col.affinity === "REAL" && (typeof v === "bigint" || Number.isInteger(v)) && !Number.isSafeInteger(Number(v))) {
    throw refuse(`is an integer a REAL column would round (${v.toString()})`);
  }
  return numberPart(v);
}

/**
 * The key of one row's values of a unique constraint, or null when any is NULL. `stored`: the
 * values were read from the table (already converted by affinity), so none is refused.
 */
export function uniqueKey(values: readonly SqlValue[], cols: readonly KeyColumn[], table: string, stored = false): string | null {
  if (values.some((v) => v === null)) return null;
  return JSON.stringify(values.map((v, i) => partOf(v, cols[i] as KeyColumn, table, stored)));
}

/**
 * The values a key stands for, as the gate binds them to find the row holding it: compared in the
 * owner table's columns, which apply their own affinity and collation, they match that row.
 */
export function keyValues(key: string): SqlValue[] {
  const parts = JSON.parse(key) as Part[];
  return parts.map(([tag, s]) => {
    if (tag === "t") return s;
    if (tag === "b") return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
    if (tag === "n") return normalizeInt(BigInt(s));
    return Number(s);
  });
}
