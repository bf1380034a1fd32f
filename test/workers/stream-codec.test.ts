// A unit survives the queue exactly: encoded with msgpackr inside workerd (which refuses eval and
// new Function), cut into parts of any size, delivered in any order and more than once, it joins
// back to the same unit, value for value: int64 beyond 2^53 as bigints, an integral REAL as
// {real: n} apart from the INTEGER n, BLOBs as plain Uint8Arrays, text of any code point. A 2 MB
// value, bigger than any Queue message, arrives through parts of at most 96 KB.

import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CopyCursor, RowChange, StreamItem, StreamUnit, StreamValue } from "../../contract/stream-rpc.ts";
import { joinParts, MAX_PART_BYTES, unitParts } from "../../tablet/stream-codec.ts";

const VALUE: fc.Arbitrary<StreamValue> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: -(2n ** 53n) }), fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n - 1n })),
  fc.double({ noNaN: true }).filter((d) => !Number.isInteger(d)),
  fc.oneof(fc.integer(), fc.constantFrom(0, 2 ** 60, 1e300, -(2 ** 53))).map((n) => ({ real: n })),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.uint8Array({ maxLength: 40 }),
);

const ROW: fc.Arbitrary<RowChange> = fc.record({
  table: fc.constantFrom("users", "_vtl_users__email", "ref"),
  columns: fc.constant(["a", "b", "c"]),
  before: fc.option(fc.array(VALUE, { minLength: 3, maxLength: 3 })),
  after: fc.option(fc.array(VALUE, { minLength: 3, maxLength: 3 })),
});

const ITEM: fc.Arbitrary<StreamItem> = fc.oneof({ weight: 5, arbitrary: ROW }, { weight: 1, arbitrary: fc.record({ ddl: fc.string() }) });

const KEY = fc.array(
  VALUE.map((v) => (typeof v === "object" && v !== null && "real" in v ? v.real : v)),
  { minLength: 1, maxLength: 2 },
);
const COPY: fc.Arbitrary<CopyCursor | null> = fc.option(fc.record({ table: fc.nat(5), after: fc.option(KEY) }));

const UNIT: fc.Arbitrary<StreamUnit> = fc.record({
  from: fc.record({ seq: fc.nat(), copy: COPY }),
  to: fc.record({ seq: fc.nat(), copy: COPY }),
  items: fc.array(ITEM, { maxLength: 8 }),
  rows: fc.array(
    ROW.map((r) => ({ ...r, before: null })),
    { maxLength: 8 },
  ),
  lastCommitTs: fc.option(fc.nat()),
  headSeq: fc.nat(),
});

/** The same unit with no prototype-less records (fast-check's) and arrays as they decode. */
const plain = (u: StreamUnit): StreamUnit => structuredClone(u);

