import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  FULL_RANGE,
  bytesToHex,
  compareKeys,
  evenShards,
  formatKeyRange,
  hexToBytes,
  keyRangeContains,
  keyRangeEqual,
  keyRangesIntersect,
  parseKeyRange,
  splitKeyRange,
  validateShardSet,
} from "./keyrange.ts";
import { VtError } from "../contract/errors.ts";

const kr = parseKeyRange;
const hex = hexToBytes;

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

describe("parseKeyRange / formatKeyRange", () => {
  it.each([
    ["-", "", "", "-"],
    ["", "", "", "-"],
    ["-80", "", "80", "-80"],
    ["80-", "80", "", "80-"],
    ["40-80", "40", "80", "40-80"],
    ["C0-", "c0", "", "c0-"],
    ["aB-Cd", "ab", "cd", "ab-cd"],
    ["4000-8000", "4000", "8000", "4000-8000"],
    ["00-80", "00", "80", "00-80"],
    ["-0001", "", "0001", "-0001"],
    ["80-8001", "80", "8001", "80-8001"],
  ])("parses %j", (spec, start, end, formatted) => {
    const r = kr(spec);
    expect(bytesToHex(r.start)).toBe(start);
    expect(bytesToHex(r.end)).toBe(end);
    expect(formatKeyRange(r)).toBe(formatted);
    expect(formatKeyRange(kr(formatted))).toBe(formatted);
  });

  it.each([
    ["zz", /zz/],
    ["80", /expected/],
    ["8-", /odd number/],
    ["-800", /odd number/],
    ["g0-", /only 0-9/],
    ["80-40", /start must be below end/],
    ["80-80", /start must be below end/],
    ["80-8000", /start must be below end/],
    ["-00", /start must be below end/],
    ["1-2-3", /expected/],
    ["--", /expected/],
    [" -80", /only 0-9/],
  ])("rejects %j", (spec, message) => {
    expectInvalid(() => kr(spec), message);
  });

  it("FULL_RANGE is the range of '-'", () => {
    expect(formatKeyRange(FULL_RANGE)).toBe("-");
    expect(keyRangeEqual(FULL_RANGE, kr(""))).toBe(true);
  });
});

describe("hex helpers", () => {
  it("round-trip and reject bad input", () => {
    expect(bytesToHex(hex("00ff10Ab"))).toBe("00ff10ab");
    expect(hex("").length).toBe(0);
    expectInvalid(() => hex("abc"), /odd/);
    expectInvalid(() => hex("0x"), /only 0-9/);
  });
});

describe("compareKeys (zero-padded bytewise)", () => {
  it.each([
    ["", "", 0],
    ["", "00", 0],
    ["80", "8000", 0],
    ["8000", "80", 0],
    ["80", "8001", -1],
    ["8001", "80", 1],
    ["7f", "80", -1],
    ["7fffffffffffffff", "80", -1],
    ["ff", "fe", 1],
    ["", "01", -1],
  ])("compare(%j, %j) has sign %i", (a, b, sign) => {
    expect(Math.sign(compareKeys(hex(a), hex(b)))).toBe(sign);
  });
});

describe("keyRangeContains", () => {
  it.each([
    ["-", "", true],
    ["-", "00", true],
    ["-", "ffffffffffffffff", true],
    ["-80", "0000000000000000", true],
    ["-80", "7fffffffffffffff", true],
    ["-80", "8000000000000000", false],
    ["-80", "80", false],
    ["80-", "8000000000000000", true],
    ["80-", "80", true],
    ["80-", "7fffffffffffffff", false],
    ["80-", "ffffffffffffffff", true],
    ["40-80", "3fffffffffffffff", false],
    ["40-80", "4000000000000000", true],
    ["40-80", "40", true],
    ["40-80", "7fffffffffffffff", true],
    ["40-80", "8000000000000000", false],
    ["4000-8000", "40", true],
    ["40-80", "", false],
    ["-40", "", true],
  ])("%j contains %j: %s", (spec, ksid, want) => {
    expect(keyRangeContains(kr(spec), hex(ksid))).toBe(want);
  });
});

