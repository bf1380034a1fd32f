import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { xxhash64, xxhash64Bytes } from "./xxhash64.ts";
import { createVindex, ksidToHex, registerVindex, vindexTypes } from "./vindex.ts";
import type { SqlValue, Vindex } from "./vindex.ts";
import { VtError } from "../contract/errors.ts";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function expectInvalid(fn: () => unknown, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(VtError);
  if (!(caught instanceof VtError)) return;
  expect(caught.code).toBe("INVALID_ARGUMENT");
  if (message) expect(caught.message).toMatch(message);
}

// Straightforward BigInt XXH64 following the spec, as an independent reference.
const M64 = (1n << 64n) - 1n;
const R1 = 0x9e3779b185ebca87n;
const R2 = 0xc2b2ae3d27d4eb4fn;
const R3 = 0x165667b19e3779f9n;
const R4 = 0x85ebca77c2b2ae63n;
const R5 = 0x27d4eb2f165667c5n;
const rotl64 = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M64;
const refRound = (acc: bigint, input: bigint): bigint => (rotl64((acc + input * R2) & M64, 31n) * R1) & M64;
const refMerge = (acc: bigint, val: bigint): bigint => ((acc ^ refRound(0n, val)) * R1 + R4) & M64;
function readLE(data: Uint8Array, p: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[p + i] ?? 0);
  return v;
}
function refXxh64(data: Uint8Array, seed = 0n): bigint {
  const len = data.length;
  let p = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = (seed + R1 + R2) & M64;
    let v2 = (seed + R2) & M64;
    let v3 = seed & M64;
    let v4 = (seed - R1) & M64;
    for (; p + 32 <= len; p += 32) {
      v1 = refRound(v1, readLE(data, p, 8));
      v2 = refRound(v2, readLE(data, p + 8, 8));
      v3 = refRound(v3, readLE(data, p + 16, 8));
      v4 = refRound(v4, readLE(data, p + 24, 8));
    }
    h = (rotl64(v1, 1n) + rotl64(v2, 7n) + rotl64(v3, 12n) + rotl64(v4, 18n)) & M64;
    h = refMerge(h, v1);
    h = refMerge(h, v2);
    h = refMerge(h, v3);
    h = refMerge(h, v4);
  } else {
    h = (seed + R5) & M64;
  }
  h = (h + BigInt(len)) & M64;
  for (; p + 8 <= len; p += 8) h = (rotl64(h ^ refRound(0n, readLE(data, p, 8)), 27n) * R1 + R4) & M64;
  if (p + 4 <= len) {
    h = (rotl64(h ^ ((readLE(data, p, 4) * R1) & M64), 23n) * R2 + R3) & M64;
    p += 4;
  }
  for (; p < len; p++) h = (rotl64(h ^ ((BigInt(data[p] ?? 0) * R5) & M64), 11n) * R1) & M64;
  h ^= h >> 33n;
  h = (h * R2) & M64;
  h ^= h >> 29n;
  h = (h * R3) & M64;
  h ^= h >> 32n;
  return h;
}

const hex64 = (v: bigint): string => v.toString(16).padStart(16, "0");

describe("xxhash64", () => {
  it.each([
    ["", 0xef46db3751d8e999n],
    ["a", 0xd24ec4f1a98c6e5bn],
    ["abc", 0x44bc2cf5ad770999n],
    ["Nobody inspects the spammish repetition", 0xfbcea83c8a378bf1n],
  ])("known vector %j", (s, want) => {
    expect(xxhash64(utf8(s))).toBe(want);
    expect(refXxh64(utf8(s))).toBe(want);
    expect(ksidToHex(xxhash64Bytes(utf8(s)))).toBe(hex64(want));
  });

  it("matches the BigInt reference for lengths 0..100", () => {
    const buf = new Uint8Array(100);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 167 + 13) & 0xff;
    for (let len = 0; len <= 100; len++) {
      const data = buf.subarray(0, len);
      expect(hex64(xxhash64(data))).toBe(hex64(refXxh64(data)));
    }
  });

  it("hashes a subarray by its own bytes (byteOffset honoured)", () => {
    const whole = utf8("xxabcxx");
    expect(xxhash64(whole.subarray(2, 5))).toBe(0x44bc2cf5ad770999n);
  });

  it("matches the BigInt reference for random data and seeds (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.bigInt({ min: 0n, max: M64 }), (data, seed) => {
        expect(xxhash64(data, seed)).toBe(refXxh64(data, seed));
        expect(ksidToHex(xxhash64Bytes(data, seed))).toBe(hex64(refXxh64(data, seed)));
      }),
      { numRuns: 300 },
    );
  });

  it("reduces seeds modulo 2^64", () => {
    const data = utf8("abc");
    expect(xxhash64(data, -1n)).toBe(refXxh64(data, M64));
    expect(xxhash64(data, 1n << 64n)).toBe(xxhash64(data));
  });
});

