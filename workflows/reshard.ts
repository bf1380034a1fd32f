// The Reshard runner as a Cloudflare Workflow: each of its steps (workflows/reshard-runner.ts) is
// a Workflows step, so it is retried on failure and resumes after a restart where it stood.

import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import { unwrap } from "../contract/envelope.ts";
import { topologyRpc } from "../contract/topology-rpc.ts";
import type { VDiffReport, WorkflowView } from "../contract/workflow-rpc.ts";
import { runReshard, type WorkflowCall } from "./reshard-runner.ts";

export interface ReshardParams {
  readonly keyspace: string;
  readonly workflow: string;
}

export class ReshardWorkflow extends WorkflowEntrypoint<Env, ReshardParams> {
  override async run(event: WorkflowEvent<ReshardParams>, step: WorkflowStep): Promise<string> {
    const p = event.payload;
    const call: WorkflowCall = async <T extends WorkflowView | VDiffReport>(action: Parameters<WorkflowCall>[0], tabletTypes?: Parameters<WorkflowCall>[1]) => {
      const req = { action, keyspace: p.keyspace, workflow: p.workflow, ...(tabletTypes ? { tabletTypes } : {}) };
      return unwrap(await topologyRpc(this.env.TOPOLOGY).workflow(req)) as T;
    };
    return runReshard(call, { do: (name, fn) => step.do(name, fn as () => Promise<never>), sleep: (name, ms) => step.sleep(name, ms) });
  }
}
