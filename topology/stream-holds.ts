// The binlog-retention holds a workflow's streams keep on their sources (contract/binlog-retention.ts
// streamHoldId): a stream takes its hold when it is created and moves it with every read; a stream
// forgotten releases it (the target's controlStream "delete"). Once a workflow is completed or
// cancelled, every hold any of its streams may still keep is released once more here: a stream
// that failed between its hold and its record, or a read that arrived after its stream was
// forgotten, leaves none behind (else it would keep the binlog until it aged out, 7 days).

import { streamHoldId } from "../contract/binlog-retention.ts";
import { unwrap } from "../contract/envelope.ts";
import { all, overlapping, reverseStreamId, streamId, type StreamedWorkflow, type TabletOf } from "./reshard-streams.ts";

/** The holds of the workflow's streams: forward ones on its sources, reverse ones on its targets. */
export function streamHolds(wf: StreamedWorkflow): { tablet: string; id: string }[] {
  const forward = overlapping(wf.sources, wf.targets).map(({ from, to }) => ({
    tablet: from.tablet,
    id: streamHoldId({ targetTablet: to.tablet, id: streamId(wf.name, from.shard) }),
  }));
  const reverse = overlapping(wf.targets, wf.sources).map(({ from, to }) => ({
    tablet: from.tablet,
    id: streamHoldId({ targetTablet: to.tablet, id: reverseStreamId(wf.name, from.shard) }),
  }));
  return [...forward, ...reverse];
}

/** Releases every hold of the workflow's streams (idempotent: a hold already gone is no error). */
export async function releaseStreamHolds(wf: StreamedWorkflow, tabletOf: TabletOf): Promise<void> {
  await all(streamHolds(wf).map(async (h) => unwrap(await tabletOf(h.tablet).releaseHold(h.id))));
}
