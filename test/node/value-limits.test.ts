// The value-limit check on results measures TEXT as SQLite stores it: in UTF-8 bytes.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkResultValues, MAX_VALUE_BYTES, overValueLimit, utf8Length } from "../../topology/value-limits.ts";

describe("value limit on results", () => {
  it("utf8Length is TextEncoder's byte count for every string, lone surrogates included", () => {
    // Invariant: the limit is checked on the same byte count SQLite stores, never on UTF-16 units.
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => utf8Length(s) === new TextEncoder().encode(s).length),
      { numRuns: 2000 },
    );
  });

  it("the limit falls exactly at 2,000,000 bytes for 1-, 2-, 3- and 4-byte characters", () => {
    for (const [ch, bytes] of [
      ["a", 1],
      ["é", 2],
      ["€", 3],
      ["😀", 4],
    ] as const) {
      const n = Math.floor(MAX_VALUE_BYTES / bytes);
      const exact = ch.repeat(n) + "a".repeat(MAX_VALUE_BYTES - n * bytes);
      expect([ch, overValueLimit(exact)]).toEqual([ch, false]);
      expect([ch, overValueLimit(`${exact}a`)]).toEqual([ch, true]);
    }
    expect(overValueLimit(new Uint8Array(MAX_VALUE_BYTES))).toBe(false);
    expect(overValueLimit(new Uint8Array(MAX_VALUE_BYTES + 1))).toBe(true);
    expect(overValueLimit(2n ** 62n)).toBe(false);
  });

  it("checkResultValues refuses a row holding a value over the limit with INVALID_ARGUMENT and the limit", () => {
    expect(() =>
      checkResultValues(
        [
          [1, "x"],
          [2, "é".repeat(1_000_001)],
        ],
        ["id", "t"],
      ),
    ).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT", limit: MAX_VALUE_BYTES }));
    expect(() => checkResultValues([[1, "é".repeat(1_000_000)]], ["id"])).not.toThrow();
  });
});
