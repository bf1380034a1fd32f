// Key ranges and shard names, following Vitess go/vt/key.
//
// A keyspace id (ksid) is a byte string. A shard owns the half-open range
// [start, end) of keyspace ids; an empty start means "from the lowest key" and
// an empty end means "to past the highest key". Shard names are the hex forms
// "<start>-<end>", e.g. "-80", "40-80", "80-", and "-" (or "") for everything.
//
// Key comparison (compareKeys): bytewise, with the shorter key treated as if it
// were right-padded with zero bytes. So 0x80 == 0x8000 and "80-" names the same
// range as "8000-", and an empty start is the same bound as "00". This matches
// Vitess's treatment of range bounds (a 1-byte bound 0x80 is the 8-byte bound
// 0x8000000000000000) and makes ranges of different bound widths comparable.

import { VtError } from "../contract/errors.ts";

export interface KeyRange {
  readonly start: Uint8Array;
  readonly end: Uint8Array;
}

/** The range of every keyspace id: shard "-". */
export const FULL_RANGE: KeyRange = Object.freeze({
  start: new Uint8Array(0),
  end: new Uint8Array(0),
});

const HEX_RE = /^[0-9a-fA-F]*$/;

/** Lowercase hex of `bytes`, two digits per byte. */
export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Bytes of a hex string (case-insensitive); throws INVALID_ARGUMENT on non-hex or an odd digit count. */
export function hexToBytes(hex: string): Uint8Array {
  if (!HEX_RE.test(hex)) {
    throw new VtError("INVALID_ARGUMENT", `invalid hex ${JSON.stringify(hex)}: only 0-9 and a-f are allowed`);
  }
  if (hex.length % 2 !== 0) {
    throw new VtError("INVALID_ARGUMENT", `invalid hex ${JSON.stringify(hex)}: odd number of hex digits`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Orders keys bytewise, treating the shorter key as right-padded with zero
 * bytes (so [0x80] and [0x80, 0x00] compare equal). Returns <0, 0 or >0.
 * Use only for keys and start bounds; an empty end bound means +infinity and
 * must be handled by the caller.
 */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = i < a.length ? (a[i] ?? 0) : 0;
    const y = i < b.length ? (b[i] ?? 0) : 0;
    if (x !== y) return x - y;
  }
  return 0;
}

/**
 * Parses a shard name such as "-80", "80-", "40-80", "-" or "" (both of the
 * last two mean the full range). Hex is case-insensitive. Throws
 * INVALID_ARGUMENT when the name is not exactly one "-" between two
 * even-length hex strings, or when both bounds are set and start >= end (an
 * empty range; this includes an end bound of all zeros).
 */
export function parseKeyRange(spec: string): KeyRange {
  if (spec === "" || spec === "-") return { start: new Uint8Array(0), end: new Uint8Array(0) };
  const parts = spec.split("-");
  if (parts.length !== 2) {
    throw new VtError("INVALID_ARGUMENT", `invalid key range ${JSON.stringify(spec)}: expected "<start>-<end>" in hex, e.g. "-80", "40-80", "80-"`);
  }
  const [startHex = "", endHex = ""] = parts;
  let start: Uint8Array;
  let end: Uint8Array;
  try {
    start = hexToBytes(startHex);
    end = hexToBytes(endHex);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new VtError("INVALID_ARGUMENT", `invalid key range ${JSON.stringify(spec)}: ${reason}`);
  }
  if (end.length > 0 && compareKeys(start, end) >= 0) {
    throw new VtError("INVALID_ARGUMENT", `invalid key range ${JSON.stringify(spec)}: start must be below end`);
  }
  return { start, end };
}

/** Lowercase shard name of a range: "-80", "40-80", "80-", "-" for the full range. Bounds keep their byte width. */
export function formatKeyRange(kr: KeyRange): string {
  return `${bytesToHex(kr.start)}-${bytesToHex(kr.end)}`;
}

/** True when start <= ksid < end (an empty end is unbounded). */
export function keyRangeContains(kr: KeyRange, ksid: Uint8Array): boolean {
  return compareKeys(kr.start, ksid) <= 0 && (kr.end.length === 0 || compareKeys(ksid, kr.end) < 0);
}

/** True when the two half-open ranges share at least one key. */
export function keyRangesIntersect(a: KeyRange, b: KeyRange): boolean {
  return (a.end.length === 0 || compareKeys(b.start, a.end) < 0) && (b.end.length === 0 || compareKeys(a.start, b.end) < 0);
}

/** True when both ranges cover the same keys (bounds compared zero-padded, so "80-" equals "8000-"). */
export function keyRangeEqual(a: KeyRange, b: KeyRange): boolean {
  if (compareKeys(a.start, b.start) !== 0) return false;
  if (a.end.length === 0 || b.end.length === 0) return a.end.length === b.end.length;
  return compareKeys(a.end, b.end) === 0;
}

function checkPartCount(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 65536) {
    throw new VtError("INVALID_ARGUMENT", `${what} must be an integer from 1 to 65536, got ${String(n)}`);
  }
}

