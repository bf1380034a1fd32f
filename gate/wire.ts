// Requests and results as JSON (⚑ HTTP): params decoded into SqlValues, results encoded.

import { VtError } from "../topology/errors.ts";
import { checkSqlValue, fromJsonValue, toJsonValue, type JsonValue, type SqlValue } from "../topology/sql-values.ts";
import type { QueryResult } from "../tablet/types.ts";
import type { Params, Statement } from "./executor.ts";

export function decodeParams(p: unknown, where: string, fromJson: boolean): Params | undefined {
  if (p === undefined || p === null) return undefined;
  const one = fromJson ? fromJsonValue : checkSqlValue;
  if (Array.isArray(p)) return p.map((v, i) => one(v, `${where} param ${i + 1}`));
  if (typeof p === "object" && !(p instanceof Uint8Array)) {
    const out: Record<string, SqlValue> = {};
    for (const [k, v] of Object.entries(p)) out[k] = one(v, `${where} param ${k}`);
    return out;
  }
  throw new VtError("INVALID_ARGUMENT", `${where}: "params" must be an array or an object`);
}

export function decodeStatement(body: unknown, where: string, fromJson: boolean): Statement {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new VtError("INVALID_ARGUMENT", `${where}: expected an object {sql, params?}`);
  }
  const o = body as Record<string, unknown>;
  if (typeof o["sql"] !== "string") throw new VtError("INVALID_ARGUMENT", `${where}: "sql" must be a string`);
  const params = decodeParams(o["params"], where, fromJson);
  return params === undefined ? { sql: o["sql"] } : { sql: o["sql"], params };
}

export function decodeKeyspace(o: Record<string, unknown>): string | undefined {
  const k = o["keyspace"];
  if (k === undefined || k === null) return undefined;
  if (typeof k !== "string") throw new VtError("INVALID_ARGUMENT", '"keyspace" must be a string');
  return k;
}

export interface JsonResult {
  columns: string[];
  rows: JsonValue[][];
  rowsAffected: number;
  lastInsertRowid?: JsonValue;
}

export function encodeResult(r: QueryResult): JsonResult {
  const out: JsonResult = { columns: r.columns, rows: r.rows.map((row) => row.map(toJsonValue)), rowsAffected: r.rowsAffected };
  if (r.lastInsertRowid !== undefined) out.lastInsertRowid = toJsonValue(r.lastInsertRowid);
  return out;
}
