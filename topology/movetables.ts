// A MoveTables workflow's actions, as the Topology carries them out (Vitess's MoveTables): tables
// of a source keyspace move into a target keyspace on the resharding streams, one per (source
// shard, target shard), each carrying only those tables, placed by the target's vschema. The
// routing rules (workflow-record.ts routingRules) send the tables' SQL to the source until
// switchtraffic, to the target after, whichever keyspace the client names. switchtraffic: the
// source's tablets refuse writes to the tables, the tail is drained, reverse streams start, the
// rules flip; reversetraffic undoes it; complete drops the tables from the source; cancel drops
// the copies from the target. One action per workflow at a time; each is idempotent.

import { unwrap } from "../contract/envelope.ts";
import { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { DdlRequest } from "../contract/topology-rpc.ts";
import type { WorkflowRecord } from "../contract/workflow-record.ts";
import type { VDiffReport, WorkflowRequest, WorkflowStreamView, WorkflowView } from "../contract/workflow-rpc.ts";
import { missingDdl, missingIndexes, sourcePlacements, targetPlacements } from "./movetables-plan.ts";
import { own } from "./own.ts";
import { quoteIdent } from "../contract/sql-values.ts";
import {
  controlStreams,
  deleteStreams,
  drainAll,
  headSeqs,
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
import { progressOf, type ReshardProgress } from "./workflow-progress.ts";
import { crashPoint, InjectedCrash, workflowPoint } from "./failpoints.ts";
import { arrivalId } from "./movetables-rejoin.ts";
import { markSwitching, recordSwitchFrom, recoverSwitches } from "./switch-mark.ts";
import { writeJournals } from "./switch-journal.ts";
import { runVDiff } from "./vdiff-run.ts";

/** What the controller needs of the Topology: its steps (movetables-steps.ts), each queued and idempotent. */
export interface MoveTablesPrimitives {
  keyspace(name: string): Promise<KeyspaceGraph>;
  /** Every MoveTables record (for recovery). */
  records(): Promise<WorkflowRecord[]>;
  /** Asks for `recover` to run again within `ms` (the Topology's alarm). */
  recoverLater(ms: number): Promise<void>;
  record(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  create(req: WorkflowRequest): Promise<WorkflowRecord>;
  /** A DDL through the Topology's DDL path on every shard of a keyspace (the workflow's own, so not limited by it). */
  ddl(req: DdlRequest): Promise<void>;
  start(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  setProgress(keyspace: string, workflow: string, progress: ReshardProgress): Promise<void>;
  denyTables(keyspace: string, workflow: string, side: "source" | "target", deny: boolean): Promise<void>;
  route(keyspace: string, workflow: string, to: "switched" | "running"): Promise<WorkflowRecord>;
  finish(keyspace: string, workflow: string, state: "completed" | "cancelled"): Promise<WorkflowRecord>;
}

export class MoveTablesController {
  readonly #topo: MoveTablesPrimitives;
  readonly #tablet: TabletOf;
  readonly #serial = new KeyedSerial();

  constructor(topo: MoveTablesPrimitives, tablet: TabletOf) {
    this.#topo = topo;
    this.#tablet = tablet;
  }

  run(req: WorkflowRequest): Promise<WorkflowView | VDiffReport> {
    return this.#serial.run(`${req.keyspace}/${req.workflow}`, async () => {
      if (req.action === "create") return this.#create(req);
      await this.#undoStaleSwitch(await this.#topo.record(req.keyspace, req.workflow));
      const rec = await this.#topo.record(req.keyspace, req.workflow);
      switch (req.action) {
        case "show":
          return this.#view(rec);
        case "vdiff":
          return this.#vdiff(rec);
        case "switchtraffic":
        case "reversetraffic":
          // One MoveTables switch (or reverse) at a time, none while another's is left unfinished
          // on a keyspace they share: each one's markers and journals are written before the next
          // begins, so a VStream never meets two of them crossed (each side waiting for the other).
          return this.#serial.run("movetables-switch", async () => {
            const now = await this.#topo.record(req.keyspace, req.workflow);
            await this.#noOtherSwitch(now);
            return req.action === "switchtraffic" ? this.#switch(now) : this.#reverse(now);
          });
        case "complete":
          return this.#complete(rec);
        case "cancel":
          return this.#cancel(rec);
        case "stop":
        case "start":
          await stopOrStart(rec, req.action, this.#tablet);
          return this.#view(rec);
      }
    });
  }

  /** Refuses (NOT_SERVING, retryable) while another MoveTables sharing a keyspace with `rec` has a switch left unfinished (the alarm finishes it). */
  async #noOtherSwitch(rec: WorkflowRecord): Promise<void> {
    const mine = new Set([rec.keyspace, rec.sourceKeyspace]);
    for (const o of await this.#topo.records()) {
      if (o.keyspace === rec.keyspace && o.name === rec.name) continue;
      if (!progressOf(o).switching || !(mine.has(o.keyspace) || mine.has(o.sourceKeyspace))) continue;
      throw new VtError(
        "NOT_SERVING",
        `workflow ${rec.name}: MoveTables ${o.keyspace}.${o.name} has a switch left unfinished on a keyspace they share; its next action or the Topology's alarm (within about a minute) finishes it: retry then`,
        { workflow: o.name },
      );
    }
  }

  async #keyspaces(rec: WorkflowRecord): Promise<{ source: KeyspaceGraph; target: KeyspaceGraph }> {
    return { source: await this.#topo.keyspace(rec.sourceKeyspace ?? ""), target: await this.#topo.keyspace(rec.keyspace) };
  }

  async #create(req: WorkflowRequest): Promise<WorkflowView> {
    const rec = await this.#topo.create(req);
    if (rec.state === "created" || rec.state === "running") {
      const { source, target } = await this.#keyspaces(rec);
      for (const d of missingDdl(source, target, rec.tables ?? [])) {
        await this.#topo.ddl({ keyspace: rec.keyspace, sql: d.sql, ...(d.addTable ? { addTable: d.addTable } : {}) });
      }
      // The tables' secondary indexes, before any row arrives (each is then kept as rows are applied).
      const made = await this.#keyspaces(rec);
      for (const sql of missingIndexes(made.source, made.target, rec.tables ?? [])) await this.#topo.ddl({ keyspace: rec.keyspace, sql });
      const after = await this.#keyspaces(rec);
      let rows = 0;
      for (const s of rec.sources) rows += unwrap(await this.#tablet(s.tablet).status()).rowCount;
      const tables = targetPlacements(after.source, after.target, rec.tables ?? []);
      await startStreams(streamed(rec), rec.sources, rec.targets, tables, true, forwardId, this.#tablet);
      const p = progressOf(rec);
      if (p.rowsTotal === null) await this.#topo.setProgress(rec.keyspace, rec.name, { ...p, rowsTotal: rows });
      await this.#topo.start(rec.keyspace, rec.name);
    }
    return this.#view(await this.#topo.record(rec.keyspace, rec.name));
  }

  async #view(rec: WorkflowRecord): Promise<WorkflowView> {
    const on = streamHolders(rec);
    const streams: WorkflowStreamView[] = (await workflowStreams(streamed(rec), on, this.#tablet)).map(({ shard, state }) => ({
      id: state.spec.id,
      target: shard.shard,
      source: state.spec.sourceShard,
      phase: state.phase,
      rowsCopied: state.rowsCopied,
      lagMs: state.lagMs,
      message: state.message,
    }));
    const p = progressOf(rec);
    return {
      keyspace: rec.keyspace,
      workflow: rec.name,
      kind: "movetables",
      sourceKeyspace: rec.sourceKeyspace ?? "",
      tables: rec.tables ?? [],
      state: rec.state,
      sources: rec.sources.map((s) => ({ shard: s.shard, tablet: s.tablet })),
      targets: rec.targets.map((s) => ({ shard: s.shard, tablet: s.tablet })),
      onDdl: rec.onDdl,
      autoSwitch: rec.autoSwitch,
      streams,
      rowsCopied: streams.reduce((n, s) => n + s.rowsCopied, 0),
      rowsTotal: p.rowsTotal,
      lagMs: streams.reduce((n, s) => Math.max(n, s.lagMs), 0),
      ...(p.vdiff ? { vdiff: p.vdiff } : {}),
    };
  }

  async #vdiff(rec: WorkflowRecord): Promise<VDiffReport> {
    if (rec.state !== "running")
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: VDiff compares a running workflow's sources and targets`, {
        state: rec.state,
      });
    const p = progressOf(rec);
    const report = await runVDiff(rec, p.vdiffState, this.#tablet);
    await this.#topo.setProgress(rec.keyspace, rec.name, { ...p, vdiff: report.report, vdiffState: report.state });
    return report.report;
  }

  async #ready(rec: WorkflowRecord): Promise<void> {
    const streams = (await workflowStreams(streamed(rec), rec.targets, this.#tablet)).filter(({ state }) => !isReverse(state.spec.id));
    const behind = streams.find(({ state }) => state.phase !== "running" || state.lagMs > SWITCH_MAX_LAG_MS);
    if (streams.length === 0 || behind) {
      const why = behind
        ? `stream ${behind.state.spec.id} is ${behind.state.phase === "running" ? `${behind.state.lagMs} ms behind` : behind.state.phase}`
        : "it has no streams";
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} cannot switch yet: ${why}; wait for the copy and catch-up (vtctl movetables show)`, {
        state: rec.state,
      });
    }
  }

  /**
   * Undoes every MoveTables switch a stop or restart of the Topology interrupted (the Topology's
   * alarm calls this): see #undoStaleSwitch.
   */
  async recover(): Promise<void> {
    await recoverSwitches(
      await this.#topo.records(),
      this.#serial,
      async (ks, wf) => this.#undoStaleSwitch(await this.#topo.record(ks, wf)),
      (ms) => this.#topo.recoverLater(ms),
    );
  }

  /**
   * Runs inside the workflow's serial section, so a switch recorded as under way is one that no
   * longer runs. Before its routing flip it is undone as a failed one is (the side that refused
   * writes takes them again, the streams go back to where they were); after the flip it is
   * finished (every tablet of both keyspaces learns the rules and denied tables). Either way no
   * table is left refusing writes on the side that serves it.
   */
  async #undoStaleSwitch(rec: WorkflowRecord): Promise<void> {
    const p = progressOf(rec);
    if (!p.switching) return;
    const wf = streamed(rec);
    if (p.switching.direction === "forward") {
      if (rec.state === "running") {
        await controlStreams(wf, rec.sources, "delete", isReverse, this.#tablet);
        await resumeStreams(wf, rec.targets, this.#tablet);
        await this.#topo.denyTables(rec.keyspace, rec.name, "source", false);
      } else if (rec.state === "switched") {
        await this.#topo.route(rec.keyspace, rec.name, "switched");
        await this.#journal(rec, "forward", p.switching.from);
      }
    } else if (rec.state === "switched") {
      await controlStreams(wf, rec.targets, "delete", (id) => !isReverse(id), this.#tablet);
      await resumeStreams(wf, rec.sources, this.#tablet);
      await this.#topo.denyTables(rec.keyspace, rec.name, "target", false);
    } else if (rec.state === "running" && rec.switchedAt !== null) {
      await this.#topo.route(rec.keyspace, rec.name, "running");
      await this.#journal(rec, "reverse", p.switching.from);
      await controlStreams(wf, rec.sources, "delete", isReverse, this.#tablet);
    }
    await markSwitching(this.#topo, rec, null);
  }

  /**
   * After a flip: the journal for VStream (switch-journal.ts) into the binlogs of the side that
   * stopped serving the tables, naming the other side's heads recorded before the flip (none
   * recorded: a switch interrupted before this code recorded them, which leaves no journal).
   */
  async #journal(rec: WorkflowRecord, direction: "forward" | "reverse", heads: Readonly<Record<string, number>> | undefined): Promise<void> {
    if (!heads) return;
    const forward = direction === "forward";
    // The flip's config push had the targets write arrival markers (movetables-rejoin.ts arrivalsOf).
    const now = forward && progressOf(rec).arrivals === true ? await this.#topo.record(rec.keyspace, rec.name) : null;
    await writeJournals(
      {
        workflow: rec.name,
        direction,
        keyspace: forward ? rec.keyspace : (rec.sourceKeyspace ?? rec.keyspace),
        tables: rec.tables ?? [],
        from: forward ? rec.sources : rec.targets,
        to: forward ? rec.targets : rec.sources,
        heads: new Map(Object.entries(heads)),
        ...(now !== null && now.switchedAt !== null ? { arrivalId: arrivalId(now.name, now.switchedAt) } : {}),
      },
      this.#tablet,
    );
  }

  async #switch(rec: WorkflowRecord): Promise<WorkflowView> {
    // Switched already (maybe by a call whose syncs failed after the flip): the retry finishes the syncs.
    if (rec.state === "switched") return this.#view(await this.#topo.route(rec.keyspace, rec.name, "switched"));
    if (rec.state !== "running")
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: only a running workflow switches traffic`, { state: rec.state });
    await this.#ready(rec);
    const wf = streamed(rec);
    const { source, target } = await this.#keyspaces(rec);
    const back = sourcePlacements(source, target, rec.tables ?? []);
    await holdAhead(wf, rec.targets, rec.sources, reverseId, this.#tablet);
    await markSwitching(this.#topo, rec, "forward");
    const t0 = Date.now();
    let from: Map<string, number>;
    try {
      await this.#topo.denyTables(rec.keyspace, rec.name, "source", true);
      crashPoint("switch-denied");
      await drainAll(wf, rec.sources, rec.targets, forwardId, this.#tablet);
      crashPoint("switch-drained");
      await controlStreams(wf, rec.targets, "stop", (id) => !isReverse(id), this.#tablet);
      await startStreams(wf, rec.targets, rec.sources, back, false, reverseId, this.#tablet);
      // The targets take no writes of the tables before the flip: their heads now are where a
      // VStream following the tables goes on (the journal after the flip names them).
      from = await headSeqs(rec.targets, this.#tablet);
      await recordSwitchFrom(this.#topo, rec, from);
      workflowPoint("switch:drained");
      await this.#topo.route(rec.keyspace, rec.name, "switched");
      crashPoint("switch-flipped");
      workflowPoint("switch:flipped");
    } catch (e) {
      if (e instanceof InjectedCrash) throw e; // a crash leaves its mess to the next action or the alarm
      // Flipped before the failure (or unknown): nothing is undone; the mark stays, so the next
      // action (or the alarm) finishes it: the syncs and the journal.
      if (await this.#flipped(rec, "switched")) throw e;
      await controlStreams(wf, rec.sources, "delete", isReverse, this.#tablet).catch(() => undefined);
      await releaseAhead(wf, rec.targets, rec.sources, reverseId, this.#tablet).catch(() => undefined);
      await resumeStreams(wf, rec.targets, this.#tablet).catch(() => undefined);
      await this.#topo.denyTables(rec.keyspace, rec.name, "source", false);
      await markSwitching(this.#topo, rec, null);
      throw e;
    }
    const pauseMs = Date.now() - t0;
    await this.#journal(rec, "forward", Object.fromEntries(from));
    await markSwitching(this.#topo, rec, null);
    return { ...(await this.#view(await this.#topo.record(rec.keyspace, rec.name))), pauseMs };
  }

  /** Whether the workflow's routing flip to `state` happened (when the record cannot be read, it may have). */
  async #flipped(rec: WorkflowRecord, state: "switched" | "running"): Promise<boolean> {
    return this.#topo.record(rec.keyspace, rec.name).then(
      (now) => now.state === state,
      () => true,
    );
  }

  async #reverse(rec: WorkflowRecord): Promise<WorkflowView> {
    if (rec.state === "running" && rec.switchedAt !== null) {
      // A reverse that stopped after its flip is finished by its retry (or this is a repeat).
      const done = await this.#topo.route(rec.keyspace, rec.name, "running");
      await controlStreams(streamed(rec), rec.sources, "delete", isReverse, this.#tablet);
      return this.#view(done);
    }
    if (rec.state !== "switched")
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: only a switched workflow reverses traffic`, { state: rec.state });
    const wf = streamed(rec);
    const { source, target } = await this.#keyspaces(rec);
    const forward = targetPlacements(source, target, rec.tables ?? []);
    // The forward streams start again from the sources' heads inside the pause: the old ones
    // (stopped since the switch) are forgotten first, releasing their holds, and the new ones are
    // held at the heads now, so no purge between here and their creation passes their start.
    await deleteStreams(wf, rec.sources, rec.targets, forwardId, this.#tablet);
    await holdAhead(wf, rec.sources, rec.targets, forwardId, this.#tablet);
    await markSwitching(this.#topo, rec, "reverse");
    const t0 = Date.now();
    let from: Map<string, number>;
    try {
      await this.#topo.denyTables(rec.keyspace, rec.name, "target", true);
      crashPoint("reverse-denied");
      await drainAll(wf, rec.targets, rec.sources, reverseId, this.#tablet);
      await controlStreams(wf, rec.sources, "stop", isReverse, this.#tablet);
      // The forward streams start again from the sources' heads: what the target holds is the same.
      await startStreams(wf, rec.sources, rec.targets, forward, false, forwardId, this.#tablet, { absent: true });
      // The sources take no writes of the tables before the flip: a following VStream goes on there.
      from = await headSeqs(rec.sources, this.#tablet);
      await recordSwitchFrom(this.#topo, rec, from);
      crashPoint("reverse-drained");
      workflowPoint("reverse:drained");
      await this.#topo.route(rec.keyspace, rec.name, "running");
      crashPoint("reverse-flipped");
      workflowPoint("reverse:flipped");
    } catch (e) {
      if (e instanceof InjectedCrash) throw e; // a crash leaves its mess to the next action or the alarm
      // Flipped: the mark stays, so the next action (or the alarm) finishes it.
      if (await this.#flipped(rec, "running")) throw e;
      // Still switched: forward streams started from the sources' heads would carry the reverse
      // streams' writes back to the target; the retry starts them again.
      await controlStreams(wf, rec.targets, "delete", (id) => !isReverse(id), this.#tablet).catch(() => undefined);
      await releaseAhead(wf, rec.sources, rec.targets, forwardId, this.#tablet).catch(() => undefined);
      await resumeStreams(wf, rec.sources, this.#tablet).catch(() => undefined);
      await this.#topo.denyTables(rec.keyspace, rec.name, "target", false);
      await markSwitching(this.#topo, rec, null);
      throw e;
    }
    const pauseMs = Date.now() - t0;
    await this.#journal(rec, "reverse", Object.fromEntries(from));
    await controlStreams(wf, rec.sources, "delete", isReverse, this.#tablet);
    await markSwitching(this.#topo, rec, null);
    return { ...(await this.#view(await this.#topo.record(rec.keyspace, rec.name))), pauseMs };
  }

  /** Drops the workflow's tables from `ks` (those it still has) through the Topology's DDL path. */
  async #drop(ks: KeyspaceGraph, tables: readonly string[]): Promise<void> {
    for (const t of tables) {
      const info = own(ks.tables, t.toLowerCase());
      if (info) await this.#topo.ddl({ keyspace: ks.name, sql: `DROP TABLE ${quoteIdent(info.name)}`, dropTable: info.name });
    }
  }

  async #complete(rec: WorkflowRecord): Promise<WorkflowView> {
    if (rec.state !== "switched" && rec.state !== "completed") {
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: complete it after switchtraffic (or cancel it)`, { state: rec.state });
    }
    if (rec.state === "switched") {
      const wf = streamed(rec);
      await controlStreams(wf, rec.sources, "delete", () => true, this.#tablet);
      await controlStreams(wf, rec.targets, "delete", () => true, this.#tablet);
      await this.#drop(await this.#topo.keyspace(rec.sourceKeyspace ?? ""), rec.tables ?? []);
    }
    await this.#topo.finish(rec.keyspace, rec.name, "completed");
    await releaseStreamHolds(streamed(rec), this.#tablet);
    return this.#view(await this.#topo.record(rec.keyspace, rec.name));
  }

  async #cancel(rec: WorkflowRecord): Promise<WorkflowView> {
    if (rec.state === "switched" || rec.state === "completed") {
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: reverse the traffic first, then cancel`, { state: rec.state });
    }
    if (rec.state !== "cancelled") {
      await controlStreams(streamed(rec), rec.targets, "delete", () => true, this.#tablet);
      await this.#drop(await this.#topo.keyspace(rec.keyspace), rec.tables ?? []);
    }
    await this.#topo.finish(rec.keyspace, rec.name, "cancelled");
    await releaseStreamHolds(streamed(rec), this.#tablet);
    return this.#view(await this.#topo.record(rec.keyspace, rec.name));
  }
}
