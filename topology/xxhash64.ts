// XXH64 (https://github.com/Cyan4973/xxHash, spec: doc/xxhash_spec.md) in plain
// TypeScript. 64-bit lanes are held as two unsigned 32-bit halves (hi, lo) so the
// hot path uses only Number arithmetic; BigInt appears only at the API boundary.
//
// Contract: xxhash64(data, seed) equals the reference XXH64(data, len, seed) for
// every input and every 64-bit seed (the seed is taken modulo 2^64).

// Primes as [hi, lo] halves.
const P1_HI = 0x9e3779b1,
  P1_LO = 0x85ebca87;
const P2_HI = 0xc2b2ae3d,
  P2_LO = 0x27d4eb4f;
const P3_HI = 0x165667b1,
  P3_LO = 0x9e3779f9;
const P4_HI = 0x85ebca77,
  P4_LO = 0xc2b2ae63;
const P5_HI = 0x27d4eb2f,
  P5_LO = 0x165667c5;
// 2^64 - P1, so that seed - P1 is an addition.
const NEG_P1_HI = 0x61c8864e,
  NEG_P1_LO = 0x7a143579;

// Result registers of the 64-bit helpers below. Every helper reads only its
// arguments and writes both registers, so `f(rHi, rLo, ...)` chains are safe.
let rHi = 0;
let rLo = 0;

/** (a * b) mod 2^64. */
function mul(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const a0 = aLo & 0xffff;
  const a1 = aLo >>> 16;
  const b0 = bLo & 0xffff;
  const b1 = bLo >>> 16;
  const t = a0 * b0;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  // All intermediate values stay below 2^53, so Number arithmetic is exact.
  const cross = (t >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  rLo = ((cross & 0xffff) * 0x10000 + (t & 0xffff)) >>> 0;
  const hi = a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + (cross >>> 16);
  rHi = (hi + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
}

/** (a + b) mod 2^64. */
function add(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = aLo + bLo;
  rLo = lo >>> 0;
  rHi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** Rotate left by r, 0 < r < 32 (XXH64 never rotates by 32 or more). */
function rotl(hi: number, lo: number, r: number): void {
  rHi = ((hi << r) | (lo >>> (32 - r))) >>> 0;
  rLo = ((lo << r) | (hi >>> (32 - r))) >>> 0;
}

/** XXH64_round: rotl(acc + input * P2, 31) * P1. */
function round(accHi: number, accLo: number, inHi: number, inLo: number): void {
  mul(inHi, inLo, P2_HI, P2_LO);
  add(accHi, accLo, rHi, rLo);
  rotl(rHi, rLo, 31);
  mul(rHi, rLo, P1_HI, P1_LO);
}

/** XXH64_mergeRound: (acc ^ round(0, val)) * P1 + P4. */
function mergeRound(accHi: number, accLo: number, valHi: number, valLo: number): void {
  round(0, 0, valHi, valLo);
  mul((accHi ^ rHi) >>> 0, (accLo ^ rLo) >>> 0, P1_HI, P1_LO);
  add(rHi, rLo, P4_HI, P4_LO);
}

/** Little-endian uint32 at p (p + 4 <= data.length). Indexed reads, not a DataView: on small on-heap typed arrays `.buffer` is costly. */
function u32(data: Uint8Array, p: number): number {
  return ((data[p] ?? 0) | ((data[p + 1] ?? 0) << 8) | ((data[p + 2] ?? 0) << 16) | ((data[p + 3] ?? 0) << 24)) >>> 0;
}

/** Hash into the result registers. */
function hashInto(data: Uint8Array, seedHi: number, seedLo: number): void {
  const len = data.length;
  let p = 0;
  let hHi: number;
  let hLo: number;

  if (len >= 32) {
    add(seedHi, seedLo, P1_HI, P1_LO);
    add(rHi, rLo, P2_HI, P2_LO);
    let v1Hi = rHi,
      v1Lo = rLo;
    add(seedHi, seedLo, P2_HI, P2_LO);
    let v2Hi = rHi,
      v2Lo = rLo;
    let v3Hi = seedHi,
      v3Lo = seedLo;
    add(seedHi, seedLo, NEG_P1_HI, NEG_P1_LO);
    let v4Hi = rHi,
      v4Lo = rLo;

    const limit = len - 32;
    while (p <= limit) {
      round(v1Hi, v1Lo, u32(data, p + 4), u32(data, p));
      v1Hi = rHi;
      v1Lo = rLo;
      round(v2Hi, v2Lo, u32(data, p + 12), u32(data, p + 8));
      v2Hi = rHi;
      v2Lo = rLo;
      round(v3Hi, v3Lo, u32(data, p + 20), u32(data, p + 16));
      v3Hi = rHi;
      v3Lo = rLo;
      round(v4Hi, v4Lo, u32(data, p + 28), u32(data, p + 24));
      v4Hi = rHi;
      v4Lo = rLo;
      p += 32;
    }

    rotl(v1Hi, v1Lo, 1);
    hHi = rHi;
    hLo = rLo;
    rotl(v2Hi, v2Lo, 7);
    add(hHi, hLo, rHi, rLo);
    hHi = rHi;
    hLo = rLo;
    rotl(v3Hi, v3Lo, 12);
    add(hHi, hLo, rHi, rLo);
    hHi = rHi;
    hLo = rLo;
    rotl(v4Hi, v4Lo, 18);
    add(hHi, hLo, rHi, rLo);

    mergeRound(rHi, rLo, v1Hi, v1Lo);
    mergeRound(rHi, rLo, v2Hi, v2Lo);
    mergeRound(rHi, rLo, v3Hi, v3Lo);
    mergeRound(rHi, rLo, v4Hi, v4Lo);
    hHi = rHi;
    hLo = rLo;
  } else {
    add(seedHi, seedLo, P5_HI, P5_LO);
    hHi = rHi;
    hLo = rLo;
  }

  // h += len (len < 2^53, split into halves)
  add(hHi, hLo, Math.floor(len / 0x100000000) >>> 0, len >>> 0);
  hHi = rHi;
  hLo = rLo;

  while (p + 8 <= len) {
    round(0, 0, u32(data, p + 4), u32(data, p));
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 27);
    mul(rHi, rLo, P1_HI, P1_LO);
    add(rHi, rLo, P4_HI, P4_LO);
    hHi = rHi;
    hLo = rLo;
    p += 8;
  }

  if (p + 4 <= len) {
    mul(0, u32(data, p), P1_HI, P1_LO);
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 23);
    mul(rHi, rLo, P2_HI, P2_LO);
    add(rHi, rLo, P3_HI, P3_LO);
    hHi = rHi;
    hLo = rLo;
    p += 4;
  }

  while (p < len) {
    mul(0, data[p] ?? 0, P5_HI, P5_LO);
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 11);
    mul(rHi, rLo, P1_HI, P1_LO);
    hHi = rHi;
    hLo = rLo;
    p += 1;
  }

  // Avalanche.
  hLo = (hLo ^ (hHi >>> 1)) >>> 0; // h ^= h >> 33
  mul(hHi, hLo, P2_HI, P2_LO);
  hHi = rHi;
  hLo = (rLo ^ ((rLo >>> 29) | (rHi << 3))) >>> 0; // h ^= h >> 29
  hHi = (hHi ^ (hHi >>> 29)) >>> 0;
  mul(hHi, hLo, P3_HI, P3_LO);
  rLo = (rLo ^ rHi) >>> 0; // h ^= h >> 32
}

