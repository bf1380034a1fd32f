// A Reshard workflow's actions, as the Topology carries them out: create (targets made, streams
// started), show (progress from the streams), vdiff (in chunks), switchtraffic (writes refused at
// the sources, the tail drained straight to the targets, the graph flipped, reverse streams
// started: milliseconds), reversetraffic (the same backwards), complete and cancel. The records
// and the serving-graph flips are the Topology's (workflows.ts); this file drives the tablets.
// One action per workflow at a time; each is idempotent, so a retried step changes nothing more.

import { VtError } from "../contract/errors.ts";
import { unwrap } from "../contract/envelope.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { TabletType, VDiffReport, WorkflowRequest, WorkflowStreamView, WorkflowView } from "../contract/workflow-rpc.ts";
import { checkStreamable, tablePlacements } from "./placements.ts";
import {
  all,
  controlStreams,
  deleteStreams,
  drainAll,
  headSeqs,
  positionSeq,
  resumeStreams,
  startStreams,
  workflowStreams,
  type TabletOf,
  forwardId,
  reverseId,
  isReverse,
  SWITCH_MAX_LAG_MS,
  streamed,
  stopOrStart,
  streamHolders,
} from "./reshard-streams.ts";
import { KeyedSerial } from "./keyed-serial.ts";
import { holdAhead, releaseAhead, releaseStreamHolds } from "./stream-holds.ts";
import { runVDiff } from "./vdiff-run.ts";
import { crashPoint, InjectedCrash, workflowPoint } from "./failpoints.ts";
import { markSwitching, recordSwitchFrom, recoverSwitches } from "./switch-mark.ts";
import { writeJournals } from "./switch-journal.ts";
import { readSide, writeSide, type ReadSide, type WorkflowRecord, type WorkflowShard } from "../contract/workflow-record.ts";
import { progressOf, type ReshardProgress } from "./workflow-progress.ts";
import type { TabletStatus } from "../contract/tablet-rpc.ts";

