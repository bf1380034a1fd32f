// SQLite errors → catalogue codes, at the tablet boundary (the original stays as `cause`).

import { VtError } from "../topology/errors.ts";
import { unsupportedError } from "../topology/refusals.ts";

export function fromSqliteError(e: unknown): VtError {
  if (e instanceof VtError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const clean = message.replace(/: SQLITE_[A-Z_]+( \(extended: [A-Z_]+\))?$/, "");
  const extra = { cause: message };
  if (/SQLITE_CONSTRAINT/.test(message)) return new VtError("CONSTRAINT", clean, extra);
  if (/syntax error/.test(message)) {
    const at = /at offset (\d+)/.exec(message);
    return new VtError("SYNTAX_ERROR", clean, at ? { ...extra, position: Number(at[1]) } : extra);
  }
  if (/no such table/.test(message)) return new VtError("UNKNOWN_TABLE", clean, extra);
  if (/not authorized/.test(message)) return unsupportedError("VD1103", `${clean} (refused by the Durable Object SQLite)`, extra);
  if (/SQLITE_TOOBIG|too big|string or blob too big/.test(message)) {
    return new VtError("INVALID_ARGUMENT", `value too large: ${clean}`, extra);
  }
  if (/SQLITE_(ERROR|MISMATCH|RANGE)/.test(message)) return new VtError("INVALID_ARGUMENT", clean, extra);
  if (/SQLITE_(FULL|NOMEM)/.test(message)) return new VtError("INTERNAL", `storage: ${clean}`, extra);
  return new VtError("INTERNAL", clean, extra);
}
