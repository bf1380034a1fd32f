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
import { missingDdl, sourcePlacements, targetPlacements } from "./movetables-plan.ts";
import { own } from "./own.ts";
import { quoteIdent } from "../contract/sql-values.ts";
import {
  controlStreams,
  drainAll,
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
} from "./reshard-streams.ts";
import { KeyedSerial } from "./keyed-serial.ts";
import { progressOf, type ReshardProgress } from "./reshard.ts";
import { runVDiff } from "./vdiff-run.ts";

/** What the controller needs of the Topology: its steps (movetables-steps.ts), each queued and idempotent. */
export interface MoveTablesPrimitives {
  keyspace(name: string): Promise<KeyspaceGraph>;
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
      const rec = await this.#topo.record(req.keyspace, req.workflow);
      switch (req.action) {
        case "show":
          return this.#view(rec);
        case "vdiff":
          return this.#vdiff(rec);
        case "switchtraffic":
          return this.#switch(rec);
        case "reversetraffic":
          return this.#reverse(rec);
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
    const on = rec.state === "switched" ? rec.sources : rec.state === "running" || rec.state === "created" ? rec.targets : [];
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

  async #switch(rec: WorkflowRecord): Promise<WorkflowView> {
    // Switched already (maybe by a call whose syncs failed after the flip): the retry finishes the syncs.
    if (rec.state === "switched") return this.#view(await this.#topo.route(rec.keyspace, rec.name, "switched"));
    if (rec.state !== "running")
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: only a running workflow switches traffic`, { state: rec.state });
    await this.#ready(rec);
    const wf = streamed(rec);
    const { source, target } = await this.#keyspaces(rec);
    const back = sourcePlacements(source, target, rec.tables ?? []);
    const t0 = Date.now();
    await this.#topo.denyTables(rec.keyspace, rec.name, "source", true);
    try {
      await drainAll(wf, rec.sources, rec.targets, forwardId, this.#tablet);
      await controlStreams(wf, rec.targets, "stop", (id) => !isReverse(id), this.#tablet);
      await startStreams(wf, rec.targets, rec.sources, back, false, reverseId, this.#tablet);
      await this.#topo.route(rec.keyspace, rec.name, "switched");
    } catch (e) {
      // Flipped before the failure: nothing is undone, a retry finishes it.
      if ((await this.#topo.record(rec.keyspace, rec.name)).state === "switched") throw e;
      await controlStreams(wf, rec.sources, "delete", isReverse, this.#tablet).catch(() => undefined);
      await resumeStreams(wf, rec.targets, this.#tablet).catch(() => undefined);
      await this.#topo.denyTables(rec.keyspace, rec.name, "source", false);
      throw e;
    }
    const pauseMs = Date.now() - t0;
    return { ...(await this.#view(await this.#topo.record(rec.keyspace, rec.name))), pauseMs };
  }

  async #reverse(rec: WorkflowRecord): Promise<WorkflowView> {
    if (rec.state === "running" && rec.switchedAt !== null) return this.#view(await this.#topo.route(rec.keyspace, rec.name, "running"));
    if (rec.state !== "switched")
      throw new VtError("INVALID_ARGUMENT", `workflow ${rec.name} is ${rec.state}: only a switched workflow reverses traffic`, { state: rec.state });
    const wf = streamed(rec);
    const { source, target } = await this.#keyspaces(rec);
    const forward = targetPlacements(source, target, rec.tables ?? []);
    const t0 = Date.now();
    await this.#topo.denyTables(rec.keyspace, rec.name, "target", true);
    try {
      await drainAll(wf, rec.targets, rec.sources, reverseId, this.#tablet);
      await controlStreams(wf, rec.sources, "stop", isReverse, this.#tablet);
      // The forward streams start again from the source's head: what the target holds is the same.
      await controlStreams(wf, rec.targets, "delete", (id) => !isReverse(id), this.#tablet);
      await startStreams(wf, rec.sources, rec.targets, forward, false, forwardId, this.#tablet);
      await this.#topo.route(rec.keyspace, rec.name, "running");
    } catch (e) {
      if ((await this.#topo.record(rec.keyspace, rec.name)).state === "running") throw e;
      await resumeStreams(wf, rec.sources, this.#tablet).catch(() => undefined);
      await this.#topo.denyTables(rec.keyspace, rec.name, "target", false);
      throw e;
    }
    const pauseMs = Date.now() - t0;
    await controlStreams(wf, rec.sources, "delete", isReverse, this.#tablet);
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
    return this.#view(await this.#topo.record(rec.keyspace, rec.name));
  }
}
