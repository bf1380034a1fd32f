// SQLite errors → catalogue codes, at the tablet boundary (the original stays as `cause`).

import { VtError } from "../contract/errors.ts";
import { unsupportedError } from "../topology/refusals.ts";
import { MAX_VALUE_BYTES, VALUE_TOO_BIG } from "../topology/value-limits.ts";

export function fromSqliteError(e: unknown): VtError {
  if (e instanceof VtError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const clean = message.replace(/: SQLITE_[A-Z_]+( \(extended: [A-Z_]+\))?$/, "");
  const extra = { cause: message };
  // Before SQLITE_CONSTRAINT: the binlog trigger's RAISE(ABORT) reports as a constraint.
  const big = message.indexOf(VALUE_TOO_BIG);
  if (big >= 0) {
    const where = clean.slice(clean.indexOf(VALUE_TOO_BIG) + VALUE_TOO_BIG.length).replace(/^: /, "");
    return new VtError("INVALID_ARGUMENT", `value too large: ${where} would hold more than ${MAX_VALUE_BYTES} bytes (the limit of a TEXT or BLOB value)`, {
      ...extra,
      limit: MAX_VALUE_BYTES,
    });
  }
  // ALTER TABLE … ADD COLUMN checks the existing rows and reports a failure as SQLITE_ERROR.
  if (/SQLITE_CONSTRAINT/.test(message) || /^(CHECK|NOT NULL|UNIQUE|FOREIGN KEY) constraint failed/.test(clean)) {
    return new VtError("CONSTRAINT", clean, extra);
  }
  if (/syntax error/.test(message)) {
    const at = /at offset (\d+)/.exec(message);
    return new VtError("SYNTAX_ERROR", clean, at ? { ...extra, position: Number(at[1]) } : extra);
  }
  if (/no such table/.test(message)) return new VtError("UNKNOWN_TABLE", clean, extra);
  if (/not authorized/.test(message)) return unsupportedError("VD1103", `${clean} (refused by the Durable Object SQLite)`, extra);
  if (/SQLITE_TOOBIG|too big|string or blob too big/.test(message)) {
    return new VtError("INVALID_ARGUMENT", `value too large: ${clean}`, { ...extra, limit: MAX_VALUE_BYTES });
  }
  if (/SQLITE_(ERROR|MISMATCH|RANGE)/.test(message)) return new VtError("INVALID_ARGUMENT", clean, extra);
  if (/SQLITE_(FULL|NOMEM)/.test(message)) return new VtError("INTERNAL", `storage: ${clean}`, extra);
  return new VtError("INTERNAL", clean, extra);
}
