// The streams of a Reshard workflow, driven from the Topology through the tablets' RPC surface:
// one stream per (source shard, overlapping target shard), living on the target. Each function
// is one idempotent step: running it again after it (or part of it) happened changes nothing more.

import { unwrap } from "../contract/envelope.ts";
import { VtError } from "../contract/errors.ts";
import type { OnDdl, StreamFilter, StreamSpec, StreamState, TablePlacement } from "../contract/stream-rpc.ts";
import type { TabletRpc } from "../contract/tablet-rpc.ts";
import { keyRangesIntersect, parseKeyRange } from "./keyrange.ts";
import type { WorkflowRecord } from "../contract/workflow-record.ts";

export interface WorkflowShard {
  readonly shard: string;
  /** The shard's tablet (Durable Object name). */
  readonly tablet: string;
}

/** What the stream steps need of a workflow's record. */
export interface StreamedWorkflow {
  readonly keyspace: string;
  readonly name: string;
  readonly sources: readonly WorkflowShard[];
  readonly targets: readonly WorkflowShard[];
  readonly onDdl: OnDdl;
}

export type TabletOf = (tablet: string) => TabletRpc;

/** A stream's id on its target. */
export function streamId(workflow: string, sourceShard: string): string {
  return `${workflow}/${sourceShard}`;
}

/** A reverse stream's id on an old source (after a switch the old sources follow the new shards). */
export function reverseStreamId(workflow: string, targetShard: string): string {
  return `${workflow}.reverse/${targetShard}`;
}

/** Stream ids of a workflow's forward streams (on its targets) and reverse streams (on its sources), as startStreams and drainAll take them. */
export const forwardId = (wf: string, from: string, _to: string): string => streamId(wf, from);
export const reverseId = (wf: string, from: string, _to: string): string => reverseStreamId(wf, from);
export const isReverse = (id: string): boolean => id.includes(".reverse/");

/** A switch refuses to start while a stream is further behind than this. */
export const SWITCH_MAX_LAG_MS = 5_000;

/** What the stream steps need of a workflow record. */
export function streamed(r: StreamedWorkflow & { readonly name: string }): StreamedWorkflow {
  return { keyspace: r.keyspace, name: r.name, sources: r.sources, targets: r.targets, onDdl: r.onDdl };
}

/** Pairs of (from, to) shards whose key ranges overlap: the streams a move from `from` to `to` needs. */
export function overlapping(from: readonly WorkflowShard[], to: readonly WorkflowShard[]): { from: WorkflowShard; to: WorkflowShard }[] {
  const out: { from: WorkflowShard; to: WorkflowShard }[] = [];
  for (const t of to) {
    for (const f of from) if (keyRangesIntersect(parseKeyRange(f.shard), parseKeyRange(t.shard))) out.push({ from: f, to: t });
  }
  return out;
}

/** The source's binlog head (the seq of its last commit). */
async function headSeq(tablet: TabletRpc): Promise<number> {
  const { position } = unwrap(await tablet.status());
  return Number(position.slice(position.lastIndexOf(":") + 1));
}

/**
 * Starts the streams moving rows from `from` to `to` (each filtered by its `to` shard's range),
 * `copy` first or following the binlog from the source's head. A stream that exists is left alone.
 */
export async function startStreams(
  wf: StreamedWorkflow,
  from: readonly WorkflowShard[],
  to: readonly WorkflowShard[],
  tables: readonly TablePlacement[],
  copy: boolean,
  idOf: (wf: string, fromShard: string, toShard: string) => string,
  tabletOf: TabletOf,
): Promise<void> {
  for (const { from: f, to: t } of overlapping(from, to)) {
    const target = tabletOf(t.tablet);
    const id = idOf(wf.name, f.shard, t.shard);
    const existing = unwrap(await target.streams());
    if (existing.some((s) => s.spec.id === id)) {
      await target.controlStream(id, "resume");
      continue;
    }
    const filter: StreamFilter = { keyRange: t.shard, tables };
    const seq = await headSeq(tabletOf(f.tablet));
    const spec: StreamSpec = {
      id,
      workflow: wf.name,
      targetTablet: t.tablet,
      sourceTablet: f.tablet,
      sourceShard: f.shard,
      filter,
      onDdl: wf.onDdl,
      start: { seq, copy: copy ? { table: 0, after: null } : null },
    };
    unwrap(await target.startStream(spec));
  }
}

