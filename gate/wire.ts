// Requests and results as JSON (⚑ HTTP): params decoded into SqlValues, results encoded.

import { toVtError, VtError } from "../contract/errors.ts";
import { checkSqlValue, fromJsonValue, toJsonValue, type JsonValue, type SqlValue } from "../contract/sql-values.ts";
import { checkResultValues } from "../topology/value-limits.ts";
import type { QueryResult } from "../contract/tablet-rpc.ts";
import type { Params, Statement } from "./statement.ts";

export function decodeParams(p: unknown, where: string, fromJson: boolean): Params | undefined {
  if (p === undefined || p === null) return undefined;
  const one = fromJson ? fromJsonValue : checkSqlValue;
  if (Array.isArray(p)) return p.map((v, i) => one(v, `${where} param ${i + 1}`));
  if (typeof p === "object" && !(p instanceof Uint8Array)) {
    // fromEntries defines own properties, so a param named __proto__ stays a param.
    return Object.fromEntries(Object.entries(p).map(([k, v]): [string, SqlValue] => [k, one(v, `${where} param ${k}`)]));
  }
  throw new VtError("INVALID_ARGUMENT", `${where}: "params" must be an array or an object`);
}

export function decodeStatement(body: unknown, where: string, fromJson: boolean): Statement {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new VtError("INVALID_ARGUMENT", `${where}: expected an object {sql, params?}`);
  }
  const o = body as Record<string, unknown>;
  if (!Object.hasOwn(o, "sql") || typeof o["sql"] !== "string") throw new VtError("INVALID_ARGUMENT", `${where}: "sql" must be a string`);
  const params = decodeParams(Object.hasOwn(o, "params") ? o["params"] : undefined, where, fromJson);
  return params === undefined ? { sql: o["sql"] } : { sql: o["sql"], params };
}

/**
 * Most statements one batch may hold. A batch without `transaction` makes at least one tablet
 * call per statement (every shard's, for a scatter), and a Worker invocation may make 1,000
 * subrequests on the Workers Paid plans that still have that limit (10,000 on the current one):
 * 1,000 single-shard statements stay inside it. A transactional batch is one tablet call, and
 * is also bounded by the 8 MiB body.
 */
export const MAX_BATCH_STATEMENTS = 1000;

/** The `statements` of a batch request, decoded; at most MAX_BATCH_STATEMENTS of them. */
export function decodeStatements(o: Record<string, unknown>, fromJson: boolean): Statement[] {
  const raw = Object.hasOwn(o, "statements") ? o["statements"] : undefined;
  if (!Array.isArray(raw)) throw new VtError("INVALID_ARGUMENT", '"statements" must be an array of {sql, params?}');
  if (raw.length > MAX_BATCH_STATEMENTS) {
    throw new VtError("INVALID_ARGUMENT", `a batch holds at most ${MAX_BATCH_STATEMENTS} statements, not ${raw.length}`, { limit: MAX_BATCH_STATEMENTS });
  }
  return raw.map((s: unknown, i) => {
    try {
      return decodeStatement(s, `statement ${i}`, fromJson);
    } catch (e) {
      const vt = toVtError(e);
      vt["statementIndex"] = i;
      throw vt;
    }
  });
}

export function decodeKeyspace(o: Record<string, unknown>): string | undefined {
  const k = Object.hasOwn(o, "keyspace") ? o["keyspace"] : undefined;
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

/**
 * A result as the gate answers it, after checking that no value in it is over the value limit
 * (the gate computes some values itself, e.g. group_concat across shards).
 */
export function checkedResult(r: QueryResult): QueryResult {
  checkResultValues(r.rows, r.columns);
  return r;
}

export function encodeResult(r: QueryResult): JsonResult {
  const out: JsonResult = { columns: r.columns, rows: r.rows.map((row) => row.map(toJsonValue)), rowsAffected: r.rowsAffected };
  if (r.lastInsertRowid !== undefined) out.lastInsertRowid = toJsonValue(r.lastInsertRowid);
  return out;
}
