// sum() / total() / avg() combined from partials exactly as SQLite computes them over all the
// rows (func.c sumStep / sumFinalize, SQLite ≥ 3.43): integers add up exactly while no value is
// REAL; the first non-integer turns the sum approximate, after which it runs as a
// Kahan-Babuska-Neumaier sum seeded with the exact integer part. An all-integer sum outside
// 64 bits is SQLite's "integer overflow" error for sum(); total() and avg() go on as REAL.
//
// Partials keep the integer part exact (shards send it split into two int64-safe halves, see
// select-aggregate.ts), so the gate adds integers across shards without rounding, and only the values that
// were REAL on a shard arrive as that shard's (compensated, then rounded) REAL partial sum.

import { VtError } from "../../contract/errors.ts";
import type { SqlValue } from "../../contract/sql-values.ts";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** SQLite splits an integer at or beyond ±2^52 into a multiple of 16384 and a remainder before adding it as doubles. */
const SPLIT_AT = 4503599627370496n;

export class ExactSum {
  /** The exact sum of every integer value (any magnitude). */
  #int = 0n;
  /** REAL values (or REAL partial sums) in arrival order. */
  readonly #reals: number[] = [];
  /** Non-NULL values seen (SQLite's cnt). */
  count = 0;

  /** One integer value, or an exact integer partial sum. */
  addInteger(v: bigint | number): void {
    this.#int += typeof v === "bigint" ? v : BigInt(v);
  }

  /** One REAL value, or a REAL partial sum: from here on the sum is approximate. */
  addReal(v: number): void {
    this.#reals.push(v);
  }

  get approximate(): boolean {
    return this.#reals.length > 0;
  }

  /** sum(): NULL over no values, an integer while exact, REAL once approximate. */
  sum(): SqlValue {
    if (this.count === 0) return null;
    if (this.approximate) return realOrNull(this.#kbn());
    if (this.#int < INT64_MIN || this.#int > INT64_MAX) throw new VtError("INVALID_ARGUMENT", "integer overflow");
    const n = Number(this.#int);
    return Number.isSafeInteger(n) ? n : this.#int;
  }

  /** total(): always REAL, 0.0 over no values (NULL for NaN, as SQLite has none). */
  total(): number | null {
    return this.approximate ? realOrNull(this.#kbn()) : Number(this.#int);
  }

  /** avg(): NULL over no values, else the sum as REAL over the count. */
  avg(): SqlValue {
    if (this.count === 0) return null;
    const t = this.total();
    return t === null ? null : realOrNull(t / this.count);
  }

  #kbn(): number {
    let sum: number;
    let err: number;
    const i = this.#int;
    if (i > -SPLIT_AT && i < SPLIT_AT) {
      sum = Number(i);
      err = 0;
    } else if (i >= INT64_MIN && i <= INT64_MAX) {
      const small = i % 16384n;
      sum = Number(i - small);
      err = Number(small);
    } else {
      // Beyond 64 bits (only a sum of partials gets here): the nearest double and what it misses.
      sum = Number(i);
      err = Number(i - BigInt(sum));
    }
    for (const r of this.#reals) {
      const t = sum + r;
      err += Math.abs(sum) > Math.abs(r) ? sum - t + r : r - t + sum;
      sum = t;
    }
    return Number.isFinite(err) ? sum + err : sum;
  }
}

/** SQLite stores no NaN: sqlite3_result_double answers NULL for it. */
function realOrNull(r: number): number | null {
  return Number.isNaN(r) ? null : r;
}

/**
 * Adds one value the way sumStep does: an INTEGER exactly, anything else (REAL, or TEXT/BLOB
 * already converted by the caller) as a double.
 */
export function addValue(acc: ExactSum, v: SqlValue, isReal: boolean): void {
  if (v === null) return;
  acc.count += 1;
  if (!isReal && (typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v)))) acc.addInteger(typeof v === "bigint" ? v : BigInt(v));
  else acc.addReal(typeof v === "number" ? v : Number(v));
}
