// The Topology's workflow primitives: create a Reshard (record it, make its target tablets),
// start it, switch writes to the targets and back, complete (retire the sources) and cancel
// (retire the targets), deny writes on shards, record progress. Each is idempotent: a retry of
// a step that already happened answers the same record and changes nothing more. They run in the
// Topology's change queue; the host gives them its storage, its tablets and its sync.

import { unwrap } from "../contract/envelope.ts";
import { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph, ShardGraph } from "../contract/serving-graph.ts";
import { tabletName, type TabletRpc, type TabletStatus } from "../contract/tablet-rpc.ts";
import { isOpen, readSide, type ReadSide, type WorkflowRecord, type WorkflowShard, type WorkflowState } from "../contract/workflow-record.ts";
import type { VSchema } from "../contract/vschema.ts";
import { keyRangeEqual, parseKeyRange } from "./keyrange.ts";
import { unsupportedError } from "./refusals.ts";
import { checkWorkflowName, planReshard, sameReshard } from "./reshard-plan.ts";
import type { TopologyStore } from "./topology-store.ts";
import { reroutedTables } from "./vschema-checks.ts";
import { asShards, type WorkflowStore } from "./workflow-store.ts";

/** The most a workflow's progress report may hold, as JSON text. */
const MAX_PROGRESS_BYTES = 64 * 1024;

export interface WorkflowHost {
  readonly store: TopologyStore;
  readonly workflows: WorkflowStore;
  transaction(fn: () => void): void;
  /** Finishes the keyspace's pending schema change, or throws NOT_SERVING. */
  settle(keyspace: string): Promise<void>;
  /** Brings `shards` (every tablet of the keyspace when omitted) to their config and schema; the first failure is thrown. */
  sync(ks: KeyspaceGraph, shards?: readonly ShardGraph[]): Promise<TabletStatus[]>;
  tablet(name: string): TabletRpc;
}

/** The keyspace `name` as the host stores it; INVALID_ARGUMENT when there is none (or it is no name). */
export function keyspaceOf(host: WorkflowHost, name: unknown): KeyspaceGraph {
  const ks = typeof name === "string" ? host.store.keyspace(name) : undefined;
  if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${String(name)}"`, { keyspace: name });
  return ks;
}

/** The refusal of a step the workflow's state does not allow: which states it needs. */
export function refuseState(w: WorkflowRecord, step: string, needs: readonly WorkflowState[]): VtError {
  return new VtError("INVALID_ARGUMENT", `workflow ${w.keyspace}.${w.name} is ${w.state}: ${step} needs it ${needs.join(" or ")}`, {
    keyspace: w.keyspace,
    workflow: w.name,
    state: w.state,
  });
}

export class WorkflowSteps {
  readonly #host: WorkflowHost;

  constructor(host: WorkflowHost) {
    this.#host = host;
  }

  #keyspace(name: string): KeyspaceGraph {
    return keyspaceOf(this.#host, name);
  }

