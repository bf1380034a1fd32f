// SQL values as they travel. In process and across Workers RPC / capnweb a value is a JS
// primitive: INTEGER is a number when it is a safe integer and a bigint beyond ±(2^53−1),
// REAL a number, TEXT a string, BLOB a Uint8Array. Over JSON (the ⚑ HTTP contract) integers
// beyond 2^53 are {"int": "<decimal>"}, BLOBs {"base64": "..."}, non-finite reals
// {"real": "Infinity" | "-Infinity"}; a plain JSON string is always TEXT.

import { VtError } from "./errors.ts";

export type SqlValue = null | number | bigint | string | Uint8Array;
export type JsonValue = null | number | string | { int: string } | { base64: string } | { real: string };

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Normalises an integer to a number when safe, else a bigint; rejects values outside int64. */
export function normalizeInt(v: bigint): number | bigint {
  if (v < INT64_MIN || v > INT64_MAX) {
    throw new VtError("INVALID_ARGUMENT", `integer ${v} is outside the 64-bit range`);
  }
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export function fromBase64(b64: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(b64);
  } catch {
    throw new VtError("INVALID_ARGUMENT", 'a {"base64"} value is not valid base64');
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toJsonValue(v: SqlValue): JsonValue {
  if (v === null || typeof v === "string") return v;
  if (typeof v === "bigint") {
    const n = normalizeInt(v);
    return typeof n === "number" ? n : { int: n.toString() };
  }
  if (typeof v === "number") {
    if (Number.isFinite(v)) return v;
    if (Number.isNaN(v)) return null;
    return { real: v > 0 ? "Infinity" : "-Infinity" };
  }
  return { base64: toBase64(v) };
}

/** A JSON value from a request (params) into a SqlValue; `where` names it in errors. */
export function fromJsonValue(v: unknown, where: string): SqlValue {
  if (v === null || typeof v === "string") return v;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new VtError("INVALID_ARGUMENT", `${where}: not a finite number`);
    return v;
  }
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      if (typeof o["int"] === "string") {
        if (!/^[+-]?\d+$/.test(o["int"])) {
          throw new VtError("INVALID_ARGUMENT", `${where}: {"int"} must hold a decimal integer`);
        }
        return normalizeInt(BigInt(o["int"]));
      }
      if (typeof o["base64"] === "string") return fromBase64(o["base64"]);
      if (o["real"] === "Infinity") return Infinity;
      if (o["real"] === "-Infinity") return -Infinity;
    }
  }
  throw new VtError("INVALID_ARGUMENT", `${where}: values are null, numbers, strings, {"int": "<decimal>"}, {"base64": "..."} or booleans`);
}

/** Validates a value that arrived over RPC (already typed by structured clone / capnweb). */
export function checkSqlValue(v: unknown, where: string): SqlValue {
  if (v === null || typeof v === "string") return v;
  if (typeof v === "number") {
    if (Number.isNaN(v)) throw new VtError("INVALID_ARGUMENT", `${where}: NaN is not a SQL value`);
    return v;
  }
  if (typeof v === "bigint") return normalizeInt(v);
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v === undefined) return null;
  return fromJsonValue(v, where);
}

/**
 * Decodes one SQLite `quote()` literal, the form the binlog stores row images in:
 * NULL, an integer, a real (always with '.', 'e' or Inf), 'text' with '' escapes, X'hex'.
 */
export function decodeQuoted(lit: string): SqlValue {
  const c = lit.charCodeAt(0);
  if (c === 39 /* ' */) return lit.slice(1, -1).replaceAll("''", "'");
  if (lit === "NULL") return null;
  if (c === 88 /* X */) {
    const hex = lit.slice(2, -1);
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return out;
  }
  if (/^-?\d+$/.test(lit)) {
    const n = Number(lit);
    return Number.isSafeInteger(n) ? n : BigInt(lit);
  }
  if (lit.endsWith("e+999")) return lit.startsWith("-") ? -Infinity : Infinity;
  return Number(lit);
}

/** A value as a SQLite literal, for the few places a value must be inlined (int64 beyond 2^53). */
export function sqlLiteral(v: SqlValue): string {
  if (v === null) return "NULL";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") {
    if (Number.isInteger(v) && Number.isSafeInteger(v)) return String(v);
    if (!Number.isFinite(v)) return v > 0 ? "9e999" : "-9e999";
    const s = String(v);
    return /[.eE]/.test(s) ? s : `${s}.0`;
  }
  if (typeof v === "string") return `'${v.replaceAll("'", "''")}'`;
  let hex = "";
  for (const b of v) hex += b.toString(16).padStart(2, "0");
  return `X'${hex}'`;
}

/** Byte length of a value as SQLite would store it (for size limits). */
export function valueSize(v: SqlValue): number {
  if (typeof v === "string") return v.length * 3 > 2_000_000 ? new TextEncoder().encode(v).length : v.length;
  if (v instanceof Uint8Array) return v.length;
  return 8;
}

/** An SQL identifier, double-quoted (a `"` inside doubled). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
