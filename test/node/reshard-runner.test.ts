// The Reshard runner (workflows/reshard-runner.ts) against a scripted Topology and a recording step, so
// each of its turns is pinned: it waits for copy and catch-up, compares with VDiff in chunks, and
// while a stream is stopped (by the user, or a switch under way) waits and compares again rather
// than failing its step; once the user moved the workflow on it stops quietly; and it switches by
// itself only with autoSwitch and a VDiff that matched.

import { describe, expect, it } from "vitest";
import { VtError } from "../../contract/errors.ts";
import type { TabletType, VDiffReport, WorkflowAction, WorkflowView } from "../../contract/workflow-rpc.ts";
import { runReshard, type WorkflowCall } from "../../workflows/reshard-runner.ts";

type Phase = "copy" | "running" | "stopped";

function view(state: string, phases: Phase[], autoSwitch = false, kind: "reshard" | "movetables" = "reshard"): WorkflowView {
  return {
    keyspace: "k",
    workflow: "w",
    kind,
    state,
    sources: [],
    targets: [],
    onDdl: "ignore",
    autoSwitch,
    streams: phases.map((phase, i) => ({ id: `w/-/${i}`, target: `t${i}`, source: "-", phase, rowsCopied: 0, lagMs: 0, message: null })),
    rowsCopied: 0,
    rowsTotal: null,
    lagMs: 0,
  } as unknown as WorkflowView;
}

const report = (done: boolean, match = true): VDiffReport => ({ keyspace: "k", workflow: "w", match, done, tables: [], at: 0 }) as unknown as VDiffReport;

/** A Topology answering `show` and `vdiff` from scripts (the last answer repeats), recording every action. */
function topology(shows: WorkflowView[], vdiffs: (VDiffReport | Error)[]) {
  const calls: string[] = [];
  let s = 0;
  let d = 0;
  const call = async (action: WorkflowAction, tabletTypes?: readonly TabletType[]): Promise<WorkflowView | VDiffReport> => {
    calls.push(action + (tabletTypes ? `:${tabletTypes.join(",")}` : ""));
    if (action === "show") return shows[Math.min(s++, shows.length - 1)] as WorkflowView;
    if (action === "vdiff") {
      const r = vdiffs[Math.min(d++, vdiffs.length - 1)] as VDiffReport | Error;
      if (r instanceof Error) throw r;
      return r;
    }
    return { ...(shows[shows.length - 1] as WorkflowView), pauseMs: 7 };
  };
  return { call: call as WorkflowCall, calls };
}

/** A step that runs every `do` once (no retries: a failing step fails the run) and records sleeps. */
function recordingStep() {
  const steps: string[] = [];
  return {
    steps,
    step: {
      do: async <T>(name: string, fn: () => Promise<T>) => {
        steps.push(name);
        return fn();
      },
      sleep: async (name: string) => {
        steps.push(name);
      },
    },
  };
}

async function run(shows: WorkflowView[], vdiffs: (VDiffReport | Error)[]) {
  const topo = topology(shows, vdiffs);
  const { step, steps } = recordingStep();
  const out = await runReshard(topo.call, step);
  return { out, steps, calls: topo.calls };
}

describe("the Reshard runner", () => {
  it("waits for catch-up, then runs VDiff chunks until done, and leaves the switch to the user", async () => {
    const r = await run([view("running", ["copy", "running"]), view("running", ["running", "running"])], [report(false), report(true)]);
    expect(r.out).toContain("switch with vtctl reshard switchtraffic");
    expect(r.steps).toEqual(["progress 0", "wait 0", "progress 1", "vdiff 0", "vdiff 1"]);
  });

  it("while a stream is stopped its VDiff waits and compares again, without failing the step", async () => {
    const stopped = new VtError("INVALID_ARGUMENT", "stream w/-/1 is stopped; VDiff compares a stream whose copy is done");
    const r = await run(
      [view("running", ["running", "running"], true), view("running", ["running", "stopped"], true), view("running", ["running", "stopped"], true)],
      [stopped, stopped, report(true)],
    );
    expect(r.steps).toEqual(["progress 0", "vdiff 0", "vdiff wait 0", "vdiff 1", "vdiff wait 1", "vdiff 2", "switchtraffic reads", "switchtraffic writes"]);
    expect(r.out).toContain("writes paused 7 ms");
  });

  it("stops quietly when the user moved the workflow on during its VDiff, and fails a VDiff error it cannot explain", async () => {
    const gone = new VtError("INVALID_ARGUMENT", "stream w/-/0 is stopped");
    const quiet = await run([view("running", ["running"]), view("switched", ["stopped"])], [gone]);
    expect(quiet.out).toBe("stopped before VDiff finished: the workflow is switched");
    await expect(
      run([view("running", ["running"]), view("running", ["running"])], [new VtError("INTERNAL", "stream w/-/0 moved during its VDiff")]),
    ).rejects.toThrow("moved during its VDiff");
  });

  it("with autoSwitch switches reads then writes only after a VDiff that matched", async () => {
    const differs = await run([view("running", ["running"], true)], [report(true, false)]);
    expect(differs.out).toContain("not switching");
    expect(differs.calls.some((c) => c.startsWith("switchtraffic"))).toBe(false);
    const ok = await run([view("running", ["running"], true)], [report(true)]);
    expect(ok.calls.filter((c) => c.startsWith("switchtraffic"))).toEqual(["switchtraffic:replica,rdonly", "switchtraffic:primary"]);
  });

  it("a MoveTables with autoSwitch switches once, reads and writes together (its switch takes no tablet types)", async () => {
    const moved = await run([view("running", ["running"], true, "movetables")], [report(true)]);
    expect(moved.calls.filter((c) => c.startsWith("switchtraffic"))).toEqual(["switchtraffic"]);
    expect(moved.out).toMatch(/^switched \(writes paused \d+ ms\)$/);
    const manual = await run([view("running", ["running"], false, "movetables")], [report(true)]);
    expect(manual.out).toContain("vtctl movetables switchtraffic");
  });
});
