// The size limit of one SQL value (⚑ README "Limits"): a TEXT or BLOB holds at most
// MAX_VALUE_BYTES bytes, as Durable Object SQLite allows. Params are checked at the gate before
// anything runs; values computed by SQL (zeroblob, randomblob, ||, replace, printf, …) are
// checked where they are written, by the tablet's binlog triggers (tablet/binlog.ts), and where
// they are read, on every result the tablet and the gate hand back.

import { VtError } from "../contract/errors.ts";
import type { SqlValue } from "../contract/sql-values.ts";

/** Largest TEXT (UTF-8 bytes) or BLOB value, in bytes. */
export const MAX_VALUE_BYTES = 2_000_000;

/** How the binlog triggers' RAISE message of a value over the limit starts (tablet/sqlite-errors.ts reads it). */
export const VALUE_TOO_BIG = "_vt_value_too_big";

/** UTF-8 length of a string, counting without allocating a copy. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** True when the value is over MAX_VALUE_BYTES (a string of at most MAX/3 UTF-16 units never is). */
export function overValueLimit(v: SqlValue): boolean {
  if (typeof v === "string") return v.length > MAX_VALUE_BYTES || (v.length * 3 > MAX_VALUE_BYTES && utf8Length(v) > MAX_VALUE_BYTES);
  if (v instanceof Uint8Array) return v.byteLength > MAX_VALUE_BYTES;
  return false;
}

/** Refuses a result holding a value over the limit (SQLite on Durable Objects could not produce it). */
export function checkResultValues(rows: readonly (readonly SqlValue[])[], columns: readonly string[]): void {
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i];
      if (v !== undefined && overValueLimit(v)) {
        throw new VtError(
          "INVALID_ARGUMENT",
          `result column ${columns[i] ?? i + 1} holds a value over ${MAX_VALUE_BYTES} bytes (the limit of a TEXT or BLOB value)`,
          { limit: MAX_VALUE_BYTES },
        );
      }
    }
  }
}