describe("stream unit codec", () => {
  it("never compiles code (eval or new Function, which Workers refuse), however many units it decodes", () => {
    const calls: string[] = [];
    // Read by name, not called: the test replaces both and puts them back.
    const saved = { Function: globalThis.Function, eval: Reflect.get(globalThis, "eval") };
    // A declared function, not an arrow: `new Function(…)` must reach it, and an arrow cannot be constructed.
    const refuse = (what: string) => {
      function refused(): never {
        calls.push(what);
        throw new EvalError(`${what} is refused`);
      }
      return refused;
    };
    Object.assign(globalThis, { Function: refuse("new Function"), eval: refuse("eval") });
    try {
      const row: RowChange = { table: "t", columns: ["a"], before: null, after: [1] };
      const u: StreamUnit = {
        from: { seq: 1, copy: null },
        to: { seq: 2, copy: { table: 0, after: [1] } },
        items: Array.from({ length: 10 }, () => ({ ...row })),
        rows: Array.from({ length: 10 }, () => ({ ...row })),
        lastCommitTs: null,
        headSeq: 2,
      };
      // Far more objects of one shape than msgpackr's record reader takes before it compiles one.
      for (let i = 0; i < 20; i++) expect(joinParts(unitParts(u, 7))).toEqual(u);
    } finally {
      Object.assign(globalThis, saved);
    }
    expect(calls).toEqual([]);
  });

  it("joins parts of any size, in any order and delivered twice, into the exact unit", () => {
    fc.assert(
      fc.property(UNIT, fc.integer({ min: 1, max: 300 }), fc.infiniteStream(fc.nat()), (raw, size, shuffle) => {
        const unit = plain(raw);
        const parts = unitParts(unit, size);
        expect(parts.every((p) => p.bytes.length <= size && p.count === parts.length)).toBe(true);
        const delivered = [...parts, ...parts.slice(0, 1)];
        const it = shuffle[Symbol.iterator]();
        for (let i = delivered.length - 1; i > 0; i--) {
          const j = (it.next().value ?? 0) % (i + 1);
          [delivered[i], delivered[j]] = [delivered[j] as (typeof delivered)[number], delivered[i] as (typeof delivered)[number]];
        }
        expect(joinParts(delivered)).toEqual(unit);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps 1.0 (REAL) apart from 1 (INTEGER), and int64 and BLOBs exact", () => {
    const row: RowChange = {
      table: "t",
      columns: ["a", "b", "c", "d", "e"],
      before: null,
      after: [1, { real: 1 }, 2n ** 63n - 1n, -(2n ** 63n), new Uint8Array([0, 255])],
    };
    const u: StreamUnit = {
      from: { seq: 0, copy: { table: 0, after: null } },
      to: { seq: 3, copy: { table: 0, after: [1] } },
      items: [],
      rows: [row],
      lastCommitTs: null,
      headSeq: 3,
    };
    const back = joinParts(unitParts(u));
    expect(back.rows[0]?.after).toEqual([1, { real: 1 }, 2n ** 63n - 1n, -(2n ** 63n), new Uint8Array([0, 255])]);
    expect(typeof back.rows[0]?.after?.[0]).toBe("number");
    expect(back.rows[0]?.after?.[4]?.constructor).toBe(Uint8Array);
  });

  it("carries a 2 MB BLOB and a 2 MB text in parts of at most 96 KB", () => {
    const blob = new Uint8Array(2_000_000);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 131 + 7) & 0xff;
    const text = "é".repeat(1_000_000);
    const u: StreamUnit = {
      from: { seq: 5, copy: null },
      to: { seq: 6, copy: null },
      items: [{ table: "files", columns: ["id", "body", "note"], before: null, after: [1, blob, text] }],
      rows: [],
      lastCommitTs: 1_700_000_000_000,
      headSeq: 6,
    };
    const parts = unitParts(u);
    expect(parts.length).toBeGreaterThan(40);
    expect(parts.every((p) => p.bytes.length <= MAX_PART_BYTES)).toBe(true);
    expect(joinParts(parts.toReversed())).toEqual(u);
  });

  it("gives each part its own bytes, so the queue takes every part of a large unit", async () => {
    const u: StreamUnit = {
      from: { seq: 0, copy: null },
      to: { seq: 1, copy: null },
      items: [{ table: "files", columns: ["id", "body"], before: null, after: [1, new Uint8Array(500_000).fill(3)] }],
      rows: [],
      lastCommitTs: null,
      headSeq: 1,
    };
    const parts = unitParts(u);
    expect(parts.length).toBeGreaterThan(4);
    // A view of the whole encoding would serialize all of it (over a message's 128 KB).
    expect(parts.every((p) => p.bytes.byteOffset === 0 && p.bytes.buffer.byteLength === p.bytes.byteLength)).toBe(true);
    // Not a stream part (no target), so the consumer drops it after the queue took it.
    for (const p of parts) await env.VREPL_QUEUE.send({ bytes: p.bytes }, { contentType: "v8" });
  });

  it("refuses to join parts of two encodings, or an incomplete set", () => {
    const u: StreamUnit = {
      from: { seq: 0, copy: null },
      to: { seq: 1, copy: null },
      items: [{ ddl: "x".repeat(500) }],
      rows: [],
      lastCommitTs: 1,
      headSeq: 1,
    };
    const a = unitParts(u, 100);
    const b = unitParts(u, 100);
    const code = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (e) {
        return (e as { code?: unknown }).code;
      }
      return "no error";
    };
    expect(code(() => joinParts([...a.slice(0, 2), ...b.slice(2)]))).toBe("INVALID_ARGUMENT");
    expect(code(() => joinParts(a.slice(1)))).toBe("INVALID_ARGUMENT");
    expect(joinParts(a)).toEqual(u);
  });
});
