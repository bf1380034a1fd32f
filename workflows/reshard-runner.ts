// What the Reshard runner does, apart from where it runs: after `reshard create` has made the
// targets and started the streams (they move on their own, pumped by the target tablets), wait
// until every stream has copied and caught up, run VDiff, and with `autoSwitch` switch traffic
// when VDiff found no difference. Each step is an idempotent Topology call, so a retried or
// resumed step repeats nothing; the user may also switch, reverse, complete or cancel at any time
// with vtctl, and the runner then stops waiting.

import type { TabletType, VDiffReport, WorkflowAction, WorkflowView } from "../contract/workflow-rpc.ts";

/** The streams are done copying and at most this far behind their sources. */
const CAUGHT_UP_MS = 1_000;

export function caughtUp(v: WorkflowView): boolean {
  return v.streams.length > 0 && v.streams.every((s) => s.phase === "running" && s.lagMs <= CAUGHT_UP_MS);
}

/** One workflow action on the Topology (unwrapped: its refusal is thrown). */
export type WorkflowCall = <T extends WorkflowView | VDiffReport>(action: WorkflowAction, tabletTypes?: readonly TabletType[]) => Promise<T>;

/** The two things of a Workflows step the runner uses. */
export interface RunnerStep {
  do<T>(name: string, fn: () => Promise<T>): Promise<T>;
  sleep(name: string, ms: number): Promise<void>;
}

const backoffMs = (i: number) => Math.min(30_000, 500 * 2 ** Math.min(i, 6));

/**
 * One VDiff call. When the user moved the workflow on meanwhile (switched, cancelled), the runner
 * stops quietly instead of failing; while one of its streams is stopped (by the user, or a switch
 * under way) it waits and compares again later, instead of spending the step's retries.
 */
async function vdiff(call: WorkflowCall): Promise<VDiffReport | { readonly stopped: string } | { readonly waiting: string }> {
  try {
    return await call<VDiffReport>("vdiff");
  } catch (e) {
    const v = await call<WorkflowView>("show");
    if (v.state !== "running") return { stopped: v.state };
    const held = v.streams.find((s) => s.phase === "stopped");
    if (held) return { waiting: held.id };
    throw e;
  }
}

/** The whole run; answers what it ended with, in words. */
export async function runReshard(call: WorkflowCall, step: RunnerStep): Promise<string> {
  let view: WorkflowView | undefined;
  for (let i = 0; ; i++) {
    view = await step.do(`progress ${i}`, () => call<WorkflowView>("show"));
    if (view.state !== "running") return `stopped waiting: the workflow is ${view.state}`;
    if (caughtUp(view)) break;
    await step.sleep(`wait ${i}`, backoffMs(i));
  }
  // VDiff runs in chunks; each call goes on from where the last one stopped.
  let diff: VDiffReport | undefined;
  for (let i = 0, waits = 0; !diff?.done; i++) {
    const r = await step.do(`vdiff ${i}`, () => vdiff(call));
    if ("stopped" in r) return `stopped before VDiff finished: the workflow is ${r.stopped}`;
    if ("waiting" in r) {
      await step.sleep(`vdiff wait ${i}`, backoffMs(waits++));
      continue;
    }
    diff = r;
  }
  const verb = view.kind === "movetables" ? "movetables" : "reshard";
  if (!view.autoSwitch)
    return diff.match ? `caught up; VDiff found no difference; switch with vtctl ${verb} switchtraffic` : "caught up; VDiff found differences";
  if (!diff.match) return "VDiff found differences: not switching (see vtctl vdiff)";
  if (view.kind === "movetables") {
    // A MoveTables moves reads and writes together (the routing rules): one switch.
    const moved = await step.do("switchtraffic", () => call<WorkflowView>("switchtraffic"));
    return `switched (writes paused ${moved.pauseMs ?? 0} ms)`;
  }
  // Reads first (no pause), then writes, as Vitess's SwitchTraffic per tablet type.
  await step.do("switchtraffic reads", () => call<WorkflowView>("switchtraffic", ["replica", "rdonly"]));
  const after = await step.do("switchtraffic writes", () => call<WorkflowView>("switchtraffic", ["primary"]));
  return `switched reads, then writes (writes paused ${after.pauseMs ?? 0} ms)`;
}
