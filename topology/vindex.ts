// Vindexes, as in Vitess: a vindex maps a column value to a keyspace id (ksid),
// and the shard whose key range contains the ksid owns the row.
//
// Value encoding, shared by all vindexes here:
// - An "integer" is a number with Number.isInteger, a bigint, or a string
//   matching /^[+-]?\d+$/ whose value fits int64 (so 42, 42n and "42" map the
//   same, as SQLite INTEGER affinity would store "42" as 42). A digit string
//   outside int64 is plain text. A number or bigint outside int64 is rejected.
// - Text is encoded as UTF-8; a Uint8Array (blob) is used as is.
// - null, non-integer numbers (reals, NaN, Infinity) are rejected: keyspace ids
//   of floating point values would not be stable.
// Rejections throw VtError("INVALID_ARGUMENT").
//
// Types (all unique):
// - xxhash (cost 1): ksid = XXH64(seed 0) of the value's bytes, 8 bytes
//   big-endian. Integers hash their 8-byte big-endian two's-complement int64
//   form; text its UTF-8 bytes; blobs their bytes.
// - numeric (cost 0): ksid = the integer as 8-byte big-endian uint64 (negative
//   values as two's complement, so -1 → ffffffffffffffff). Integers only.
// - binary (cost 0): ksid = the value's bytes, any length (not 8 bytes).
//   Integers become the bytes of their decimal text, so 42 and "42" map the same.
// - unicode_loose_xxhash (cost 1): case- and accent-insensitive xxhash of text:
//   s.normalize("NFKD"), remove combining marks (\p{M}), toLowerCase(), strip
//   trailing U+0020 spaces, then XXH64 of the UTF-8 bytes, 8 bytes big-endian.
//   Integers use their decimal text; blobs must be valid UTF-8 and are decoded
//   as text. (Vitess uses collation weights instead; this is a simpler, stable
//   approximation, so ksids differ from Vitess's for this type.)

import { VtError } from "../contract/errors.ts";
import { unsupportedError } from "./refusals.ts";
import { bytesToHex } from "./keyrange.ts";
import { xxhash64Bytes } from "./xxhash64.ts";
import type { SqlValue } from "../contract/sql-values.ts";

export type { SqlValue };

/** Where a lookup vindex keeps its mapping: table (`name` or `keyspace.name`), its value column and its keyspace-id column. */
export interface LookupParams {
  readonly table: string;
  readonly from: string;
  readonly to: string;
}

export interface Vindex {
  readonly type: string;
  readonly unique: boolean;
  readonly cost: number;
  /** Set for lookup vindexes: the value → keyspace id mapping lives in this table, not in a function. */
  readonly lookup?: LookupParams;
  /** Keyspace id for one value; throws INVALID_ARGUMENT when the value cannot be mapped (null, wrong type). */
  map(value: SqlValue): Uint8Array;
}