const int64BE = (v: bigint): Uint8Array => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return out;
};

describe("vindex registry", () => {
  it("lists the built-in types", () => {
    expect(vindexTypes()).toEqual([
      "binary",
      "consistent_lookup",
      "consistent_lookup_unique",
      "lookup",
      "lookup_unique",
      "numeric",
      "unicode_loose_xxhash",
      "xxhash",
    ]);
  });

  it.each([
    ["xxhash", 1],
    ["numeric", 0],
    ["binary", 0],
    ["unicode_loose_xxhash", 1],
  ])("%s is unique with cost %i", (type, cost) => {
    const v = createVindex(type);
    expect(v.type).toBe(type);
    expect(v.unique).toBe(true);
    expect(v.cost).toBe(cost);
  });

  it("rejects unknown types, listing the known ones", () => {
    expectInvalid(() => createVindex("hash_md5"), /unknown vindex type "hash_md5".*binary, consistent_lookup, .*numeric, unicode_loose_xxhash, xxhash/);
  });

  it("rejects params the type does not take", () => {
    expectInvalid(() => createVindex("xxhash", { table: "t" }), /takes no params.*table/);
    expect(createVindex("xxhash", {}).type).toBe("xxhash");
  });

  it("registers new types and refuses duplicates", () => {
    const factory = (type: string): Vindex => ({ type, unique: false, cost: 5, map: () => new Uint8Array(8) });
    registerVindex("test_constant", factory);
    expect(vindexTypes()).toContain("test_constant");
    expect(createVindex("test_constant").cost).toBe(5);
    expectInvalid(() => registerVindex("xxhash", factory), /already registered/);
  });
});

describe("xxhash vindex", () => {
  const v = createVindex("xxhash");

  it("hashes text and blobs by their bytes", () => {
    expect(ksidToHex(v.map(utf8("abc")))).toBe("44bc2cf5ad770999");
    expect(ksidToHex(v.map("abc"))).toBe("44bc2cf5ad770999");
    expect(ksidToHex(v.map(""))).toBe("ef46db3751d8e999");
    expect(ksidToHex(v.map("a"))).toBe("d24ec4f1a98c6e5b");
    expect(ksidToHex(v.map("Nobody inspects the spammish repetition"))).toBe("fbcea83c8a378bf1");
  });

  it("hashes integers as 8-byte big-endian int64", () => {
    for (const n of [0n, 1n, -1n, 42n, 1n << 40n, -(1n << 63n), (1n << 63n) - 1n]) {
      expect(ksidToHex(v.map(n))).toBe(hex64(refXxh64(int64BE(n))));
    }
    expect(ksidToHex(v.map(1))).toBe(ksidToHex(v.map(1n)));
  });

  it("keeps pinned keyspace ids (stored data depends on them)", () => {
    expect(ksidToHex(v.map(0))).toBe("34c96acdcadb1bbb"); // XXH64 of 8 zero bytes
    expect(ksidToHex(v.map(1))).toBe("9f1ffc793b8a47da");
    expect(ksidToHex(v.map(42))).toBe("a2c396223f8bdbdf");
    expect(ksidToHex(v.map(-1))).toBe("85d136adb773c6c9");
  });

  it("maps number, bigint and integer text the same", () => {
    const cases: readonly (readonly SqlValue[])[] = [
      [42, 42n, "42", "+42", "0042"],
      [-7, -7n, "-7"],
      [0, -0, 0n, "0", "-0"],
      [Number.MAX_SAFE_INTEGER, BigInt(Number.MAX_SAFE_INTEGER), String(Number.MAX_SAFE_INTEGER)],
      [(1n << 63n) - 1n, "9223372036854775807"],
      [-(1n << 63n), "-9223372036854775808"],
    ];
    for (const group of cases) {
      const want = ksidToHex(v.map(group[0] ?? null));
      for (const value of group) expect(ksidToHex(v.map(value))).toBe(want);
    }
  });

  it("is deterministic and 8 bytes long (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), fc.uint8Array()), (value) => {
        const a = v.map(value);
        expect(a).toHaveLength(8);
        expect(ksidToHex(v.map(value))).toBe(ksidToHex(a));
      }),
    );
  });

  it("treats digit strings outside int64 as text, and non-integer text as text", () => {
    expect(ksidToHex(v.map("9223372036854775808"))).toBe(hex64(refXxh64(utf8("9223372036854775808"))));
    expect(ksidToHex(v.map(" 42"))).toBe(hex64(refXxh64(utf8(" 42"))));
    expect(ksidToHex(v.map("4.2"))).toBe(hex64(refXxh64(utf8("4.2"))));
  });

  it("does not confuse a blob of digits with the integer", () => {
    expect(ksidToHex(v.map(utf8("42")))).not.toBe(ksidToHex(v.map(42)));
  });

  it("spreads sequential integers evenly over two shards", () => {
    let low = 0;
    const total = 10_000;
    for (let i = 1; i <= total; i++) {
      if ((v.map(i)[0] ?? 0) < 0x80) low++;
    }
    expect(low / total).toBeGreaterThan(0.45);
    expect(low / total).toBeLessThan(0.55);
  });

  it.each([
    [null, /NULL/],
    [1.5, /not an integer/],
    [Number.NaN, /not an integer/],
    [Number.POSITIVE_INFINITY, /not an integer/],
    [2 ** 63, /int64/],
    [1n << 63n, /int64/],
    [-(1n << 63n) - 1n, /int64/],
  ])("rejects %s", (value, message) => {
    expectInvalid(() => v.map(value), message);
  });
});

