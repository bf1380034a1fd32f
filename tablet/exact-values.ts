// Exact values out of Durable Object SQLite, which hands INTEGER and REAL back as JS numbers:
// an integer beyond 2^53 comes back rounded, and a REAL ≥ 2^53 looks like an integer. SQLite's
// quote() text keeps both exact (an integer as digits, a REAL always with '.' or 'e').

import { decodeQuoted, type SqlValue } from "../contract/sql-values.ts";
import { COPY_PREFIX } from "../contract/tablet-rpc.ts";

/**
 * A write's result whose last half of columns are `_vtg_q0 … _vtg_q<n-1>`, the quote() copies of
 * the first half's numbers (NULL for any other value, which arrives exact as it is): the first
 * half's names, each number replaced by its decoded copy. Undefined for any other shape (no
 * copies: the values stand as they are).
 */
export function fromQuotedCopies(columns: readonly string[], rows: readonly (readonly SqlValue[])[]): { columns: string[]; rows: SqlValue[][] } | undefined {
  const n = columns.length / 2;
  if (n < 1 || !Number.isInteger(n)) return undefined;
  for (let i = 0; i < n; i++) if (columns[n + i] !== `${COPY_PREFIX}${i}`) return undefined;
  return {
    columns: columns.slice(0, n),
    rows: rows.map((r) =>
      r.slice(0, n).map((v, i) => {
        const copy = r[n + i];
        return typeof copy === "string" ? decodeQuoted(copy) : v;
      }),
    ),
  };
}

/** Columns holding an integral JS number beyond 2^53 (a rounded integer, or a large REAL) in some row. */
export function unsafeIntegerColumns(rows: readonly (readonly SqlValue[])[]): Set<number> {
  const cols = new Set<number>();
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i];
      if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)) cols.add(i);
    }
  }
  return cols;
}

/** Columns holding an integral JS number in some row: an INTEGER, or a REAL JavaScript cannot tell from one (1.0 reads as 1). */
export function integralNumberColumns(rows: readonly (readonly SqlValue[])[]): Set<number> {
  const cols = new Set<number>();
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i];
      if (typeof v === "number" && Number.isInteger(v)) cols.add(i);
    }
  }
  return cols;
}

/** A quote() literal of a number is a REAL when it has a point or an exponent (an INTEGER is digits only). */
export function quotedIsReal(lit: string): boolean {
  return /[.eE]/.test(lit);
}