/** Big-endian unsigned value of `key` right-padded with zeros to `width` bytes (key.length <= width). */
function keyToBigInt(key: Uint8Array, width: number): bigint {
  let v = 0n;
  for (let i = 0; i < width; i++) v = (v << 8n) | BigInt(i < key.length ? (key[i] ?? 0) : 0);
  return v;
}

function bigIntToKey(v: bigint, width: number): Uint8Array {
  const out = new Uint8Array(width);
  let x = v;
  for (let i = width - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/**
 * Splits `kr` into `parts` (integer 1..65536) contiguous, non-empty ranges of
 * as-equal-as-possible size. The first start and last end are kr's own bounds;
 * inner boundaries are start + floor(i * size / parts) written with a fixed
 * width: the widest bound of kr (at least 1 byte), grown a byte at a time until
 * the range holds at least `parts` keys. So splitKeyRange(FULL_RANGE, n) gives
 * the same names as evenShards(n). Throws INVALID_ARGUMENT for a bad count or
 * an empty range.
 */
export function splitKeyRange(kr: KeyRange, parts: number): KeyRange[] {
  checkPartCount("split count", parts);
  if (kr.end.length > 0 && compareKeys(kr.start, kr.end) >= 0) {
    throw new VtError("INVALID_ARGUMENT", `cannot split empty key range ${formatKeyRange(kr)}`);
  }
  if (parts === 1) return [{ start: kr.start.slice(), end: kr.end.slice() }];
  let width = Math.max(kr.start.length, kr.end.length, 1);
  let lo = keyToBigInt(kr.start, width);
  let hi = kr.end.length === 0 ? 1n << BigInt(8 * width) : keyToBigInt(kr.end, width);
  while (hi - lo < BigInt(parts)) {
    width += 1;
    lo <<= 8n;
    hi <<= 8n;
  }
  const size = hi - lo;
  const n = BigInt(parts);
  const bounds: Uint8Array[] = [kr.start.slice()];
  for (let i = 1n; i < n; i++) bounds.push(bigIntToKey(lo + (i * size) / n, width));
  bounds.push(kr.end.slice());
  const out: KeyRange[] = [];
  for (let i = 0; i < parts; i++) {
    out.push({ start: bounds[i] ?? new Uint8Array(0), end: bounds[i + 1] ?? new Uint8Array(0) });
  }
  return out;
}

/**
 * Names of `count` (integer 1..65536) shards splitting the full range evenly:
 * boundary i is floor(i * 256 / count) as one byte while count <= 256, else
 * floor(i * 65536 / count) as two bytes. 1 → ["-"], 2 → ["-80", "80-"],
 * 3 → ["-55", "55-aa", "aa-"].
 */
export function evenShards(count: number): string[] {
  checkPartCount("shard count", count);
  return splitKeyRange(FULL_RANGE, count).map(formatKeyRange);
}

/**
 * Parses a shard set and checks that it partitions the full key range: no
 * duplicate names (after lowercasing, with "" and "-" the same), and, once
 * sorted by start, the first starts at the lowest key, each ends exactly where
 * the next starts, and the last is open-ended. Throws INVALID_ARGUMENT naming
 * the offending shards. Returns the ranges sorted by start.
 */
export function validateShardSet(specs: readonly string[]): KeyRange[] {
  if (specs.length === 0) {
    throw new VtError("INVALID_ARGUMENT", 'shard set is empty: at least one shard (e.g. "-") is required');
  }
  const seen = new Set<string>();
  const shards: { readonly name: string; readonly kr: KeyRange }[] = [];
  for (const spec of specs) {
    const kr = parseKeyRange(spec);
    const name = formatKeyRange(kr);
    if (seen.has(name)) throw new VtError("INVALID_ARGUMENT", `duplicate shard ${name}`);
    seen.add(name);
    shards.push({ name, kr });
  }
  shards.sort((a, b) => {
    const c = compareKeys(a.kr.start, b.kr.start);
    if (c !== 0) return c;
    if (a.kr.end.length === 0 || b.kr.end.length === 0) {
      return (a.kr.end.length === 0 ? 1 : 0) - (b.kr.end.length === 0 ? 1 : 0);
    }
    return compareKeys(a.kr.end, b.kr.end);
  });

  const first = shards[0];
  if (first === undefined) throw new VtError("INVALID_ARGUMENT", "shard set is empty");
  if (compareKeys(first.kr.start, FULL_RANGE.start) !== 0) {
    throw new VtError("INVALID_ARGUMENT", `no shard covers the start of the range: the lowest shard is ${first.name}`);
  }
  let prev = first;
  for (let i = 1; i < shards.length; i++) {
    const cur = shards[i];
    if (cur === undefined) continue;
    const c = prev.kr.end.length === 0 ? 1 : compareKeys(prev.kr.end, cur.kr.start);
    if (c > 0) throw new VtError("INVALID_ARGUMENT", `shards ${prev.name} and ${cur.name} overlap`);
    if (c < 0) throw new VtError("INVALID_ARGUMENT", `gap between ${prev.name} and ${cur.name}`);
    prev = cur;
  }
  if (prev.kr.end.length !== 0) {
    throw new VtError("INVALID_ARGUMENT", `no shard covers the end of the range: the highest shard is ${prev.name}`);
  }
  return shards.map((s) => s.kr);
}
