// Invariant: a Reshard request is accepted exactly when its sources are distinct, adjacent
// serving shards that no open workflow holds and its targets are distinct ranges that cover
// exactly the sources' keys, with no overlap and no gap, and differ from the sources. Every other
// request is INVALID_ARGUMENT. Checked against a model where a shard is an interval of the 256
// one-byte keys.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toVtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { WorkflowRecord } from "../../contract/workflow-record.ts";
import { planReshard } from "../../topology/reshard-plan.ts";

type Interval = readonly [number, number];

const hex = (n: number) => (n === 0 || n === 256 ? "" : n.toString(16).padStart(2, "0"));
const nameOf = ([a, b]: Interval) => `${hex(a)}-${b === 256 ? "" : hex(b)}`;

function keyspace(bounds: readonly number[]): { ks: KeyspaceGraph; shards: Interval[] } {
  const cuts = [0, ...bounds, 256];
  const shards = cuts.slice(1).map((b, i) => [cuts[i] ?? 0, b] as const);
  const ks: KeyspaceGraph = {
    name: "p",
    sharded: true,
    vschema: { sharded: true, vindexes: { xxhash: { type: "xxhash" } }, tables: {} },
    shards: shards.map((s) => ({ name: nameOf(s), keyRange: nameOf(s), serving: true, tablet: `p/${nameOf(s)}` })),
    tables: {},
    schemaIndex: 0,
    version: 1,
  };
  return { ks, shards };
}

function held(shard: Interval): WorkflowRecord {
  const s = { shard: nameOf(shard), keyRange: nameOf(shard), tablet: `p/${nameOf(shard)}` };
  return {
    keyspace: "p",
    name: "other",
    kind: "reshard",
    state: "running",
    sources: [s],
    targets: [],
    onDdl: "ignore",
    autoSwitch: false,
    progress: null,
    createdAt: 0,
    updatedAt: 0,
    switchedAt: null,
  };
}

/** The model's answer: accepted or not. */
function accepts(shards: readonly Interval[], sources: readonly Interval[], targets: readonly Interval[], busy: Interval | null): boolean {
  const key = (i: Interval) => `${i[0]}-${i[1]}`;
  const distinct = (l: readonly Interval[]) => new Set(l.map(key)).size === l.length;
  if (sources.length === 0 || targets.length === 0 || !distinct(sources) || !distinct(targets)) return false;
  if (!sources.every((s) => shards.some((g) => key(g) === key(s)))) return false;
  if (busy && sources.some((s) => key(s) === key(busy))) return false;
  const covers = (l: readonly Interval[]): Interval | null => {
    const sorted = [...l].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++) if (sorted[i]?.[0] !== sorted[i - 1]?.[1]) return null;
    return [sorted[0]?.[0] ?? -1, sorted[sorted.length - 1]?.[1] ?? -1];
  };
  const src = covers(sources);
  const dst = covers(targets);
  if (!src || !dst || src[0] !== dst[0] || src[1] !== dst[1]) return false;
  const same = sources.length === targets.length && sources.every((s) => targets.some((t) => key(t) === key(s)));
  return !same;
}

const bounds = fc.uniqueArray(fc.integer({ min: 1, max: 255 }), { maxLength: 5 }).map((b) => [...b].sort((x, y) => x - y));

/** Ways a request can go wrong (or not): each applied to a valid request. */
const MUTATIONS = ["none", "overlap", "gap", "short", "long", "duplicate", "same", "skip-source", "busy"] as const;
type Mutation = (typeof MUTATIONS)[number];

interface Case {
  readonly b: number[];
  readonly first: number;
  readonly count: number;
  readonly cuts: number[];
  readonly mutation: Mutation;
  readonly shift: number;
}

const cases: fc.Arbitrary<Case> = fc.record({
  b: bounds,
  first: fc.nat(),
  count: fc.integer({ min: 1, max: 4 }),
  cuts: fc.uniqueArray(fc.integer({ min: 1, max: 255 }), { maxLength: 4 }),
  mutation: fc.constantFrom(...MUTATIONS),
  shift: fc.integer({ min: 1, max: 8 }),
});

/** A request: a run of adjacent shards split at `cuts`, then mutated. */
function request(c: Case, shards: readonly Interval[]): { sources: Interval[]; targets: Interval[]; busy: Interval | null } {
  const first = c.first % shards.length;
  const run = shards.slice(first, first + c.count);
  let sources: Interval[] = [...run];
  const lo = run[0]?.[0] ?? 0;
  const hi = run[run.length - 1]?.[1] ?? 256;
  const inner = c.cuts.filter((x) => x > lo && x < hi).sort((x, y) => x - y);
  const points = [lo, ...inner, hi];
  let targets: Interval[] = points.slice(1).map((p, i) => [points[i] ?? 0, p] as const);
  let busy: Interval | null = null;
  const at = (i: number) => targets[i] ?? [0, 256];
  switch (c.mutation) {
    case "overlap":
      if (targets.length > 1) targets[1] = [Math.max(at(0)[0], at(1)[0] - c.shift), at(1)[1]];
      break;
    case "gap":
      if (targets.length > 1) targets[1] = [Math.min(at(1)[1] - 1, at(1)[0] + c.shift), at(1)[1]];
      break;
    case "short":
      targets = targets.length > 1 ? targets.slice(0, -1) : [[lo, Math.max(lo + 1, hi - c.shift)]];
      break;
    case "long":
      targets[targets.length - 1] = [at(targets.length - 1)[0], Math.min(256, hi + c.shift)];
      break;
    case "duplicate":
      targets.push(at(0));
      break;
    case "same":
      targets = [...sources];
      break;
    case "skip-source":
      // Sources around a shard they leave out, with targets over all three.
      if (sources.length >= 3) sources = [sources[0] ?? [0, 256], ...sources.slice(2)];
      break;
    case "busy":
      busy = sources[sources.length - 1] ?? null;
      break;
    case "none":
      break;
  }
  return { sources, targets, busy };
}

describe("planReshard", () => {
  it("accepts exactly the requests whose targets partition the union of adjacent serving sources", () => {
    let accepted = 0;
    fc.assert(
      fc.property(cases, (c) => {
        const { ks, shards } = keyspace(c.b);
        const { sources, targets, busy } = request(c, shards);
        const expected = accepts(shards, sources, targets, busy);
        let got: boolean;
        try {
          planReshard(ks, sources.map(nameOf), targets.map(nameOf), undefined, busy ? [held(busy)] : []);
          got = true;
        } catch (e) {
          expect(toVtError(e).code).toBe("INVALID_ARGUMENT");
          got = false;
        }
        if (got) accepted++;
        expect({ sources: sources.map(nameOf), targets: targets.map(nameOf), busy, got }).toEqual({
          sources: sources.map(nameOf),
          targets: targets.map(nameOf),
          busy,
          got: expected,
        });
      }),
      { numRuns: 3000 },
    );
    // Both answers are exercised.
    expect(accepted).toBeGreaterThan(300);
    expect(accepted).toBeLessThan(2700);
  });

  it("names the shards it plans in key order, whatever order they were given in", () => {
    const { ks } = keyspace([0x40, 0x80, 0xc0]);
    const plan = planReshard(ks, ["80-c0", "40-80"], ["a0-c0", "40-60", "60-a0"], { onDdl: "stop" }, []);
    expect([plan.sources.map((s) => s.name), plan.targets, plan.onDdl, plan.autoSwitch]).toEqual([
      ["40-80", "80-c0"],
      ["40-60", "60-a0", "a0-c0"],
      "stop",
      false,
    ]);
  });
});
