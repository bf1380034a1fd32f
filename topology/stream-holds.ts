// The binlog-retention holds a workflow's streams keep on their sources (contract/binlog-retention.ts
// streamHoldId): a stream takes its hold when it is created and moves it with every read; a stream
// forgotten releases it (the target's controlStream "delete"). Once a workflow is completed or
// cancelled, every hold any of its streams may still keep is released once more here: a stream
// that failed between its hold and its record, or a read that arrived after its stream was
// forgotten, leaves none behind (else it would keep the binlog until it aged out, 7 days). And a
// switch takes the holds of the streams it starts after its flip before its write pause.

import { streamHoldId } from "../contract/binlog-retention.ts";
import { unwrap } from "../contract/envelope.ts";
import { all, forwardId, headSeqs, overlapping, reverseId, type StreamedWorkflow, type TabletOf, type WorkflowShard } from "./reshard-streams.ts";

type StreamIdOf = (wf: string, fromShard: string, toShard: string) => string;

/** The holds the streams from `from` to `to` keep: on each source tablet, by target tablet and stream id. */
function holdsOf(wf: StreamedWorkflow, from: readonly WorkflowShard[], to: readonly WorkflowShard[], idOf: StreamIdOf): { tablet: string; id: string }[] {
  return overlapping(from, to).map(({ from: f, to: t }) => ({
    tablet: f.tablet,
    id: streamHoldId({ targetTablet: t.tablet, id: idOf(wf.name, f.shard, t.shard) }),
  }));
}

/** The holds of the workflow's streams: forward ones on its sources, reverse ones on its targets. */
export function streamHolds(wf: StreamedWorkflow): { tablet: string; id: string }[] {
  return [...holdsOf(wf, wf.sources, wf.targets, forwardId), ...holdsOf(wf, wf.targets, wf.sources, reverseId)];
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
  idOf: StreamIdOf,
  tabletOf: TabletOf,
): Promise<void> {
  const heads = await headSeqs(from, tabletOf);
  await all(holdsOf(wf, from, to, idOf).map(async (h) => unwrap(await tabletOf(h.tablet).holdBinlog(h.id, heads.get(h.tablet) ?? 0))));
}

/** Undoes holdAhead: a switch that is undone before the streams it held for exist releases their holds. */
export async function releaseAhead(
  wf: StreamedWorkflow,
  from: readonly WorkflowShard[],
  to: readonly WorkflowShard[],
  idOf: StreamIdOf,
  tabletOf: TabletOf,
): Promise<void> {
  await all(holdsOf(wf, from, to, idOf).map(async (h) => unwrap(await tabletOf(h.tablet).releaseHold(h.id))));
}
