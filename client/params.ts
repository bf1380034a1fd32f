// Checks and normalises what the caller passes before anything is sent: a bad value fails here
// with INVALID_ARGUMENT naming it, never as a confusing error from the server or capnweb.

import type { SqlValue } from "../contract/sql-values.ts";
import type { InStatement, Params } from "./api.ts";
import { VitessError } from "./vitess-error.ts";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Parameters as they travel over capnweb (values native: bigint, Uint8Array). */
export type WireParams = SqlValue[] | Record<string, SqlValue>;

export interface WireStatement {
  sql: string;
  params?: WireParams;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  const name: unknown = Object.getPrototypeOf(v)?.constructor?.name;
  return typeof name === "string" && name !== "" ? `a ${name}` : "an object";
}

/** One parameter value as a SqlValue; `where` names it in the error ("params[2]", "params.id"). */
export function encodeValue(v: unknown, where: string): SqlValue {
  switch (typeof v) {
    case "undefined":
      return null;
    case "string":
      return v;
    case "boolean":
      return v ? 1 : 0;
    case "number":
      if (Number.isNaN(v)) throw new VitessError("INVALID_ARGUMENT", `${where}: NaN is not a SQL value`);
      return v;
    case "bigint":
      if (v < INT64_MIN || v > INT64_MAX) {
        throw new VitessError("INVALID_ARGUMENT", `${where}: integer ${v} is outside the 64-bit range`);
      }
      return v;
    case "object":
      if (v === null) return null;
      // A subclass (Node's Buffer) is sent as a plain view of the same bytes.
      if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      if (v instanceof ArrayBuffer) return new Uint8Array(v);
      break;
    default:
      break;
  }
  throw new VitessError(
    "INVALID_ARGUMENT",
    `${where}: ${describe(v)} is not a SQL value (use null, undefined, a number, bigint, string, boolean, Uint8Array or ArrayBuffer)`,
  );
}

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Positional or named parameters, checked and normalised; undefined when there are none. */
export function encodeParams(params: Params | undefined, where = "params"): WireParams | undefined {
  if (params === undefined || params === null) return undefined;
  if (Array.isArray(params)) {
    const list: readonly unknown[] = params;
    return list.map((v, i) => encodeValue(v, `${where}[${i}]`));
  }
  if (typeof params !== "object" || !isPlainObject(params)) {
    throw new VitessError("INVALID_ARGUMENT", `${where}: parameters are an array (positional) or a plain object (named), not ${describe(params)}`);
  }
  const out: Record<string, SqlValue> = {};
  for (const [name, v] of Object.entries(params)) {
    if (name === "") throw new VitessError("INVALID_ARGUMENT", `${where}: a parameter name is empty`);
    Object.defineProperty(out, name, { value: encodeValue(v, `${where}.${name}`), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export function checkSql(sql: unknown, where = "sql"): string {
  if (typeof sql !== "string" || sql.trim() === "") {
    throw new VitessError("INVALID_ARGUMENT", `${where}: a statement is a non-empty string`);
  }
  return sql;
}

/** A batch entry (SQL text or `{ sql, params }`) in wire form. */
export function encodeStatement(s: InStatement, index: number): WireStatement {
  const where = `statements[${index}]`;
  if (typeof s === "string") return { sql: checkSql(s, where) };
  if (typeof s !== "object" || s === null) {
    throw new VitessError("INVALID_ARGUMENT", `${where}: a statement is SQL text or { sql, params }`);
  }
  const sql = checkSql(s.sql, `${where}.sql`);
  const params = encodeParams(s.params, `${where}.params`);
  return params === undefined ? { sql } : { sql, params };
}
