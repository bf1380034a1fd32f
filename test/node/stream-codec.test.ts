// The stream codec under Node too (msgpackr's Node build, which may decode natively): a unit
// comes back exact, BLOBs and copy keys as plain Uint8Arrays (not Buffers), 1.0 apart from 1.

import { describe, expect, it } from "vitest";
import type { StreamUnit } from "../../contract/stream-rpc.ts";
import { joinParts, unitParts } from "../../tablet/stream-codec.ts";

describe("stream unit codec in Node", () => {
  it("joins back the exact unit, BLOBs and copy keys as plain Uint8Arrays", () => {
    const blob = new Uint8Array(300_000).map((_, i) => i & 0xff);
    const u: StreamUnit = {
      from: { seq: 7, copy: { table: 1, after: [new Uint8Array([1, 2]), 2n ** 62n] } },
      to: { seq: 9, copy: { table: 2, after: null } },
      items: [{ table: "t", columns: ["a", "b", "c", "d"], before: [1, { real: 1 }, -(2n ** 63n), blob], after: null }, { ddl: "ALTER TABLE t ADD e" }],
      rows: [{ table: "t", columns: ["a", "b"], before: null, after: [0.5, "é"] }],
      lastCommitTs: 1_700_000_000_000,
      headSeq: 9,
    };
    const back = joinParts(unitParts(u).reverse());
    expect(back).toEqual(u);
    const before = back.items[0] && "before" in back.items[0] ? back.items[0].before : null;
    expect(before?.[3]?.constructor).toBe(Uint8Array);
    expect(back.from.copy?.after?.[0]?.constructor).toBe(Uint8Array);
  });
});
