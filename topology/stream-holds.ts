// The binlog-retention holds a workflow's streams keep on their sources (contract/binlog-retention.ts
// streamHoldId): a stream takes its hold when it is created and moves it with every read; a stream
// forgotten releases it (the target's controlStream "delete"). Once a workflow is completed or
// cancelled, every hold any of its streams may still keep is released once more here: a stream
// that failed between its hold and its record, or a read that arrived after its stream was
// forgotten, leaves none behind (else it would keep the binlog until it aged out, 7 days). And a
// switch takes the holds of the streams it starts after its flip before its write pause.

import { streamHoldId } from "../contract/binlog-retention.ts";
import { unwrap } from "../contract/envelope.ts";
import { all, headSeqs, overlapping, reverseStreamId, streamId, type StreamedWorkflow, type TabletOf, type WorkflowShard } from "./reshard-streams.ts";

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

/**
 * Before a switch's write pause: the streams that will start from `from` once the flip happened
 * (at `from`'s heads then) hold `from`'s binlogs now, at their heads now (at or below where those
 * streams will start), so no purge in between passes their start. A stream's own hold at creation
 * then finds these and keeps the lower; a switch that is undone before its flip releases them
 * (releaseAhead; one that stopped midway leaves them to its retry, the workflow's cancel or
 * complete (releaseStreamHolds), or their age).
 */
export async function holdAhead(
  wf: StreamedWorkflow,
  from: readonly WorkflowShard[],
  to: readonly WorkflowShard[],
  idOf: (wf: string, fromShard: string, toShard: string) => string,
  tabletOf: TabletOf,
): Promise<void> {
  const heads = await headSeqs(from, tabletOf);
  await all(
    overlapping(from, to).map(async ({ from: f, to: t }) =>
      unwrap(await tabletOf(f.tablet).holdBinlog(streamHoldId({ targetTablet: t.tablet, id: idOf(wf.name, f.shard, t.shard) }), heads.get(f.tablet) ?? 0)),
    ),
  );
}

/** Undoes holdAhead: a switch that is undone before the streams it held for exist releases their holds. */
export async function releaseAhead(
  wf: StreamedWorkflow,
  from: readonly WorkflowShard[],
  to: readonly WorkflowShard[],
  idOf: (wf: string, fromShard: string, toShard: string) => string,
  tabletOf: TabletOf,
): Promise<void> {
  await all(
    overlapping(from, to).map(async ({ from: f, to: t }) =>
      unwrap(await tabletOf(f.tablet).releaseHold(streamHoldId({ targetTablet: t.tablet, id: idOf(wf.name, f.shard, t.shard) }))),
    ),
  );
}