describe("keyRangesIntersect", () => {
  it.each([
    ["-", "-", true],
    ["-", "40-80", true],
    ["-80", "80-", false],
    ["-80", "40-", true],
    ["-40", "40-80", false],
    ["40-80", "-40", false],
    ["40-80", "60-c0", true],
    ["40-80", "50-60", true],
    ["40-80", "80-c0", false],
    ["40-80", "8000-c0", false],
    ["40-8001", "80-c0", true],
    ["c0-", "80-", true],
    ["c0-", "-c0", false],
  ])("%j and %j intersect: %s", (a, b, want) => {
    expect(keyRangesIntersect(kr(a), kr(b))).toBe(want);
    expect(keyRangesIntersect(kr(b), kr(a))).toBe(want);
  });
});

describe("keyRangeEqual", () => {
  it.each([
    ["-", "", true],
    ["-80", "-80", true],
    ["80-", "8000-", true],
    ["-80", "00-8000", true],
    ["40-80", "40-c0", false],
    ["80-", "80-ff", false],
    ["-80", "40-80", false],
  ])("%j == %j: %s", (a, b, want) => {
    expect(keyRangeEqual(kr(a), kr(b))).toBe(want);
    expect(keyRangeEqual(kr(b), kr(a))).toBe(want);
  });
});

describe("evenShards", () => {
  it.each([
    [1, ["-"]],
    [2, ["-80", "80-"]],
    [3, ["-55", "55-aa", "aa-"]],
    [4, ["-40", "40-80", "80-c0", "c0-"]],
    [8, ["-20", "20-40", "40-60", "60-80", "80-a0", "a0-c0", "c0-e0", "e0-"]],
  ])("evenShards(%i)", (n, want) => {
    expect(evenShards(n)).toEqual(want);
  });

  it("uses one byte up to 256 shards and two bytes beyond", () => {
    const s256 = evenShards(256);
    expect(s256).toHaveLength(256);
    expect(s256[0]).toBe("-01");
    expect(s256[1]).toBe("01-02");
    expect(s256[255]).toBe("ff-");
    const s257 = evenShards(257);
    expect(s257).toHaveLength(257);
    expect(s257[0]).toBe("-00ff");
    expect(s257[256]).toMatch(/^[0-9a-f]{4}-$/);
    const s65536 = evenShards(65536);
    expect(s65536).toHaveLength(65536);
    expect(s65536[1]).toBe("0001-0002");
    expect(s65536[65535]).toBe("ffff-");
  });

  it.each([0, -1, 1.5, 65537, Number.NaN, Number.POSITIVE_INFINITY])("rejects %s", (n) => {
    expectInvalid(() => evenShards(n), /shard count/);
  });

  it("produces valid shard sets", () => {
    for (const n of [1, 2, 3, 5, 7, 16, 100, 255, 256, 257, 1000, 4096]) {
      expect(validateShardSet(evenShards(n))).toHaveLength(n);
    }
  });
});

