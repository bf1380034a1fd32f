// The Topology's MoveTables primitives: record a move (its routing rules appear with it, sending
// the tables' SQL to the source), flip the routing to the target and back, make a keyspace's
// tablets refuse writes to the moved tables, and close the workflow (its rules go). Every change
// of routing bumps both keyspaces' graph versions and syncs their tablets, so a gate planning
// with the old rules is refused by the tablets and plans again. Each step is idempotent.

import { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import { isOpen, type WorkflowRecord, type WorkflowState } from "../contract/workflow-record.ts";
import { planMoveTables } from "./movetables-plan.ts";
import { checkWorkflowName, readOptions } from "./reshard-plan.ts";
import { keyspaceOf, refuseState, type WorkflowHost } from "./workflow-steps.ts";

export interface MoveTablesRequest {
  readonly sourceKeyspace: unknown;
  readonly tables: unknown;
  readonly options: unknown;
}

export class MoveTablesSteps {
  readonly #host: WorkflowHost;

  constructor(host: WorkflowHost) {
    this.#host = host;
  }

  #keyspace(name: unknown): KeyspaceGraph {
    return keyspaceOf(this.#host, name);
  }

  #workflow(keyspace: string, name: string): WorkflowRecord {
    const w = this.#host.workflows.get(keyspace, name);
    if (w?.kind !== "movetables" || w.sourceKeyspace === undefined) {
      throw new VtError("INVALID_ARGUMENT", `no MoveTables workflow "${name}" in keyspace ${keyspace}`, { keyspace, workflow: name });
    }
    return w;
  }

  #refuse(w: WorkflowRecord, step: string, needs: readonly WorkflowState[]): VtError {
    return refuseState(w, step, needs);
  }

  /** Syncs every tablet of both keyspaces (their configs carry the versions and denied tables). */
  async #syncBoth(w: WorkflowRecord): Promise<void> {
    await this.#host.sync(this.#keyspace(w.sourceKeyspace));
    await this.#host.sync(this.#keyspace(w.keyspace));
  }

  #bumpBoth(w: WorkflowRecord): void {
    this.#host.store.bump(w.sourceKeyspace as string);
    this.#host.store.bump(w.keyspace);
  }

  /** Records a move of `tables` from `sourceKeyspace` into `keyspace` (movetables-plan.ts checks it); a retry of the same request answers the record. */
  async create(keyspace: string, workflow: string, req: MoveTablesRequest): Promise<WorkflowRecord> {
    const target = this.#keyspace(keyspace);
    const source = this.#keyspace(req.sourceKeyspace);
    const name = checkWorkflowName(workflow);
    const opts = readOptions(req.options);
    const existing = this.#host.workflows.get(keyspace, name);
    if (existing && isOpen(existing)) {
      const same =
        existing.kind === "movetables" &&
        existing.sourceKeyspace === source.name &&
        Array.isArray(req.tables) &&
        req.tables.length === existing.tables?.length &&
        req.tables.every((t) => typeof t === "string" && existing.tables?.some((e) => e.toLowerCase() === t.toLowerCase())) &&
        existing.onDdl === opts.onDdl &&
        existing.autoSwitch === opts.autoSwitch;
      if (!same) {
        throw new VtError("INVALID_ARGUMENT", `workflow ${keyspace}.${name} already exists (${existing.state}) with other tables or options`, {
          keyspace,
          workflow: name,
          state: existing.state,
        });
      }
      return existing;
    }
    await this.#host.settle(source.name);
    await this.#host.settle(target.name);
    const plan = planMoveTables(this.#keyspace(source.name), this.#keyspace(target.name), req.tables, this.#host.workflows.list());
    const src = this.#keyspace(source.name);
    const dst = this.#keyspace(target.name);
    const at = Date.now();
    const record: WorkflowRecord = {
      keyspace,
      name,
      kind: "movetables",
      state: "created",
      sources: src.shards.filter((s) => s.serving).map((s) => ({ shard: s.name, keyRange: s.keyRange, tablet: s.tablet })),
      targets: dst.shards.filter((s) => s.serving).map((s) => ({ shard: s.name, keyRange: s.keyRange, tablet: s.tablet })),
      onDdl: opts.onDdl,
      autoSwitch: opts.autoSwitch,
      // The target refuses writes to the tables until the switch (movetables-rejoin.ts arrivalsOf).
      progress: { arrivals: true },
      createdAt: at,
      updatedAt: at,
      switchedAt: null,
      sourceKeyspace: src.name,
      tables: plan.tables,
    };
    this.#host.transaction(() => {
      this.#host.workflows.put(record);
      // Until the switch only the stream writes the tables on the target: a user write there would
      // be overwritten by the copy, and after the switch the target's binlog must hold their
      // changes only from its arrival marker on (written with the deny lifted).
      this.#host.workflows.setDeniedTables(record.keyspace, plan.tables, name, true);
      this.#bumpBoth(record);
    });
    await this.#syncBoth(record);
    return record;
  }

  /** running → switched (the rules send the tables to the target), or switched → running (back to the source). */
  async route(keyspace: string, workflow: string, to: "switched" | "running"): Promise<WorkflowRecord> {
    const w = this.#workflow(keyspace, workflow);
    const done = to === "switched" ? w.state === "switched" : w.state === "running" && w.switchedAt !== null;
    if (!done) {
      const from = to === "switched" ? "running" : "switched";
      if (w.state !== from) throw this.#refuse(w, to === "switched" ? "switchtraffic" : "reversetraffic", [from]);
      const at = Date.now();
      // The side that serves the tables takes their writes again.
      const serving = to === "switched" ? w.keyspace : (w.sourceKeyspace as string);
      this.#host.transaction(() => {
        this.#host.workflows.setState(keyspace, w.name, to, at, to === "switched" ? at : undefined);
        this.#host.workflows.setDeniedTables(serving, w.tables ?? [], w.name, false);
        this.#bumpBoth(w);
      });
    }
    await this.#syncBoth(w);
    return this.#workflow(keyspace, workflow);
  }

  /** Makes the tablets of the workflow's source (or target) keyspace refuse writes to its tables, or take them again. */
  async denyTables(keyspace: string, workflow: string, side: "source" | "target", deny: boolean): Promise<void> {
    const w = this.#workflow(keyspace, workflow);
    const ks = side === "source" ? (w.sourceKeyspace as string) : w.keyspace;
    this.#host.transaction(() => this.#host.workflows.setDeniedTables(ks, w.tables ?? [], w.name, deny));
    await this.#host.sync(this.#keyspace(ks));
  }

  /** switched → completed or (created / running) → cancelled: the routing rules and the denied tables go. */
  async finish(keyspace: string, workflow: string, state: "completed" | "cancelled"): Promise<WorkflowRecord> {
    const w = this.#workflow(keyspace, workflow);
    if (w.state !== state) {
      const needs: WorkflowState[] = state === "completed" ? ["switched"] : ["created", "running"];
      if (!needs.includes(w.state)) throw this.#refuse(w, state === "completed" ? "complete" : "cancel", needs);
      this.#host.transaction(() => {
        this.#host.workflows.setState(keyspace, w.name, state, Date.now());
        this.#host.workflows.setDeniedTables(w.sourceKeyspace as string, w.tables ?? [], w.name, false);
        this.#host.workflows.setDeniedTables(w.keyspace, w.tables ?? [], w.name, false);
        this.#bumpBoth(w);
      });
    }
    await this.#syncBoth(w);
    return this.#workflow(keyspace, workflow);
  }
}