describe("numeric vindex", () => {
  const v = createVindex("numeric");

  it.each([
    [1, "0000000000000001"],
    [1n, "0000000000000001"],
    ["1", "0000000000000001"],
    [0, "0000000000000000"],
    [-1, "ffffffffffffffff"],
    [-1n, "ffffffffffffffff"],
    [256, "0000000000000100"],
    [0x0123456789abcdefn, "0123456789abcdef"],
    [(1n << 63n) - 1n, "7fffffffffffffff"],
    [-(1n << 63n), "8000000000000000"],
    ["-9223372036854775808", "8000000000000000"],
  ])("maps %s to %s", (value, want) => {
    expect(ksidToHex(v.map(value))).toBe(want);
  });

  it.each([
    [null, /NULL/],
    [2.5, /not an integer/],
    [1n << 63n, /int64/],
    ["abc", /only integers/],
    ["9223372036854775808", /only integers/],
    [new Uint8Array([1]), /only integers/],
  ])("rejects %s", (value, message) => {
    expectInvalid(() => v.map(value), message);
  });
});

describe("binary vindex", () => {
  const v = createVindex("binary");

  it.each([
    ["abc", "616263"],
    ["", ""],
    [new Uint8Array([0, 255, 16]), "00ff10"],
    [42, "3432"],
    [42n, "3432"],
    [-5, "2d35"],
    ["é", "c3a9"],
  ])("maps %s to %s", (value, want) => {
    expect(ksidToHex(v.map(value))).toBe(want);
  });

  it("returns a copy of blob input", () => {
    const blob = new Uint8Array([1, 2, 3]);
    const ksid = v.map(blob);
    blob[0] = 9;
    expect(ksidToHex(ksid)).toBe("010203");
  });

  it.each([
    [null, /NULL/],
    [0.5, /not an integer/],
  ])("rejects %s", (value, message) => {
    expectInvalid(() => v.map(value), message);
  });
});

describe("unicode_loose_xxhash vindex", () => {
  const v = createVindex("unicode_loose_xxhash");
  const loose = (value: SqlValue): string => ksidToHex(v.map(value));

  it("hashes the loosened text with XXH64", () => {
    expect(loose("abc")).toBe("44bc2cf5ad770999");
    expect(loose("a")).toBe("d24ec4f1a98c6e5b");
    expect(loose("")).toBe("ef46db3751d8e999");
    expect(loose("Café")).toBe("92b365f44cc6f173");
  });

  it.each([
    ["abc", "ABC"],
    ["abc", "AbC"],
    ["abc", "abc   "],
    ["abc", "Àbç"],
    ["abc", utf8("ABC")],
    ["cafe", "Café"],
    ["cafe", "cafe\u0301"],
    ["fi", "\ufb01"],
    ["42", 42],
    ["42", 42n],
    ["a b", "A\u00a0B"],
  ])("%s loosely equals %s", (a, b) => {
    expect(loose(b)).toBe(loose(a));
  });

  it.each([
    ["abc", " abc"],
    ["abc", "ab c"],
    ["abc", "abd"],
  ])("%j differs from %j", (a, b) => {
    expect(loose(b)).not.toBe(loose(a));
  });

  it.each([
    [null, /NULL/],
    [1.25, /not an integer/],
    [new Uint8Array([0xff, 0xfe]), /UTF-8/],
  ])("rejects %s", (value, message) => {
    expectInvalid(() => v.map(value), message);
  });
});

describe("ksidToHex", () => {
  it("is lowercase two digits per byte", () => {
    expect(ksidToHex(new Uint8Array([0, 1, 0xab, 0xff]))).toBe("0001abff");
    expect(ksidToHex(new Uint8Array(0))).toBe("");
  });
});
