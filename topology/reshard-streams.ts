// The streams of a Reshard workflow, driven from the Topology through the tablets' RPC surface:
// one stream per (source shard, overlapping target shard), living on the target. Each function
// is one idempotent step: running it again after it (or part of it) happened changes nothing more.

import { unwrap } from "../contract/envelope.ts";
import { VtError } from "../contract/errors.ts";
import type { OnDdl, StreamFilter, StreamSpec, StreamState, TablePlacement } from "../contract/stream-rpc.ts";
import type { TabletRpc } from "../contract/tablet-rpc.ts";
import { keyRangesIntersect, parseKeyRange } from "./keyrange.ts";
import { workflowHook } from "./failpoints.ts";
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

/**
 * Waits for every call to settle, then throws the first failure: a step's tablet calls run at once,
 * but none outlives the step, so what a caller does after a failure (undo a switch) never races a
 * call still in flight (a drain that would stop its stream after the undo resumed it).
 */
export async function all<T>(calls: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** The seq of a binlog position (`…:<seq>`). */
export function positionSeq(position: string): number {
  return Number(position.slice(position.lastIndexOf(":") + 1));
}

/** The binlog heads of `shards`' tablets (tablet → seq), read in parallel; those in `known` are not asked again. */
export async function headSeqs(shards: readonly WorkflowShard[], tabletOf: TabletOf, known?: ReadonlyMap<string, number>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const ask = [...new Set(shards.map((s) => s.tablet))].filter((t) => {
    const seq = known?.get(t);
    if (seq !== undefined) out.set(t, seq);
    return seq === undefined;
  });
  await all(ask.map(async (t) => out.set(t, positionSeq(unwrap(await tabletOf(t).status()).position))));
  return out;
}

/** What a switch already knows of the tablets it drives, so that it does not ask twice inside its write pause. */
export interface KnownHeads {
  /** Binlog heads (tablet → seq) read after the tablets stopped taking writes. */
  readonly heads?: ReadonlyMap<string, number>;
}

/**
 * Starts the streams moving rows from `from` to `to` (each filtered by its `to` shard's range),
 * `copy` first or following the binlog from the source's head. A stream that exists is left
 * alone (resumed); with `absent`, the caller has just deleted them and none is looked for.
 * Each tablet is asked once, all of them at once.
 */
export async function startStreams(
  wf: StreamedWorkflow,
  from: readonly WorkflowShard[],
  to: readonly WorkflowShard[],
  tables: readonly TablePlacement[],
  copy: boolean,
  idOf: (wf: string, fromShard: string, toShard: string) => string,
  tabletOf: TabletOf,
  opts: KnownHeads & { readonly absent?: boolean } = {},
): Promise<void> {
  const pairs = overlapping(from, to);
  const hosts = [...new Set(pairs.map((p) => p.to.tablet))];
  const listed = opts.absent
    ? Promise.resolve(new Map<string, Set<string>>())
    : all(hosts.map(async (h) => [h, new Set(unwrap(await tabletOf(h).streams()).map((s) => s.spec.id))] as const)).then((entries) => new Map(entries));
  const heads = headSeqs(
    pairs.map((p) => p.from),
    tabletOf,
    opts.heads,
  );
  await all<unknown>([listed, heads]);
  const existing = await listed;
  const seqs = await heads;
  await workflowHook("streams:heads-read");
  await all(
    pairs.map(async ({ from: f, to: t }) => {
      const target = tabletOf(t.tablet);
      const id = idOf(wf.name, f.shard, t.shard);
      if (existing.get(t.tablet)?.has(id)) {
        unwrap(await target.controlStream(id, "resume"));
        return;
      }
      const spec: StreamSpec = {
        id,
        workflow: wf.name,
        targetTablet: t.tablet,
        sourceTablet: f.tablet,
        sourceShard: f.shard,
        filter: { keyRange: t.shard, tables } satisfies StreamFilter,
        onDdl: wf.onDdl,
        start: { seq: seqs.get(f.tablet) ?? 0, copy: copy ? { table: 0, after: null } : null },
      };
      unwrap(await target.startStream(spec));
    }),
  );
}

/** Every stream of the workflow on `on` (its targets, or its sources for reverse streams), the tablets asked at once, in `on`'s order. */
export async function workflowStreams(
  wf: StreamedWorkflow,
  on: readonly WorkflowShard[],
  tabletOf: TabletOf,
): Promise<{ shard: WorkflowShard; state: StreamState }[]> {
  const lists = await all(on.map(async (s) => unwrap(await tabletOf(s.tablet).streams())));
  return on.flatMap((shard, i) => (lists[i] ?? []).filter((state) => state.spec.workflow === wf.name).map((state) => ({ shard, state })));
}

/** Stops or forgets the workflow's streams on `on` whose ids `pick` selects. */
export async function controlStreams(
  wf: StreamedWorkflow,
  on: readonly WorkflowShard[],
  action: "stop" | "delete",
  pick: (id: string) => boolean,
  tabletOf: TabletOf,
): Promise<void> {
  const picked = (await workflowStreams(wf, on, tabletOf)).filter(({ state }) => pick(state.spec.id));
  await all(picked.map(async ({ shard, state }) => unwrap(await tabletOf(shard.tablet).controlStream(state.spec.id, action))));
}

/** The shards holding a workflow's streams: the targets until the switch, the sources (reverse streams) after it, none once closed. */
export function streamHolders(rec: WorkflowRecord): readonly WorkflowShard[] {
  return rec.state === "switched" ? rec.sources : rec.state === "running" || rec.state === "created" ? rec.targets : [];
}

/**
 * Vitess's `Workflow stop|start`: stops the workflow's moving streams where they stand, or lets
 * its stopped ones (by a request, an on_ddl "stop", an error) go on from there. The streams are
 * on the targets until the switch, on the sources (reverse streams) after it.
 */
export async function stopOrStart(rec: WorkflowRecord, action: "stop" | "start", tabletOf: TabletOf): Promise<void> {
  const on = streamHolders(rec);
  if (on.length === 0) {
    throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: it has no streams to ${action}`, { state: rec.state });
  }
  for (const { shard, state } of await workflowStreams(streamed(rec), on, tabletOf)) {
    const moving = state.phase === "copy" || state.phase === "running";
    if (action === "stop" && moving) unwrap(await tabletOf(shard.tablet).controlStream(state.spec.id, "stop"));
    if (action === "start" && !moving) unwrap(await tabletOf(shard.tablet).controlStream(state.spec.id, "resume"));
  }
}

/** Forgets the streams from `from` to `to` by their ids, without listing them first (a stream already gone is no error). */
export async function deleteStreams(
  wf: StreamedWorkflow,
  from: readonly WorkflowShard[],
  to: readonly WorkflowShard[],
  idOf: (wf: string, fromShard: string, toShard: string) => string,
  tabletOf: TabletOf,
): Promise<void> {
  await all(overlapping(from, to).map(async ({ from: f, to: t }) => unwrap(await tabletOf(t.tablet).controlStream(idOf(wf.name, f.shard, t.shard), "delete"))));
}

/**
 * Brings every stream from `from` to `to` to its source's head now (the sources refuse writes by
 * then), all at once. With `stop`, each stream is stopped in the same tablet step as its drain.
 */
export async function drainAll(
  wf: StreamedWorkflow,
  from: readonly WorkflowShard[],
  to: readonly WorkflowShard[],
  idOf: (wf: string, fromShard: string, toShard: string) => string,
  tabletOf: TabletOf,
  opts: KnownHeads & { readonly stop?: boolean } = {},
): Promise<void> {
  const heads = await headSeqs(from, tabletOf, opts.heads);
  const expect = opts.stop ? "stopped" : "running";
  await all(
    overlapping(from, to).map(async ({ from: f, to: t }) => {
      const id = idOf(wf.name, f.shard, t.shard);
      const target = tabletOf(t.tablet);
      const until = heads.get(f.tablet) ?? 0;
      const state = unwrap(await (opts.stop ? target.drainStream(id, until, "stop") : target.drainStream(id, until)));
      if (state.phase !== expect) throw new VtError("INTERNAL", `stream ${id} is ${state.phase} after its drain`);
    }),
  );
}

/** Lets the workflow's stopped streams on `on` move again (a switch that failed half-way). */
export async function resumeStreams(wf: StreamedWorkflow, on: readonly WorkflowShard[], tabletOf: TabletOf): Promise<void> {
  const stopped = (await workflowStreams(wf, on, tabletOf)).filter(({ state }) => state.phase === "stopped");
  await all(stopped.map(async ({ shard, state }) => unwrap(await tabletOf(shard.tablet).controlStream(state.spec.id, "resume"))));
}
