// Invariant: whatever the reshard (a split, a merge, or a re-cut of two shards into three, at random
// key boundaries), whatever clients write meanwhile (inserts, updates, deletes of a table sharded
// by an integer key, a TEXT-keyed table and a reference table, and moves of a keyspace-unique
// column) in every phase (copy, running, during the switch, after it, after a reverse), and
// whatever goes wrong underneath (queue parts duplicated, reordered or lost, the pump restarted
// mid-copy and mid-switch, a workflow action failing half-way and being retried), once the
// workflow completes the keyspace holds exactly the rows a model of the acknowledged writes holds,
// each on the shard its key range says (read from each tablet directly), every write was
// acknowledged (none failed for the reshard's sake), and the unique column is still keyspace-wide.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { arm, armWorkflowStep, disarm, type WorkflowStep } from "../../topology/failpoints.ts";
import { armStreamFaults, disarmStreamFaults, type StreamFaults } from "../../tablet/stream-faults.ts";
import { api } from "./helpers.ts";
import { caughtUp, check, type Model, setUp, sleep, workflows, writer } from "./reshard-harness.ts";

const RUNS = 6;

/** What can go wrong underneath, as a string union; each run picks some. */
type Transport = "duplicate" | "reorder" | "drop" | "restart";

interface Scenario {
  readonly initial: readonly string[];
  readonly sources: readonly string[];
  readonly targets: readonly string[];
  readonly users: number;
  readonly seed: number;
  /** Transport faults during the copy, and during the switch. */
  readonly copyFaults: readonly Transport[];
  readonly switchFaults: readonly Transport[];
  /** Where a switchtraffic / reversetraffic fails once before its retry (null: it does not). */
  readonly switchFails: WorkflowStep | null;
  readonly reverse: { readonly fails: WorkflowStep | null } | null;
  /** ms of writes after create before the copy faults end. */
  readonly copyMs: number;
}

const hex = (b: number) => b.toString(16).padStart(2, "0");

const plan: fc.Arbitrary<Pick<Scenario, "initial" | "sources" | "targets">> = fc.oneof(
  // split one half of two shards at a random boundary
  fc.tuple(fc.boolean(), fc.integer({ min: 0x10, max: 0x70 })).map(([hi, cut]) => {
    const c = hi ? hex(cut + 0x80) : hex(cut);
    return hi
      ? { initial: ["-80", "80-"], sources: ["80-"], targets: [`80-${c}`, `${c}-`] }
      : { initial: ["-80", "80-"], sources: ["-80"], targets: [`-${c}`, `${c}-80`] };
  }),
  // merge two of three shards
  fc
    .tuple(fc.boolean(), fc.integer({ min: 0x10, max: 0x70 }))
    .map(([hi, cut]) =>
      hi
        ? { initial: ["-80", `80-${hex(cut + 0x80)}`, `${hex(cut + 0x80)}-`], sources: [`80-${hex(cut + 0x80)}`, `${hex(cut + 0x80)}-`], targets: ["80-"] }
        : { initial: [`-${hex(cut)}`, `${hex(cut)}-80`, "80-"], sources: [`-${hex(cut)}`, `${hex(cut)}-80`], targets: ["-80"] },
    ),
  // 2 → 3 at random boundaries
  fc.tuple(fc.integer({ min: 0x20, max: 0x7f }), fc.integer({ min: 0x81, max: 0xe0 })).map(([a, b]) => ({
    initial: ["-80", "80-"],
    sources: ["-80", "80-"],
    targets: [`-${hex(a)}`, `${hex(a)}-${hex(b)}`, `${hex(b)}-`],
  })),
);

const transport = fc.subarray<Transport>(["duplicate", "reorder", "drop", "restart"]);
const step = (kind: "switch" | "reverse") => fc.constantFrom<WorkflowStep | null>(null, `${kind}:drained`, `${kind}:flipped`);

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    plan,
    users: fc.integer({ min: 10, max: 60 }),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
    copyFaults: transport,
    switchFaults: transport,
    switchFails: step("switch"),
    reverse: fc.option(fc.record({ fails: step("reverse") }), { nil: null }),
    copyMs: fc.integer({ min: 0, max: 300 }),
  })
  .map(({ plan: p, ...rest }) => ({ ...p, ...rest }));

function faults(t: readonly Transport[]): StreamFaults {
  const f: StreamFaults = { stallMs: 150 };
  if (t.includes("duplicate")) f.duplicate = 1;
  if (t.includes("reorder")) f.reorder = 3;
  if (t.includes("drop")) f.drop = true;
  if (t.includes("restart")) f.restart = true;
  return f;
}