  #workflow(keyspace: string, name: string): WorkflowRecord {
    this.#keyspace(keyspace);
    const w = typeof name === "string" ? this.#host.workflows.get(keyspace, name) : undefined;
    if (!w) throw new VtError("INVALID_ARGUMENT", `no workflow "${String(name)}" in keyspace ${keyspace}`, { keyspace, workflow: name });
    return w;
  }

  #refuse(w: WorkflowRecord, step: string, needs: readonly WorkflowState[]): VtError {
    return refuseState(w, step, needs);
  }

  async #retire(shards: readonly WorkflowShard[]): Promise<void> {
    await Promise.all(shards.map(async (s) => unwrap(await this.#host.tablet(s.tablet).retire())));
  }

  /**
   * Records a Reshard of `keyspace` from `sources` to `targets` (reshard-plan.ts checks them) and
   * makes its target tablets: fresh names of one generation, not serving, with the keyspace's
   * schema. A retry of the same request answers the record.
   */
  async createReshard(keyspace: string, workflow: string, sources: unknown, targets: unknown, options: unknown): Promise<WorkflowRecord> {
    const ks = this.#keyspace(keyspace);
    const name = checkWorkflowName(workflow);
    const existing = this.#host.workflows.get(keyspace, name);
    if (existing && isOpen(existing)) {
      if (!sameReshard(existing, sources, targets, options)) {
        throw new VtError("INVALID_ARGUMENT", `workflow ${keyspace}.${name} already exists (${existing.state}) with other shards or options`, {
          keyspace,
          workflow: name,
          state: existing.state,
        });
      }
      if (existing.state === "created") await this.#host.sync(ks, asShards(existing.targets, false));
      return existing;
    }
    await this.#host.settle(keyspace);
    const now = this.#keyspace(keyspace);
    const plan = planReshard(now, sources, targets, options, this.#host.workflows.open(keyspace));
    const at = Date.now();
    let record: WorkflowRecord | undefined;
    this.#host.transaction(() => {
      const generation = this.#host.store.nextGeneration();
      record = {
        keyspace,
        name,
        kind: "reshard",
        state: "created",
        sources: plan.sources.map((s) => ({ shard: s.name, keyRange: s.keyRange, tablet: s.tablet })),
        targets: plan.targets.map((t) => ({ shard: t, keyRange: t, tablet: tabletName(keyspace, t, generation) })),
        onDdl: plan.onDdl,
        autoSwitch: plan.autoSwitch,
        progress: null,
        createdAt: at,
        updatedAt: at,
        switchedAt: null,
      };
      this.#host.workflows.put(record);
    });
    if (!record) throw new VtError("INTERNAL", "workflow record not written");
    await this.#host.sync(now, asShards(record.targets, false));
    return record;
  }

  /** created → running (the workflow's streams are moving rows). */
  start(keyspace: string, workflow: string): WorkflowRecord {
    const w = this.#workflow(keyspace, workflow);
    if (w.state === "running" || w.state === "switched") return w;
    if (w.state !== "created") throw this.#refuse(w, "start", ["created"]);
    this.#host.workflows.setState(keyspace, w.name, "running", Date.now());
    return this.#workflow(keyspace, workflow);
  }

  /**
   * Replaces `out` by `into` in the keyspace's shard set in one transaction with the workflow's
   * new state, at a new graph version, then syncs every tablet of the keyspace (the new shards
   * serve, the old ones stop).
   */
  async #flip(w: WorkflowRecord, out: readonly WorkflowShard[], into: readonly WorkflowShard[], state: WorkflowState): Promise<WorkflowRecord> {
    await this.#host.settle(w.keyspace);
    const ks = this.#keyspace(w.keyspace);
    const missing = out.find((o) => !ks.shards.some((s) => s.name === o.shard && s.tablet === o.tablet));
    if (missing) throw new VtError("INTERNAL", `workflow ${w.keyspace}.${w.name}: shard ${missing.shard} (${missing.tablet}) is not serving`);
    const at = Date.now();
    this.#host.transaction(() => {
      this.#host.store.replaceShards(
        w.keyspace,
        out.map((s) => s.shard),
        asShards(into, true),
      );
      this.#host.workflows.setState(w.keyspace, w.name, state, at, state === "switched" ? at : undefined);
      this.#host.store.bump(w.keyspace);
    });
    await this.#host.sync(this.#keyspace(w.keyspace));
    return this.#workflow(w.keyspace, w.name);
  }

  /** running → switched: the targets serve in place of the sources. */
  async switchWrites(keyspace: string, workflow: string): Promise<WorkflowRecord> {
    const w = this.#workflow(keyspace, workflow);
    if (w.state === "switched") {
      await this.#host.sync(this.#keyspace(keyspace));
      return w;
    }
    if (w.state !== "running") throw this.#refuse(w, "switchWrites", ["running"]);
    return this.#flip(w, w.sources, w.targets, "switched");
  }

  /** switched → running: the sources serve again in place of the targets. */
  async reverseWrites(keyspace: string, workflow: string): Promise<WorkflowRecord> {
    const w = this.#workflow(keyspace, workflow);
    if (w.state === "running" && w.switchedAt !== null) {
      await this.#host.sync(this.#keyspace(keyspace));
      return w;
    }
    if (w.state !== "switched") throw this.#refuse(w, "reverseWrites", ["switched"]);
    return this.#flip(w, w.targets, w.sources, "running");
  }

  /**
   * Where the Reshard's reads go (null: where its writes go). When that moves them to other
   * tablets, the keyspace gets a new graph version and every tablet of it its config (the side
   * serving reads without writes serves reads only), so a read planned before answers
   * NOT_SERVING and is planned again.
   */
  async setReads(keyspace: string, workflow: string, reads: ReadSide | null): Promise<WorkflowRecord> {
    const w = this.#workflow(keyspace, workflow);
    if (w.kind !== "reshard") throw new VtError("INTERNAL", `workflow ${keyspace}.${w.name} is a ${w.kind}: its reads follow its writes`);
    if (w.state !== "running" && w.state !== "switched") throw this.#refuse(w, "switching reads", ["running", "switched"]);
    const before = readSide(w);
    if ((w.reads ?? null) === reads) {
      // A repeat (or the retry of a step whose sync failed): every tablet learns its config again.
      await this.#host.sync(this.#keyspace(keyspace));
      return w;
    }
    await this.#host.settle(keyspace);
    this.#host.transaction(() => {
      this.#host.workflows.setReads(keyspace, w.name, reads, Date.now());
      if (readSide(this.#workflow(keyspace, workflow)) !== before) this.#host.store.bump(keyspace);
    });
    if (readSide(this.#workflow(keyspace, workflow)) !== before) await this.#host.sync(this.#keyspace(keyspace));
    return this.#workflow(keyspace, workflow);
  }

  /** switched → completed: the source tablets are retired (they hold nothing afterwards). */
  async complete(keyspace: string, workflow: string): Promise<WorkflowRecord> {
    const w = this.#workflow(keyspace, workflow);
    if (w.state !== "switched" && w.state !== "completed") throw this.#refuse(w, "complete", ["switched"]);
    await this.#retire(w.sources);
    if (w.state === "completed") return w;
    this.#host.workflows.setState(keyspace, w.name, "completed", Date.now());
    return this.#workflow(keyspace, workflow);
  }

  /** created or running (never switched, or reversed) → cancelled: the target tablets are retired. */
  async cancel(keyspace: string, workflow: string): Promise<WorkflowRecord> {
    const w = this.#workflow(keyspace, workflow);
    if (w.state !== "created" && w.state !== "running" && w.state !== "cancelled") throw this.#refuse(w, "cancel", ["created", "running"]);
    await this.#retire(w.targets);
    if (w.state === "cancelled") return w;
    this.#host.workflows.setState(keyspace, w.name, "cancelled", Date.now());
    return this.#workflow(keyspace, workflow);
  }

  /** Makes the tablets of serving `shards` refuse writes (or take them again); answers their status, in key order. */
  async setDenyWrites(keyspace: string, shards: unknown, deny: unknown): Promise<TabletStatus[]> {
    const ks = this.#keyspace(keyspace);
    if (typeof deny !== "boolean") throw new VtError("INVALID_ARGUMENT", "setDenyWrites: deny must be true or false");
    if (!Array.isArray(shards) || shards.length === 0 || !shards.every((s) => typeof s === "string")) {
      throw new VtError("INVALID_ARGUMENT", 'setDenyWrites: shards must be a non-empty list of shard names such as ["-80"]');
    }
    const picked = ks.shards.filter((g) => (shards as string[]).some((s) => keyRangeEqual(parseKeyRange(s), parseKeyRange(g.name))));
    const unknown = (shards as string[]).find((s) => !picked.some((g) => keyRangeEqual(parseKeyRange(s), parseKeyRange(g.name))));
    if (unknown !== undefined) throw new VtError("INVALID_ARGUMENT", `${unknown} is not a serving shard of keyspace ${keyspace}`, { shard: unknown });
    this.#host.transaction(() =>
      this.#host.store.setDenyWrites(
        keyspace,
        picked.map((s) => s.name),
        deny,
      ),
    );
    return this.#host.sync(ks, picked);
  }

  /** Stores what the workflow reports of itself (any JSON value up to 64 KB). */
  setProgress(keyspace: string, workflow: string, progress: unknown): WorkflowRecord {
    const w = this.#workflow(keyspace, workflow);
    let json: string | undefined;
    try {
      json = JSON.stringify(progress);
    } catch {
      json = undefined;
    }
    if (json === undefined || json.length > MAX_PROGRESS_BYTES) {
      throw new VtError("INVALID_ARGUMENT", `workflow progress must be a JSON value of at most ${MAX_PROGRESS_BYTES} bytes`, { workflow: w.name });
    }
    this.#host.workflows.setProgress(keyspace, w.name, json, Date.now());
    return this.#workflow(keyspace, workflow);
  }

  /** Refuses (VD2702) a vschema change that would move rows of a keyspace an open workflow is moving. */
  checkVSchemaChange(ks: KeyspaceGraph, next: VSchema): void {
    const open = this.#host.workflows.open(ks.name)[0];
    if (!open) return;
    const moved = next.sharded !== ks.vschema.sharded ? Object.values(ks.tables).map((t) => t.name) : reroutedTables(ks.vschema, next, ks.tables);
    if (moved.length === 0 && next.sharded === ks.vschema.sharded) return;
    throw unsupportedError(
      "VD2702",
      `vschema change of ${moved.join(", ") || ks.name} while workflow ${open.name} (${open.state}) is open: it would move rows the workflow is moving; complete or cancel it first`,
      { keyspace: ks.name, workflow: open.name, tables: moved },
    );
  }
}