/** Every stream of the workflow on `on` (its targets, or its sources for reverse streams). */
export async function workflowStreams(
  wf: StreamedWorkflow,
  on: readonly WorkflowShard[],
  tabletOf: TabletOf,
): Promise<{ shard: WorkflowShard; state: StreamState }[]> {
  const out: { shard: WorkflowShard; state: StreamState }[] = [];
  for (const s of on) {
    for (const state of unwrap(await tabletOf(s.tablet).streams())) if (state.spec.workflow === wf.name) out.push({ shard: s, state });
  }
  return out;
}

/** Stops or forgets the workflow's streams on `on` whose ids `pick` selects. */
export async function controlStreams(
  wf: StreamedWorkflow,
  on: readonly WorkflowShard[],
  action: "stop" | "delete",
  pick: (id: string) => boolean,
  tabletOf: TabletOf,
): Promise<void> {
  for (const { shard, state } of await workflowStreams(wf, on, tabletOf)) {
    if (pick(state.spec.id)) unwrap(await tabletOf(shard.tablet).controlStream(state.spec.id, action));
  }
}

/**
 * Vitess's `Workflow stop|start`: stops the workflow's moving streams where they stand, or lets
 * its stopped ones (by a request, an on_ddl "stop", an error) go on from there. The streams are
 * on the targets until the switch, on the sources (reverse streams) after it.
 */
export async function stopOrStart(rec: WorkflowRecord, action: "stop" | "start", tabletOf: TabletOf): Promise<void> {
  const on = rec.state === "switched" ? rec.sources : rec.state === "running" || rec.state === "created" ? rec.targets : [];
  if (on.length === 0) {
    throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: it has no streams to ${action}`, { state: rec.state });
  }
  for (const { shard, state } of await workflowStreams(streamed(rec), on, tabletOf)) {
    const moving = state.phase === "copy" || state.phase === "running";
    if (action === "stop" && moving) unwrap(await tabletOf(shard.tablet).controlStream(state.spec.id, "stop"));
    if (action === "start" && !moving) unwrap(await tabletOf(shard.tablet).controlStream(state.spec.id, "resume"));
  }
}

/** Brings every stream of `pairs` to its source's head now (the sources refuse writes by then). */
export async function drainAll(
  wf: StreamedWorkflow,
  from: readonly WorkflowShard[],
  to: readonly WorkflowShard[],
  idOf: (wf: string, fromShard: string, toShard: string) => string,
  tabletOf: TabletOf,
): Promise<void> {
  const heads = new Map<string, number>();
  for (const f of from) heads.set(f.shard, await headSeq(tabletOf(f.tablet)));
  await Promise.all(
    overlapping(from, to).map(async ({ from: f, to: t }) => {
      const id = idOf(wf.name, f.shard, t.shard);
      const state = unwrap(await tabletOf(t.tablet).drainStream(id, heads.get(f.shard) ?? 0));
      if (state.phase !== "running") throw new VtError("INTERNAL", `stream ${id} is ${state.phase} after its drain`);
    }),
  );
}

/** Lets the workflow's stopped streams on `on` move again (a switch that failed half-way). */
export async function resumeStreams(wf: StreamedWorkflow, on: readonly WorkflowShard[], tabletOf: TabletOf): Promise<void> {
  for (const { shard, state } of await workflowStreams(wf, on, tabletOf)) {
    if (state.phase === "stopped") unwrap(await tabletOf(shard.tablet).controlStream(state.spec.id, "resume"));
  }
}
