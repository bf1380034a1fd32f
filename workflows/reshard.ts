// The Reshard runner (Cloudflare Workflows): after `reshard create` has made the targets and
// started the streams (they move on their own, pumped by the target tablets), it waits until
// every stream has copied and caught up, runs VDiff, and with `autoSwitch` switches traffic when
// VDiff found no difference. Each step is an idempotent Topology call, so a retried or resumed
// step repeats nothing; the user may also switch, reverse, complete or cancel at any time with
// vtctl, and the runner then stops waiting.

import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import { unwrap } from "../contract/envelope.ts";
import { topologyRpc } from "../contract/topology-rpc.ts";
import type { TabletType, VDiffReport, WorkflowAction, WorkflowView } from "../contract/workflow-rpc.ts";

export interface ReshardParams {
  readonly keyspace: string;
  readonly workflow: string;
}

/** The streams are done copying and at most this far behind their sources. */
const CAUGHT_UP_MS = 1_000;

export function caughtUp(v: WorkflowView): boolean {
  return v.streams.length > 0 && v.streams.every((s) => s.phase === "running" && s.lagMs <= CAUGHT_UP_MS);
}

export class ReshardWorkflow extends WorkflowEntrypoint<Env, ReshardParams> {
  async #call<T extends WorkflowView | VDiffReport>(action: WorkflowAction, p: ReshardParams, tabletTypes?: readonly TabletType[]): Promise<T> {
    const req = { action, keyspace: p.keyspace, workflow: p.workflow, ...(tabletTypes ? { tabletTypes } : {}) };
    return unwrap(await topologyRpc(this.env.TOPOLOGY).workflow(req)) as T;
  }

  /** One VDiff call; when the user moved the workflow on meanwhile (switched, cancelled), the runner stops quietly instead of failing. */
  async #vdiff(p: ReshardParams): Promise<VDiffReport | { readonly stopped: string }> {
    try {
      return await this.#call<VDiffReport>("vdiff", p);
    } catch (e) {
      const v = await this.#call<WorkflowView>("show", p);
      if (v.state !== "running") return { stopped: v.state };
      throw e;
    }
  }

  override async run(event: WorkflowEvent<ReshardParams>, step: WorkflowStep): Promise<string> {
    const p = event.payload;
    let view: WorkflowView | undefined;
    for (let i = 0; ; i++) {
      view = await step.do(`progress ${i}`, () => this.#call<WorkflowView>("show", p));
      if (view.state !== "running") return `stopped waiting: the workflow is ${view.state}`;
      if (caughtUp(view)) break;
      await step.sleep(`wait ${i}`, Math.min(30_000, 500 * 2 ** Math.min(i, 6)));
    }
    // VDiff runs in chunks; each call goes on from where the last one stopped.
    let diff: VDiffReport | undefined;
    for (let i = 0; !diff?.done; i++) {
      const r = await step.do(`vdiff ${i}`, () => this.#vdiff(p));
      if ("stopped" in r) return `stopped before VDiff finished: the workflow is ${r.stopped}`;
      diff = r;
    }
    if (!view.autoSwitch)
      return diff.match ? "caught up; VDiff found no difference; switch with vtctl reshard switchtraffic" : "caught up; VDiff found differences";
    if (!diff.match) return "VDiff found differences: not switching (see vtctl vdiff)";
    // Reads first (no pause), then writes, as Vitess's SwitchTraffic per tablet type.
    await step.do("switchtraffic reads", () => this.#call<WorkflowView>("switchtraffic", p, ["replica", "rdonly"]));
    const after = await step.do("switchtraffic writes", () => this.#call<WorkflowView>("switchtraffic", p, ["primary"]));
    return `switched reads, then writes (writes paused ${after.pauseMs ?? 0} ms)`;
  }
}
