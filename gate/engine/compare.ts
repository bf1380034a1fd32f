// SQLite's ordering of values, for merging and sorting rows at the gate exactly as a single
// SQLite would: NULL < INTEGER/REAL (numerically) < TEXT (by collation) < BLOB (memcmp).

import type { SqlValue } from "../../contract/sql-values.ts";

export type Collation = "BINARY" | "NOCASE" | "RTRIM";

function typeRank(v: SqlValue): number {
  if (v === null) return 0;
  if (typeof v === "number" || typeof v === "bigint") return 1;
  if (typeof v === "string") return 2;
  return 3;
}

/** Exact comparison of two numbers where either may be a bigint beyond 2^53. */
export function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "bigint" && typeof b === "bigint") return a < b ? -1 : a > b ? 1 : 0;
  // One bigint, one number (possibly fractional or infinite).
  const [big, num, sign] = typeof a === "bigint" ? [a, b as number, 1] : [b as bigint, a as number, -1];
  if (!Number.isFinite(num)) return num > 0 ? -sign : sign;
  const floor = BigInt(Math.floor(num));
  if (big < floor) return -sign;
  if (big > floor) return sign;
  return num > Math.floor(num) ? -sign : 0;
}

/** Text compared by UTF-8 bytes (= code points), which is SQLite's BINARY collation. */
function compareBinaryText(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) ?? 0;
    const y = b.codePointAt(i) ?? 0;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length < 0 ? -1 : a.length > b.length ? 1 : 0;
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

export function compareText(a: string, b: string, collation: Collation): number {
  if (collation === "NOCASE") return compareBinaryText(asciiLower(a), asciiLower(b));
  if (collation === "RTRIM") return compareBinaryText(a.replace(/ +$/, ""), b.replace(/ +$/, ""));
  return compareBinaryText(a, b);
}

function compareBlobs(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

export function compareValues(a: SqlValue, b: SqlValue, collation: Collation = "BINARY"): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      return 0;
    case 1:
      return compareNumbers(a as number | bigint, b as number | bigint);
    case 2:
      return compareText(a as string, b as string, collation);
    default:
      return compareBlobs(a as Uint8Array, b as Uint8Array);
  }
}

export interface SortKey {
  /** Column index in the rows being sorted. */
  readonly column: number;
  readonly desc: boolean;
  /** SQLite's default: NULLs first when ascending, last when descending. */
  readonly nullsFirst: boolean;
  readonly collation: Collation;
}

export function compareRows(a: readonly SqlValue[], b: readonly SqlValue[], keys: readonly SortKey[]): number {
  for (const k of keys) {
    const x = a[k.column] ?? null;
    const y = b[k.column] ?? null;
    if (x === null || y === null) {
      if (x === null && y === null) continue;
      return (x === null) === k.nullsFirst ? -1 : 1;
    }
    const c = compareValues(x, y, k.collation);
    if (c !== 0) return k.desc ? -c : c;
  }
  return 0;
}
