// A stream unit as queue payloads: msgpackr bytes, split into parts a Queue message holds.
//
// Values stay exact through MessagePack's own types: an integer beyond 2^53 is a bigint (int64,
// read back as a bigint), an integral REAL the contract's `{real: n}` map, any other number an
// integer or a float64, a BLOB binary (read back as a plain Uint8Array, copied out of the
// message: copyBuffers), TEXT a string.
// msgpackr runs without eval or new Function (Workers refuse both): records are off, so objects
// are plain maps, and no other extension is used.
//
// A unit of any size travels: its bytes are cut into parts of at most MAX_PART_BYTES (a Queue
// message holds 128 KB), each naming the encoding it belongs to, and joined back in order. A
// source that reads the same position twice may answer two different units; their parts never
// mix, because each encoding has its own id.

import { Packr } from "msgpackr";
import { VtError } from "../contract/errors.ts";
import type { StreamUnit } from "../contract/stream-rpc.ts";

/** The most bytes of a unit one part carries (under the 128 KB of a Queue message, with room for the rest). */
export const MAX_PART_BYTES = 96 * 1024;

/** One piece of an encoded unit. */
export interface UnitPart {
  /** The encoding's id: every part of one encoding carries it, parts of another never do. */
  readonly id: string;
  /** 0-based position of this part; `count` parts make the unit. */
  readonly index: number;
  readonly count: number;
  readonly bytes: Uint8Array;
}

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,

  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  int64AsType: "bigint",
  copyBuffers: true,
});

/** The unit as msgpackr bytes (a copy of msgpackr's reused buffer). */
export function encodeUnit(unit: StreamUnit): Uint8Array {
  return new Uint8Array(packr.pack(unit));
}

/** A unit from encodeUnit's bytes; INTERNAL when they do not hold one. */
export function decodeUnit(bytes: Uint8Array): StreamUnit {
  let u: unknown;
  try {
    u = packr.unpack(bytes);
  } catch (e) {
    throw new VtError("INTERNAL", `a stream unit's bytes do not decode: ${e instanceof Error ? e.message : String(e)}`);
  }
  const unit = u as StreamUnit;
  if (
    typeof u !== "object" ||
    u === null ||
    !Array.isArray(unit.items) ||
    !Array.isArray(unit.rows) ||
    typeof unit.from !== "object" ||
    typeof unit.to !== "object"
  ) {
    throw new VtError("INTERNAL", "a stream unit's bytes hold something other than a unit");
  }
  return unit;
}

function randomId(): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The unit encoded and cut into parts of at most `maxPartBytes` bytes each (at least one part). */
export function unitParts(unit: StreamUnit, maxPartBytes: number = MAX_PART_BYTES): UnitPart[] {
  if (!Number.isSafeInteger(maxPartBytes) || maxPartBytes < 1) throw new VtError("INVALID_ARGUMENT", "a part holds at least one byte");
  const bytes = encodeUnit(unit);
  const id = randomId();
  const count = Math.max(1, Math.ceil(bytes.length / maxPartBytes));
  const parts: UnitPart[] = [];
  // slice, not subarray: a view would carry the whole encoding's buffer into every message.
  for (let i = 0; i < count; i++) parts.push({ id, index: i, count, bytes: bytes.slice(i * maxPartBytes, (i + 1) * maxPartBytes) });
  return parts;
}

/**
 * The unit `parts` make, in any order (a part given twice counts once). INVALID_ARGUMENT when
 * they are not every part of one encoding.
 */
export function joinParts(parts: readonly UnitPart[]): StreamUnit {
  const first = parts[0];
  if (!first) throw new VtError("INVALID_ARGUMENT", "no parts to join");
  const byIndex = new Map<number, Uint8Array>();
  for (const p of parts) {
    if (p.id !== first.id || p.count !== first.count) throw new VtError("INVALID_ARGUMENT", `parts of two encodings (${first.id}, ${p.id}) cannot be joined`);
    if (!Number.isSafeInteger(p.index) || p.index < 0 || p.index >= p.count)
      throw new VtError("INVALID_ARGUMENT", `part ${p.index} of ${p.count} is out of range`);
    byIndex.set(p.index, p.bytes);
  }
  if (byIndex.size !== first.count) throw new VtError("INVALID_ARGUMENT", `${byIndex.size} of the ${first.count} parts of ${first.id} are here`);
  let length = 0;
  for (const b of byIndex.values()) length += b.length;
  const bytes = new Uint8Array(length);
  let at = 0;
  for (let i = 0; i < first.count; i++) {
    const b = byIndex.get(i) ?? new Uint8Array(0);
    bytes.set(b, at);
    at += b.length;
  }
  return decodeUnit(bytes);
}
