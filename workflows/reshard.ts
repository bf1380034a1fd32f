// Reshard / MoveTables orchestration (copy → catch-up → vdiff → switch → complete) lands with
// its own issue. Until then the workflow refuses to start instead of pretending to run.

import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import { unsupportedError } from "../topology/refusals.ts";

export interface ReshardParams {
  readonly keyspace: string;
  readonly workflow: string;
  readonly sourceShards: string[];
  readonly targetShards: string[];
}

export class ReshardWorkflow extends WorkflowEntrypoint<Env, ReshardParams> {
  override async run(event: WorkflowEvent<ReshardParams>, step: WorkflowStep): Promise<void> {
    await step.do("refuse", async () => {
      throw unsupportedError("VD1109", `reshard workflow ${event.payload.workflow}: online resharding is not implemented yet`);
    });
  }
}