/** One whole reshard of scenario `s` in keyspace `ks`, under writers and faults. */
async function runScenario(ks: string, s: Scenario): Promise<void> {
  const model: Model = { users: new Map(), tags: new Map(), countries: new Map() };
  await setUp(ks, s, model);
  const wf = workflows(ks);
  const writers = [writer(ks, model, 0, s.seed), writer(ks, model, 1, s.seed + 1)];
  try {
    armStreamFaults(faults(s.copyFaults));
    const created = await wf.call({ action: "create", sourceShards: s.sources, targetShards: s.targets });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    await sleep(s.copyMs);
    armStreamFaults({ stallMs: 150, restart: true });
    await wf.until("copy and catch-up", caughtUp);
    disarmStreamFaults();

    armStreamFaults(faults(s.switchFaults));
    armWorkflowStep(s.switchFails);
    const switched = await wf.retried("switchtraffic");
    expect(switched["state"]).toBe("switched");
    disarm();
    disarmStreamFaults();
    await sleep(50);
    if (s.reverse) {
      armWorkflowStep(s.reverse.fails);
      const reversed = await wf.retried("reversetraffic");
      expect(reversed["state"]).toBe("running");
      disarm();
      await wf.until("forward streams again", caughtUp);
      await sleep(30);
      expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
    }
    await sleep(30);
  } finally {
    disarm();
    disarmStreamFaults();
    for (const w of writers) await w.stop();
  }
  expect((await wf.retried("complete"))["state"]).toBe("completed");
  expect(writers.flatMap((w) => w.errors)).toEqual([]);
  await check(ks, [...s.initial.filter((x) => !s.sources.includes(x)), ...s.targets], model);
}

afterEach(() => {
  disarm();
  disarmStreamFaults();
});

describe("reshard property: every acknowledged write survives any reshard under faults", () => {
  it("holds for random reshards, writes and faults", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        run++;
        await runScenario(`rp${run}`, s);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 240_000);
});

// Counterexamples found, pinned.
describe("reshard property: pinned counterexamples", () => {
  const base: Scenario = {
    initial: ["-80", "80-"],
    sources: ["-80"],
    targets: ["-40", "40-80"],
    users: 30,
    seed: 7,
    copyFaults: [],
    switchFaults: [],
    switchFails: null,
    reverse: null,
    copyMs: 0,
  };

  // The switch's catch undid a switch whose graph had flipped: the reverse streams were deleted,
  // so a later reversetraffic could not drain them.
  it("a switchtraffic failing after its flip is finished by its retry, and reverses", async () => {
    await runScenario("rpin1", { ...base, switchFails: "switch:flipped", reverse: { fails: null } });
  }, 60_000);

  // The reverse's catch left the forward streams it had started from the sources' heads running
  // beside the resumed reverse streams: every write on the targets came back to them.
  // And the same when the Topology stops there: the next action undid the reverse but left them.
  it.each(["fails", "crashes"] as const)(
    "a reversetraffic that %s before its flip leaves streams one way only, and its retry converges",
    async (how) => {
      const ks = `rpin2${how}`;
      const model: Model = { users: new Map(), tags: new Map(), countries: new Map() };
      await setUp(ks, base, model);
      const wf = workflows(ks);
      expect((await wf.call({ action: "create", sourceShards: base.sources, targetShards: base.targets })).status).toBe(200);
      await wf.until("copy and catch-up", caughtUp);
      expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
      if (how === "fails") armWorkflowStep("reverse:drained");
      else arm({ crashAt: "reverse-drained" });
      const failed = await wf.call({ action: "reversetraffic" });
      disarm();
      expect(failed.status).not.toBe(200);
      // The next action finds an interrupted reverse and undoes it first.
      expect((await wf.call({ action: "show" })).body["state"]).toBe("switched");
      const targets = await Promise.all(
        ["-40", "40-80"].map(async (shard) => {
          const topo = await api<{ workflows: { name: string; targets: { shard: string; tablet: string }[] }[] }>("GET", "/v1/topology");
          const t = topo.body.workflows.find((w) => w.name === "wf")?.targets.find((x) => x.shard === shard);
          return runInDurableObject(env.TABLET.get(env.TABLET.idFromName(t?.tablet ?? "?")), (_i, state) =>
            state.storage.sql.exec<{ id: string; phase: string }>("SELECT id, phase FROM _vt_vreplication").toArray(),
          );
        }),
      );
      expect(targets.flat().filter((s) => s.phase === "copy" || s.phase === "running")).toEqual([]);
      expect((await wf.retried("reversetraffic"))["state"]).toBe("running");
      await wf.until("forward streams again", caughtUp);
      expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
      expect((await wf.retried("complete"))["state"]).toBe("completed");
      await check(ks, ["-40", "40-80", "80-"], model);
    },
    60_000,
  );
});
