// One bound statement on the tablet's SQLite, its answer exact: BLOBs as bytes, integers beyond
// 2^53 and REALs that look integral told apart (DO SQLite hands every number back as a JS number),
// a write's RETURNING values from the gate's quote() copies, and its rows affected and last rowid.

import { VtError } from "../contract/errors.ts";
import { decodeQuoted, normalizeInt, type SqlValue } from "../contract/sql-values.ts";
import type { BoundQuery, QueryResult } from "../contract/tablet-rpc.ts";
import { unsupportedError } from "../topology/refusals.ts";
import { checkResultValues } from "../topology/value-limits.ts";
import { fromQuotedCopies, integralNumberColumns, quotedIsReal, unsafeIntegerColumns } from "./exact-values.ts";
import { fromSqliteError } from "./sqlite-errors.ts";

function normalizeRow(row: unknown[]): SqlValue[] {
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (v instanceof ArrayBuffer) row[i] = new Uint8Array(v);
  }
  return row as SqlValue[];
}

/** The statement's result, and for a write SQLite's total_changes() after it. */
export function runQuery(sql: SqlStorage, q: BoundQuery): { result: QueryResult; totalChanges?: number } {
  let cursor: SqlStorageCursor<Record<string, SqlStorageValue>>;
  try {
    cursor = sql.exec(q.sql, ...q.params);
  } catch (e) {
    throw fromSqliteError(e);
  }
  let columns = cursor.columnNames;
  let rows: SqlValue[][];
  try {
    rows = Array.from(cursor.raw(), normalizeRow);
  } catch (e) {
    throw fromSqliteError(e);
  }
  checkResultValues(rows, columns);
  const copied = q.kind === "read" ? undefined : fromQuotedCopies(columns, rows);
  let reals: number[][] | undefined;
  if (copied) ({ columns, rows } = copied);
  else {
    // With q.reals, every column holding an integral number is re-read: its quote() tells a REAL 1.0 from the INTEGER 1.
    const unsafe = unsafeIntegerColumns(rows);
    if (q.reals) for (const i of integralNumberColumns(rows)) unsafe.add(i);
    if (unsafe.size > 0) ({ rows, reals } = exactIntegers(sql, q, columns.length, unsafe, rows));
  }
  const result: QueryResult = { columns, rows, rowsAffected: 0 };
  if (q.reals) result.reals = reals ?? rows.map(() => []);
  if (q.kind === "read") return { result };
  // As text: sql.exec would round a rowid beyond 2^53.
  const c = sql.exec<{ n: number; id: string; tc: number }>("SELECT changes() AS n, CAST(last_insert_rowid() AS TEXT) AS id, total_changes() AS tc").one();
  result.rowsAffected = c.n;
  if (q.kind === "insert" && c.n > 0) result.lastInsertRowid = normalizeInt(BigInt(c.id));
  return { result, totalChanges: c.tc };
}

/**
 * sql.exec hands integers beyond 2^53 back rounded. A read is re-run (same transaction, so same
 * rows) with those columns passed through quote(), which keeps them exact. A write's RETURNING
 * values arrive exact through the gate's quote() copies (fromQuotedCopies); a write without them
 * (SQL the gate built itself) cannot be re-run and is refused.
 */
function exactIntegers(sql: SqlStorage, q: BoundQuery, width: number, unsafe: Set<number>, rows: SqlValue[][]): { rows: SqlValue[][]; reals: number[][] } {
  if (q.kind !== "read") {
    throw unsupportedError("VD1104", "RETURNING an integer beyond ±2^53 cannot be returned exactly yet; read it back with SELECT");
  }
  const names = Array.from({ length: width }, (_, i) => `c${i}`);
  const select = names.map((n, i) => (unsafe.has(i) ? `quote(${n})` : n)).join(", ");
  const text = `WITH _vt_q(${names.join(", ")}) AS (\n${q.sql}\n) SELECT ${select} FROM _vt_q`;
  const again = Array.from(sql.exec(text, ...q.params).raw(), normalizeRow);
  if (again.length !== rows.length) throw new VtError("INTERNAL", "exact-integer re-read returned a different row count");
  const cols = [...unsafe].sort((a, b) => a - b);
  const reals = again.map((row) => {
    const out: number[] = [];
    for (const i of cols) {
      const v = row[i];
      if (typeof v !== "string") continue;
      row[i] = decodeQuoted(v);
      if (typeof row[i] === "number" && Number.isInteger(row[i]) && quotedIsReal(v)) out.push(i);
    }
    return out;
  });
  return { rows: again, reals };
}
