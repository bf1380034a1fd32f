// A statement as a request carries it, and the checks every statement passes before it is parsed:
// the SQL is a string of bounded length, and neither it nor a parameter holds a value SQLite
// would silently change (a lone surrogate) or refuse (a value over the size limit).

import { VtError } from "../contract/errors.ts";
import type { SqlValue } from "../contract/sql-values.ts";
import { MAX_VALUE_BYTES } from "../topology/value-limits.ts";

export type Params = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;

export interface Statement {
  readonly sql: string;
  readonly params?: Params;
}

export const MAX_SQL_CHARS = 100_000;

/**
 * A UTF-16 surrogate without its pair (JSON and capnweb can carry one, as `\ud800`) has no UTF-8
 * form: SQLite would store bytes that read back as U+FFFD, a silently different value.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export function checkStatement(st: Statement, where: string): void {
  if (typeof st.sql !== "string") throw new VtError("INVALID_ARGUMENT", `${where}: "sql" must be a string`);
  if (st.sql.length > MAX_SQL_CHARS) throw new VtError("INVALID_ARGUMENT", `${where}: SQL text is over ${MAX_SQL_CHARS} characters`);
  const lone = LONE_SURROGATE.exec(st.sql);
  if (lone)
    throw new VtError("INVALID_ARGUMENT", `${where}: the SQL text holds a lone UTF-16 surrogate at position ${lone.index}, which is not Unicode text`, {
      position: lone.index,
    });
  const values = st.params === undefined ? [] : Array.isArray(st.params) ? st.params : Object.values(st.params);
  values.forEach((v, i) => {
    if (typeof v === "string" && LONE_SURROGATE.test(v)) {
      throw new VtError(
        "INVALID_ARGUMENT",
        `${where}: param ${i + 1} holds a lone UTF-16 surrogate, which is not Unicode text (SQLite would store it as U+FFFD)`,
      );
    }
    const size = typeof v === "string" ? new TextEncoder().encode(v).length : v instanceof Uint8Array ? v.length : 0;
    if (size > MAX_VALUE_BYTES) {
      throw new VtError("INVALID_ARGUMENT", `${where}: param ${i + 1} is ${size} bytes; a value may be at most ${MAX_VALUE_BYTES} bytes`, {
        limit: MAX_VALUE_BYTES,
      });
    }
  });
}