/** Builds a vindex from its vschema params; throws INVALID_ARGUMENT for params it does not accept. */
export type VindexFactory = (type: string, params: Readonly<Record<string, string>>) => Vindex;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const INTEGER_TEXT_RE = /^[+-]?\d+$/;

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function describe(value: SqlValue): string {
  if (value === null) return "NULL";
  if (value instanceof Uint8Array) return `blob of ${value.length} bytes`;
  if (typeof value === "string") return `text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function reject(type: string, value: SqlValue, why: string): never {
  throw new VtError("INVALID_ARGUMENT", `vindex ${type} cannot map ${describe(value)}: ${why}`);
}

/**
 * The value as an int64 when it is an integer per the rules above, undefined
 * when it is text or a blob that is not an integer; throws for null, reals and
 * out-of-range numbers.
 */
function asInt64(type: string, value: SqlValue): bigint | undefined {
  if (value === null) reject(type, value, "NULL has no keyspace id");
  if (typeof value === "number") {
    if (!Number.isInteger(value)) reject(type, value, "not an integer");
    const v = BigInt(value);
    if (v < INT64_MIN || v > INT64_MAX) reject(type, value, "outside the int64 range");
    return v;
  }
  if (typeof value === "bigint") {
    if (value < INT64_MIN || value > INT64_MAX) reject(type, value, "outside the int64 range");
    return value;
  }
  if (typeof value === "string" && INTEGER_TEXT_RE.test(value)) {
    const v = BigInt(value);
    if (v >= INT64_MIN && v <= INT64_MAX) return v;
  }
  return undefined;
}

/** 8-byte big-endian two's-complement form of an int64. */
function int64Bytes(v: bigint): Uint8Array {
  const u = BigInt.asUintN(64, v);
  const hi = Number(u >> 32n);
  const lo = Number(u & 0xffffffffn);
  return Uint8Array.of(hi >>> 24, hi >>> 16, hi >>> 8, hi, lo >>> 24, lo >>> 16, lo >>> 8, lo);
}

/** Bytes of text or a blob (a copy for blobs). */
function rawBytes(value: string | Uint8Array): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value.slice();
}

function looseText(type: string, value: SqlValue): string {
  const n = asInt64(type, value);
  if (n !== undefined) return n.toString();
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) {
    try {
      return strictDecoder.decode(value);
    } catch {
      reject(type, value, "blob is not valid UTF-8");
    }
  }
  return reject(type, value, "unsupported value type");
}

function noParams(type: string, params: Readonly<Record<string, string>>): void {
  const keys = Object.keys(params);
  if (keys.length > 0) {
    throw new VtError("INVALID_ARGUMENT", `vindex ${type} takes no params, got: ${keys.join(", ")}`);
  }
}

const registry = new Map<string, VindexFactory>();

/** Adds a vindex type to the registry; throws INVALID_ARGUMENT if the name is taken. */
export function registerVindex(type: string, factory: VindexFactory): void {
  if (registry.has(type)) throw new VtError("INVALID_ARGUMENT", `vindex type ${type} is already registered`);
  registry.set(type, factory);
}

registerVindex("xxhash", (type, params) => {
  noParams(type, params);
  return Object.freeze({
    type,
    unique: true,
    cost: 1,
    map(value: SqlValue): Uint8Array {
      const n = asInt64(type, value);
      if (n !== undefined) return xxhash64Bytes(int64Bytes(n));
      if (typeof value === "string" || value instanceof Uint8Array) return xxhash64Bytes(rawBytes(value));
      return reject(type, value, "unsupported value type");
    },
  });
});

registerVindex("numeric", (type, params) => {
  noParams(type, params);
  return Object.freeze({
    type,
    unique: true,
    cost: 0,
    map(value: SqlValue): Uint8Array {
      const n = asInt64(type, value);
      if (n === undefined) return reject(type, value, "only integers can be mapped");
      return int64Bytes(n);
    },
  });
});

registerVindex("binary", (type, params) => {
  noParams(type, params);
  return Object.freeze({
    type,
    unique: true,
    cost: 0,
    map(value: SqlValue): Uint8Array {
      if (typeof value === "string" || value instanceof Uint8Array) return rawBytes(value);
      const n = asInt64(type, value);
      if (n === undefined) return reject(type, value, "unsupported value type");
      return encoder.encode(n.toString());
    },
  });
});

registerVindex("unicode_loose_xxhash", (type, params) => {
  noParams(type, params);
  return Object.freeze({
    type,
    unique: true,
    cost: 1,
    map(value: SqlValue): Uint8Array {
      const loose = looseText(type, value).normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().replace(/ +$/u, "");
      return xxhash64Bytes(encoder.encode(loose));
    },
  });
});

// Lookup vindexes (secondary only): a table maps each value of the column to the keyspace ids
// of its rows. The gate keeps that table in step with the owner table's writes; `map` cannot
// compute a keyspace id from the value alone.
for (const [type, unique] of [
  ["lookup_unique", true],
  ["lookup", false],
  ["consistent_lookup_unique", true],
  ["consistent_lookup", false],
] as const) {
  registerVindex(type, (t, params) => {
    const keys = Object.keys(params);
    for (const k of ["table", "from", "to"]) {
      if (typeof params[k] !== "string" || params[k] === "") throw new VtError("INVALID_ARGUMENT", `vindex ${t} needs params.${k}`);
    }
    const extra = keys.filter((k) => !["table", "from", "to", "autocommit", "ignore_nulls", "write_only"].includes(k));
    if (extra.length > 0) throw new VtError("INVALID_ARGUMENT", `vindex ${t} does not take params ${extra.join(", ")}`);
    for (const k of ["autocommit", "write_only"]) {
      if (params[k] !== undefined && params[k] !== "false") throw unsupportedError("VD1108", `vindex ${t}: params.${k} is not supported`);
    }
    const ident = /^([A-Za-z][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/;
    if (!ident.test(params["table"] ?? "") || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(params["from"] ?? "") || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(params["to"] ?? "")) {
      throw new VtError("INVALID_ARGUMENT", `vindex ${t}: table, from and to must be plain names (table may be keyspace.table; one from column)`);
    }
    return Object.freeze({
      type: t,
      unique,
      cost: unique ? 10 : 20,
      lookup: Object.freeze({ table: params["table"] ?? "", from: params["from"] ?? "", to: params["to"] ?? "" }),
      map(value: SqlValue): Uint8Array {
        return reject(t, value, "a lookup vindex maps values through its table");
      },
    });
  });
}

/** A vindex of a registered type; throws INVALID_ARGUMENT for an unknown type (listing the known ones) or bad params. */
export function createVindex(type: string, params?: Readonly<Record<string, string>>): Vindex {
  const factory = registry.get(type);
  if (factory === undefined) {
    throw new VtError("INVALID_ARGUMENT", `unknown vindex type ${JSON.stringify(type)}; known types: ${vindexTypes().join(", ")}`);
  }
  return factory(type, params ?? {});
}

/** Registered vindex type names, sorted. */
export function vindexTypes(): string[] {
  return [...registry.keys()].sort();
}

/** Lowercase hex of a keyspace id, e.g. "0000000000000001". */
export function ksidToHex(ksid: Uint8Array): string {
  return bytesToHex(ksid);
}