function splitSeed(seed: bigint): readonly [hi: number, lo: number] {
  const s = BigInt.asUintN(64, seed);
  return [Number(s >> 32n), Number(s & 0xffffffffn)];
}

/** XXH64 of `data` with `seed` (default 0; taken modulo 2^64), as an unsigned 64-bit bigint. */
export function xxhash64(data: Uint8Array, seed: bigint = 0n): bigint {
  const [seedHi, seedLo] = seed === 0n ? [0, 0] : splitSeed(seed);
  hashInto(data, seedHi, seedLo);
  return (BigInt(rHi) << 32n) | BigInt(rLo);
}

/**
 * XXH64 of `data` with `seed` as 8 big-endian bytes (the canonical XXH64 digest
 * form, and the keyspace id of Vitess's xxhash vindex). Avoids BigInt on the
 * default-seed path.
 */
export function xxhash64Bytes(data: Uint8Array, seed: bigint = 0n): Uint8Array {
  const [seedHi, seedLo] = seed === 0n ? [0, 0] : splitSeed(seed);
  hashInto(data, seedHi, seedLo);
  const out = new Uint8Array(8);
  out[0] = rHi >>> 24;
  out[1] = rHi >>> 16;
  out[2] = rHi >>> 8;
  out[3] = rHi;
  out[4] = rLo >>> 24;
  out[5] = rLo >>> 16;
  out[6] = rLo >>> 8;
  out[7] = rLo;
  return out;
}