describe("splitKeyRange", () => {
  it.each([
    ["-", 2, ["-80", "80-"]],
    ["-", 3, ["-55", "55-aa", "aa-"]],
    ["-80", 2, ["-40", "40-80"]],
    ["80-", 2, ["80-c0", "c0-"]],
    ["40-80", 4, ["40-50", "50-60", "60-70", "70-80"]],
    ["40-80", 3, ["40-55", "55-6a", "6a-80"]],
    ["40-80", 1, ["40-80"]],
    ["40-41", 2, ["40-4080", "4080-41"]],
    ["4000-8000", 2, ["4000-6000", "6000-8000"]],
  ])("splits %j into %i", (spec, parts, want) => {
    const got = splitKeyRange(kr(spec), parts).map(formatKeyRange);
    expect(got).toEqual(want);
  });

  it("matches evenShards on the full range", () => {
    for (const n of [1, 2, 3, 10, 256, 300]) {
      expect(splitKeyRange(FULL_RANGE, n).map(formatKeyRange)).toEqual(evenShards(n));
    }
  });

  it("rejects bad part counts and empty ranges", () => {
    expectInvalid(() => splitKeyRange(FULL_RANGE, 0), /split count/);
    expectInvalid(() => splitKeyRange(FULL_RANGE, 2.5), /split count/);
    expectInvalid(() => splitKeyRange({ start: hex("80"), end: hex("40") }, 2), /empty key range/);
  });

  it("partitions the range it splits (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 254 }), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 1, max: 600 }), (a, width, parts) => {
        const startByte = a;
        const endByte = Math.min(256, a + width);
        const range = {
          start: startByte === 0 ? new Uint8Array(0) : Uint8Array.of(startByte),
          end: endByte === 256 ? new Uint8Array(0) : Uint8Array.of(endByte),
        };
        const pieces = splitKeyRange(range, parts);
        expect(pieces).toHaveLength(parts);
        expect(keyRangeEqual({ start: pieces[0]?.start ?? hex("ff"), end: range.end }, range)).toBe(true);
        expect(compareKeys(pieces[parts - 1]?.end ?? hex("00"), range.end)).toBe(0);
        for (let i = 0; i < pieces.length; i++) {
          const p = pieces[i];
          if (p === undefined) throw new Error("missing piece");
          if (p.end.length > 0) expect(compareKeys(p.start, p.end)).toBeLessThan(0);
          const next = pieces[i + 1];
          if (next !== undefined) expect(compareKeys(p.end, next.start)).toBe(0);
        }
      }),
    );
  });
});

describe("validateShardSet", () => {
  it.each([
    [["-"], ["-"]],
    [[""], ["-"]],
    [
      ["80-", "-80"],
      ["-80", "80-"],
    ],
    [
      ["c0-", "-40", "80-c0", "40-80"],
      ["-40", "40-80", "80-c0", "c0-"],
    ],
    [
      ["-4000", "40-80", "8000-"],
      ["-4000", "40-80", "8000-"],
    ],
    [
      ["00-80", "80-"],
      ["00-80", "80-"],
    ],
    [
      ["-80", "80-C0", "c0-"],
      ["-80", "80-c0", "c0-"],
    ],
  ])("accepts %j", (specs, sorted) => {
    expect(validateShardSet(specs).map(formatKeyRange)).toEqual(sorted);
  });

  it.each([
    [[], /empty/],
    [["-80", "40-"], /shards -80 and 40- overlap/],
    [["-40", "80-"], /gap between -40 and 80-/],
    [["40-80", "80-"], /no shard covers the start of the range.*40-80/],
    [["-40", "40-80"], /no shard covers the end of the range.*40-80/],
    [["-80", "80-", "80-"], /duplicate shard 80-/],
    [["-", ""], /duplicate shard -/],
    [["-80", "80-", "80-C0"], /overlap/],
    [["-", "80-"], /shards - and 80- overlap/],
    [["-80", "-40", "80-"], /shards -40 and -80 overlap/],
    [["-80", "80-", "8000-"], /shards 80- and 8000- overlap/],
    [["-80", "zz"], /invalid/],
    [["-80", "81-"], /gap between -80 and 81-/],
  ])("rejects %j", (specs, message) => {
    expectInvalid(() => validateShardSet(specs), message);
  });
});

describe("shard sets from evenShards (property)", () => {
  it("exactly one shard contains each 8-byte ksid", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 1024 })),
        fc.array(fc.uint8Array({ minLength: 8, maxLength: 8 }), { minLength: 1, maxLength: 20 }),
        (n, ksids) => {
          const ranges = validateShardSet(evenShards(n));
          for (const ksid of ksids) {
            const owners = ranges.filter((r) => keyRangeContains(r, ksid));
            expect(owners).toHaveLength(1);
          }
        },
      ),
    );
  });

  it("boundary ksids belong to the shard that starts there", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300 }), (n) => {
        const ranges = validateShardSet(evenShards(n));
        for (const [i, r] of ranges.entries()) {
          const ksid = new Uint8Array(8);
          ksid.set(r.start);
          const owners = ranges.flatMap((o, j) => (keyRangeContains(o, ksid) ? [j] : []));
          expect(owners).toEqual([i]);
        }
      }),
      { numRuns: 30 },
    );
  });
});