/** What the controller needs of the Topology: its workflow steps (workflow-steps.ts), each queued and idempotent. */
export interface ReshardPrimitives {
  keyspace(name: string): Promise<KeyspaceGraph>;
  /** Every workflow record (for recovery). */
  records(): Promise<WorkflowRecord[]>;
  /** Asks for `recover` to run again after `ms` (the Topology's alarm). */
  recoverLater(ms: number): Promise<void>;
  /** The record; INVALID_ARGUMENT when there is none. */
  record(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  create(req: WorkflowRequest): Promise<WorkflowRecord>;
  start(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  setProgress(keyspace: string, workflow: string, progress: ReshardProgress): Promise<void>;
  /** Serving shards only; answers their tablets' status as they stand after the change (writes refused or taken). */
  denyWrites(keyspace: string, shards: readonly WorkflowShard[], deny: boolean): Promise<readonly TabletStatus[]>;
  switchWrites(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  reverseWrites(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  complete(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  cancel(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  /** Where the reads go (null: with the writes); a new graph version when that moves them. */
  setReads(keyspace: string, workflow: string, reads: ReadSide | null): Promise<WorkflowRecord>;
}

type ReshardRecord = WorkflowRecord;

/** The binlog heads (tablet → seq) of `shards` in the statuses their tablets answered. */
function headsOf(shards: readonly WorkflowShard[], statuses: readonly TabletStatus[]): Map<string, number> {
  const heads = new Map<string, number>();
  for (const st of statuses) {
    const shard = shards.find((s) => s.shard === st.config?.shard);
    if (shard) heads.set(shard.tablet, positionSeq(st.position));
  }
  return heads;
}

export class ReshardController {
  readonly #topo: ReshardPrimitives;
  readonly #tablet: TabletOf;
  readonly #serial = new KeyedSerial();

  constructor(topo: ReshardPrimitives, tablet: TabletOf) {
    this.#topo = topo;
    this.#tablet = tablet;
  }

  run(req: WorkflowRequest): Promise<WorkflowView | VDiffReport> {
    return this.#serial.run(`${req.keyspace}/${req.workflow}`, async () => {
      if (req.action !== "create") await this.#undoStaleSwitch(await this.#topo.record(req.keyspace, req.workflow));
      switch (req.action) {
        case "create":
          return this.#create(req);
        case "show":
          return this.#view(await this.#topo.record(req.keyspace, req.workflow));
        case "vdiff":
          return this.#vdiff(await this.#topo.record(req.keyspace, req.workflow));
        case "switchtraffic":
          return this.#traffic(await this.#topo.record(req.keyspace, req.workflow), "targets", req.tabletTypes);
        case "reversetraffic":
          return this.#traffic(await this.#topo.record(req.keyspace, req.workflow), "sources", req.tabletTypes);
        case "complete":
          return this.#complete(await this.#topo.record(req.keyspace, req.workflow));
        case "cancel":
          return this.#cancel(await this.#topo.record(req.keyspace, req.workflow));
        case "stop":
        case "start": {
          const rec = await this.#topo.record(req.keyspace, req.workflow);
          await stopOrStart(rec, req.action, this.#tablet);
          return this.#view(rec);
        }
      }
    });
  }

  /**
   * Undoes every switch a restart interrupted (the Topology's alarm calls this): a workflow whose
   * record says a switch is under way while none runs here had its shards refuse writes and no
   * one left to end it. They take writes again and the workflow stays where its record says.
   */
  async recover(): Promise<void> {
    const undo = async (keyspace: string, workflow: string) => this.#undoStaleSwitch(await this.#topo.record(keyspace, workflow));
    await recoverSwitches(await this.#topo.records(), this.#serial, undo, (ms) => this.#topo.recoverLater(ms));
  }

  /** Runs inside the workflow's serial section, so a switch recorded as under way is one that no longer runs. */
  async #undoStaleSwitch(rec: ReshardRecord): Promise<void> {
    const p = progressOf(rec);
    if (!p.switching) return;
    const wf = streamed(rec);
    if (p.switching.direction === "forward" && rec.state === "running") {
      await controlStreams(wf, rec.sources, "delete", isReverse, this.#tablet);
      await resumeStreams(wf, rec.targets, this.#tablet);
      await this.#topo.denyWrites(rec.keyspace, rec.sources, false);
    } else if (p.switching.direction === "reverse" && rec.state === "switched") {
      // Forward streams the reverse started would carry the reverse streams' writes back.
      await controlStreams(wf, rec.targets, "delete", (id) => !isReverse(id), this.#tablet);
      await resumeStreams(wf, rec.sources, this.#tablet);
      await this.#topo.denyWrites(rec.keyspace, rec.targets, false);
    } else if (p.switching.from) {
      // Flipped, and the streams back from the side now serving may not have started: they do,
      // from the heads recorded before the flip, so nothing written there since is missed.
      await this.#startAfterFlip(rec, p.switching.direction, new Map(Object.entries(p.switching.from)), false);
    }
    await this.#topo.setProgress(rec.keyspace, rec.name, { ...progressOf(await this.#topo.record(rec.keyspace, rec.name)), switching: null });
  }

  async #markSwitching(rec: ReshardRecord, direction: "forward" | "reverse" | null): Promise<void> {
    await markSwitching(this.#topo, rec, direction);
  }

  /** Records in the switch's mark where the streams back from the side about to serve start (see ReshardProgress.switching). */
  async #recordFrom(rec: ReshardRecord, heads: ReadonlyMap<string, number>): Promise<void> {
    await recordSwitchFrom(this.#topo, rec, heads);
  }

  /**
   * After a flip: the journal goes into the binlogs of the side that stopped serving (VStream
   * follows it, switch-journal.ts), and the streams from the side that now serves start at its
   * heads as they stood before the flip (`heads`); after a reverse the reverse streams, drained,
   * are forgotten. `absent`: the
   * caller knows none of those streams exists yet.
   */
  async #startAfterFlip(rec: ReshardRecord, direction: "forward" | "reverse", heads: ReadonlyMap<string, number>, absent: boolean): Promise<void> {
    const wf = streamed(rec);
    const tables = tablePlacements(await this.#topo.keyspace(rec.keyspace));
    const [from, to] = direction === "forward" ? [rec.sources, rec.targets] : [rec.targets, rec.sources];
    const journal = writeJournals({ workflow: rec.name, direction, keyspace: rec.keyspace, tables: null, from, to, heads }, this.#tablet);
    if (direction === "forward") {
      await all([journal, startStreams(wf, rec.targets, rec.sources, tables, false, reverseId, this.#tablet, { heads, absent })]);
      return;
    }
    await all([journal, startStreams(wf, rec.sources, rec.targets, tables, false, forwardId, this.#tablet, { heads, absent })]);
    await deleteStreams(wf, rec.targets, rec.sources, reverseId, this.#tablet);
  }

  /**
   * switchtraffic (`to` the targets) or reversetraffic (back to the sources) for the tablet types
   * asked: "primary" moves the writes (#switch / #reverse, milliseconds of refused writes),
   * "replica"/"rdonly" move the reads (a graph version, no pause); both by default. Moving the
   * writes alone pins the reads where they are; moving both leaves the reads following the writes.
   */
  async #traffic(rec: ReshardRecord, to: ReadSide, types: readonly TabletType[] | undefined): Promise<WorkflowView> {
    const writes = types === undefined || types.includes("primary");
    const reads = types === undefined || types.some((t) => t !== "primary");
    if (!writes) return this.#switchReads(rec, to);
    // Where the reads should be once the writes moved: with them (null), or pinned where they are.
    const pin: ReadSide | null = reads ? (rec.reads === to ? to : null) : readSide(rec);
    if ((rec.reads ?? null) !== pin && (rec.state === "running" || rec.state === "switched")) {
      rec = await this.#topo.setReads(rec.keyspace, rec.name, pin);
    }
    return to === "targets" ? this.#switch(rec) : this.#reverse(rec);
  }

  /** Moves the reads alone (Vitess's `--tablet-types=replica,rdonly`): to the targets only once their streams caught up. */
  async #switchReads(rec: ReshardRecord, to: ReadSide): Promise<WorkflowView> {
    if (rec.state !== "running" && rec.state !== "switched") {
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: only a running or switched workflow switches reads`, {
        state: rec.state,
      });
    }
    if (readSide(rec) === to) return this.#view(rec);
    if (to === "targets" && rec.state === "running") await this.#ready(rec);
    // Reads on the side that takes the writes follow them (null); on the other side they are pinned.
    const next = writeSide(rec) === to ? null : to;
    return this.#view(await this.#topo.setReads(rec.keyspace, rec.name, next));
  }

  async #create(req: WorkflowRequest): Promise<WorkflowView> {
    const ks: KeyspaceGraph = await this.#topo.keyspace(req.keyspace);
    checkStreamable(ks);
    const rec = await this.#topo.create(req);
    if (rec.state === "running" || rec.state === "created") {
      let rows = 0;
      for (const s of rec.sources) rows += unwrap(await this.#tablet(s.tablet).status()).rowCount;
      const tables = tablePlacements(await this.#topo.keyspace(req.keyspace));
      await startStreams(streamed(rec), rec.sources, rec.targets, tables, true, forwardId, this.#tablet);
      const p = progressOf(rec);
      if (p.rowsTotal === null) await this.#topo.setProgress(rec.keyspace, rec.name, { ...p, rowsTotal: rows });
      await this.#topo.start(rec.keyspace, rec.name);
    }
    return this.#view(await this.#topo.record(req.keyspace, req.workflow));
  }

  async #view(rec: ReshardRecord): Promise<WorkflowView> {
    const wf = streamed(rec);
    const on = streamHolders(rec);
    const streams: WorkflowStreamView[] = (await workflowStreams(wf, on, this.#tablet)).map(({ shard, state }) => ({
      id: state.spec.id,
      target: shard.shard,
      source: state.spec.sourceShard,
      phase: state.phase,
      rowsCopied: state.rowsCopied,
      lagMs: state.lagMs,
      message: state.message,
    }));
    return {
      keyspace: rec.keyspace,
      workflow: rec.name,
      kind: "reshard",
      state: rec.state,
      sources: rec.sources.map((s) => ({ shard: s.shard, tablet: s.tablet })),
      targets: rec.targets.map((s) => ({ shard: s.shard, tablet: s.tablet })),
      onDdl: rec.onDdl,
      autoSwitch: rec.autoSwitch,
      reads: readSide(rec),
      writes: writeSide(rec),
      streams,
      rowsCopied: streams.reduce((n, s) => n + s.rowsCopied, 0),
      rowsTotal: progressOf(rec).rowsTotal,
      lagMs: streams.reduce((n, s) => Math.max(n, s.lagMs), 0),
      ...(progressOf(rec).vdiff ? { vdiff: progressOf(rec).vdiff as VDiffReport } : {}),
    };
  }

  async #vdiff(rec: ReshardRecord): Promise<VDiffReport> {
    if (rec.state !== "running")
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: VDiff compares a running workflow's sources and targets`, {
        state: rec.state,
      });
    const p = progressOf(rec);
    const report = await runVDiff(rec, p.vdiffState, this.#tablet);
    await this.#topo.setProgress(rec.keyspace, rec.name, { ...p, vdiff: report.report, vdiffState: report.state });
    return report.report;
  }

  /** Refuses a switch before every stream has copied and caught up. */
  async #ready(rec: ReshardRecord): Promise<void> {
    const streams = await workflowStreams(streamed(rec), rec.targets, this.#tablet);
    const behind = streams.find(({ state }) => state.phase !== "running" || state.lagMs > SWITCH_MAX_LAG_MS);
    if (streams.length === 0 || behind) {
      const why = behind
        ? `stream ${behind.state.spec.id} is ${behind.state.phase === "running" ? `${behind.state.lagMs} ms behind` : behind.state.phase}`
        : "it has no streams";
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} cannot switch yet: ${why}; wait for the copy and catch-up (vtctl reshard show)`, {
        state: rec.state,
      });
    }
  }

  /** Whether the workflow's graph flip to `state` happened (when the record cannot be read, it may have). */
  async #flipped(rec: ReshardRecord, state: "switched" | "running"): Promise<boolean> {
    return this.#topo.record(rec.keyspace, rec.name).then(
      (now) => now.state === state,
      () => true,
    );
  }

  async #switch(rec: ReshardRecord): Promise<WorkflowView> {
    // A switch that stopped after its flip is finished by its retry: every tablet learns the graph.
    if (rec.state === "switched") return this.#view(await this.#topo.switchWrites(rec.keyspace, rec.name));
    if (rec.state !== "running")
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: only a running workflow switches traffic`, { state: rec.state });
    await this.#ready(rec);
    const wf = streamed(rec);
    await holdAhead(wf, rec.targets, rec.sources, reverseId, this.#tablet);
    await this.#markSwitching(rec, "forward");
    const t0 = Date.now();
    const denied = await this.#topo.denyWrites(rec.keyspace, rec.sources, true);
    crashPoint("switch-denied");
    let from: Map<string, number>;
    try {
      // To the heads the sources answered as they stopped taking writes; each forward stream is
      // stopped in its drain's step: nothing more comes from the sources, and stopped, the forward
      // streams cannot carry the reverse streams' changes back.
      // The targets take no writes before the flip and log nothing a stream applies (the binlog is
      // muted for it), so their heads, read alongside the drain, are where the reverse streams start.
      [, from] = await Promise.all([
        drainAll(wf, rec.sources, rec.targets, forwardId, this.#tablet, { heads: headsOf(rec.sources, denied), stop: true }),
        headSeqs(rec.targets, this.#tablet),
      ]);
      crashPoint("switch-drained");
      await this.#recordFrom(rec, from);
      workflowPoint("switch:drained");
      await this.#topo.switchWrites(rec.keyspace, rec.name);
      crashPoint("switch-flipped");
      workflowPoint("switch:flipped");
    } catch (e) {
      if (e instanceof InjectedCrash) throw e; // a crash leaves its mess to recover()
      // After the flip the targets serve: undone, their writes would be lost. The mark stays, so
      // the retry (or the Topology's alarm) starts the reverse streams from the heads it records.
      if (await this.#flipped(rec, "switched")) throw e;
      await controlStreams(wf, rec.sources, "delete", isReverse, this.#tablet).catch(() => undefined);
      await releaseAhead(wf, rec.targets, rec.sources, reverseId, this.#tablet).catch(() => undefined);
      await resumeStreams(wf, rec.targets, this.#tablet).catch(() => undefined);
      await this.#topo.denyWrites(rec.keyspace, rec.sources, false);
      await this.#markSwitching(rec, null);
      throw e;
    }
    const pauseMs = Date.now() - t0;
    await this.#startAfterFlip(rec, "forward", from, false);
    await this.#markSwitching(rec, null);
    return { ...(await this.#view(await this.#topo.record(rec.keyspace, rec.name))), pauseMs };
  }

  async #reverse(rec: ReshardRecord): Promise<WorkflowView> {
    if (rec.state === "running" && rec.switchedAt !== null) {
      // A reverse that stopped after its flip is finished by its retry (or this is a repeat).
      const done = await this.#topo.reverseWrites(rec.keyspace, rec.name);
      await deleteStreams(streamed(rec), rec.targets, rec.sources, reverseId, this.#tablet);
      return this.#view(done);
    }
    if (rec.state !== "switched")
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: only a switched workflow reverses traffic`, { state: rec.state });
    const wf = streamed(rec);
    // The forward streams, stopped since the switch, start again after the flip from the sources'
    // heads (what the targets hold is the same); forgotten before the targets refuse writes, that
    // is no part of the write pause.
    await deleteStreams(wf, rec.sources, rec.targets, forwardId, this.#tablet);
    await holdAhead(wf, rec.sources, rec.targets, forwardId, this.#tablet);
    await this.#markSwitching(rec, "reverse");
    const t0 = Date.now();
    const denied = await this.#topo.denyWrites(rec.keyspace, rec.targets, true);
    let from: Map<string, number>;
    try {
      // The sources take no writes before the flip and log nothing a stream applies: their heads,
      // read alongside the drain, are where the forward streams start.
      [, from] = await Promise.all([
        drainAll(wf, rec.targets, rec.sources, reverseId, this.#tablet, { heads: headsOf(rec.targets, denied), stop: true }),
        headSeqs(rec.sources, this.#tablet),
      ]);
      await this.#recordFrom(rec, from);
      crashPoint("reverse-drained");
      workflowPoint("reverse:drained");
      await this.#topo.reverseWrites(rec.keyspace, rec.name);
      crashPoint("reverse-flipped");
      workflowPoint("reverse:flipped");
    } catch (e) {
      if (e instanceof InjectedCrash) throw e; // a crash leaves its mess to recover()
      // Flipped: the mark stays, so the retry (or the Topology's alarm) starts the forward streams.
      if (await this.#flipped(rec, "running")) throw e;
      // Still switched: forward streams started from the sources' heads would carry the reverse
      // streams' writes back to the targets (an echo that can undo a newer write there); the
      // retry starts them again.
      await controlStreams(wf, rec.targets, "delete", (id) => !isReverse(id), this.#tablet).catch(() => undefined);
      await releaseAhead(wf, rec.sources, rec.targets, forwardId, this.#tablet).catch(() => undefined);
      await resumeStreams(wf, rec.sources, this.#tablet).catch(() => undefined);
      await this.#topo.denyWrites(rec.keyspace, rec.targets, false);
      await this.#markSwitching(rec, null);
      throw e;
    }
    const pauseMs = Date.now() - t0;
    await this.#startAfterFlip(rec, "reverse", from, true);
    await this.#markSwitching(rec, null);
    return { ...(await this.#view(await this.#topo.record(rec.keyspace, rec.name))), pauseMs };
  }

  async #complete(rec: ReshardRecord): Promise<WorkflowView> {
    if (rec.state !== "switched" && rec.state !== "completed") {
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: complete it after switchtraffic (or cancel it)`, { state: rec.state });
    }
    if (rec.state === "switched" && readSide(rec) !== "targets") {
      throw new VtError(
        "INVALID_ARGUMENT",
        `workflow ${rec.name}: the sources still serve its reads; switch them first (switchtraffic --tablet-types=replica,rdonly), then complete`,
        { state: rec.state, reads: readSide(rec) },
      );
    }
    const wf = streamed(rec);
    if (rec.state === "switched") {
      await controlStreams(wf, rec.sources, "delete", () => true, this.#tablet);
      await controlStreams(wf, rec.targets, "delete", () => true, this.#tablet);
    }
    await this.#topo.complete(rec.keyspace, rec.name);
    await releaseStreamHolds(wf, this.#tablet);
    return this.#view(await this.#topo.record(rec.keyspace, rec.name));
  }

  async #cancel(rec: ReshardRecord): Promise<WorkflowView> {
    if (rec.state === "switched" || rec.state === "completed") {
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: reverse the traffic first, then cancel`, { state: rec.state });
    }
    if (rec.state === "running" && readSide(rec) === "targets") {
      throw new VtError(
        "INVALID_ARGUMENT",
        `workflow ${rec.name}: the targets serve its reads; move them back first (reversetraffic --tablet-types=replica,rdonly), then cancel`,
        { state: rec.state, reads: "targets" },
      );
    }
    if (rec.state !== "cancelled") await controlStreams(streamed(rec), rec.targets, "delete", () => true, this.#tablet);
    await this.#topo.cancel(rec.keyspace, rec.name);
    await releaseStreamHolds(streamed(rec), this.#tablet);
    return this.#view(await this.#topo.record(rec.keyspace, rec.name));
  }
}
