// Topology: one Durable Object (by name "global") holding keyspaces, shards, vschemas, the
// schema history (DDL applied so far, replayed onto shards created later) and the versioned
// serving graph (its tables: topology-store.ts). Changes are serialised through one queue: DDL
// fans out to tablets while holding it, so two DDLs never reach shards in different orders.
//
// A DDL (and a vschema change that could re-route rows) is two-phase (schema-changes.ts);
// workflows run through their controllers (reshard.ts, movetables.ts) whose steps queue here.

import { DurableObject } from "cloudflare:workers";
import { tabletRpc, type DdlEntry, type TabletStatus } from "../contract/tablet-rpc.ts";
import type { DdlRequest, TopologyRpc } from "../contract/topology-rpc.ts";
import { envelopeAsync, unwrap, type Envelope } from "../contract/envelope.ts";
import { VtError } from "../contract/errors.ts";
import {
  isValidKeyspaceName,
  type KeyspaceGraph,
  type ServingGraph,
  type ShardGraph,
  type TopologyView,
  type WorkflowLive,
} from "../contract/serving-graph.ts";
import { setOwn } from "./own.ts";
import { evenShards, formatKeyRange, validateShardSet } from "./keyrange.ts";
import { PendingChanges } from "./pending.ts";
import { IdBlocks, type IdBlock } from "./id-blocks.ts";
import { unsupportedError } from "./refusals.ts";
import { defaultVSchema } from "./vschema.ts";
import { TopologyStore } from "./topology-store.ts";
import { ReshardController, type ReshardPrimitives } from "./reshard.ts";
import type { VDiffReport, WorkflowRequest, WorkflowView } from "../contract/workflow-rpc.ts";
import { WorkflowStore } from "./workflow-store.ts";
import { WorkflowSteps } from "./workflow-steps.ts";
import { isOpen, routingRules, type WorkflowOptions, type WorkflowRecord } from "../contract/workflow-record.ts";
import { streamed, streamHolders, workflowStreams } from "./reshard-streams.ts";
import { MoveTablesController, type MoveTablesPrimitives } from "./movetables.ts";
import { MoveTablesSteps } from "./movetables-steps.ts";
import { withReadShards } from "./read-routing.ts";
import { GraphWaiters } from "./graph-waiters.ts";
import { TabletSync } from "./tablet-sync.ts";
import { RetentionSettings } from "./retention.ts";
import type { GraphWait, KeyspaceRetention } from "../contract/topology-rpc.ts";
import { checkSubscriptionChange, checkSubscriptionSpec, SubscriptionStore } from "./subscriptions.ts";
import { SchemaChanges } from "./schema-changes.ts";
import type { SubscriptionChange, SubscriptionRecord, SubscriptionSpec } from "../contract/subscription-rpc.ts";

export class Topology extends DurableObject<Env> implements TopologyRpc {
  readonly #store: TopologyStore;
  readonly #pending: PendingChanges;
  readonly #ids: IdBlocks;
  readonly #workflows: WorkflowStore;
  readonly #steps: WorkflowSteps;
  readonly #reshard: ReshardController;
  readonly #moveSteps: MoveTablesSteps;
  readonly #moveTables: MoveTablesController;
  readonly #retention: RetentionSettings;
  readonly #subscriptions: SubscriptionStore;
  readonly #changes: SchemaChanges;
  #queue: Promise<unknown> = Promise.resolve();
  /** Gate requests held through a cutover, answered when a keyspace's tablets have learned a change. */
  readonly #graphWaiters = new GraphWaiters();
  readonly #tablets: TabletSync;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new TopologyStore(ctx.storage.sql);
    this.#pending = new PendingChanges(ctx.storage.sql);
    this.#ids = new IdBlocks(ctx.storage.sql);
    this.#workflows = new WorkflowStore(ctx.storage.sql);
    this.#subscriptions = new SubscriptionStore(ctx.storage.sql);
    this.#tablets = new TabletSync({
      tablets: env.TABLET,
      store: this.#store,
      workflows: this.#workflows,
      pending: this.#pending,
      waiters: this.#graphWaiters,
      retention: (keyspace) => this.#retention.policy(keyspace),
    });
    this.#changes = new SchemaChanges({
      store: this.#store,
      pending: this.#pending,
      tablets: this.#tablets,
      tablet: (name) => tabletRpc(env.TABLET, name),
      openWorkflows: (keyspace) => this.#workflows.open(keyspace),
      checkVSchemaChange: (ks, next) => this.#steps.checkVSchemaChange(ks, next),
      transaction: (fn) => ctx.storage.transactionSync(fn),
      setAlarm: (at) => ctx.storage.setAlarm(at),
    });
    const host = {
      store: this.#store,
      workflows: this.#workflows,
      transaction: (fn: () => void) => ctx.storage.transactionSync(fn),
      settle: (keyspace: string) => this.#changes.settle(keyspace),
      sync: (ks: KeyspaceGraph, shards?: readonly ShardGraph[]) => this.#tablets.syncTablets(ks, shards),
      tablet: (name: string) => tabletRpc(env.TABLET, name),
    };
    this.#steps = new WorkflowSteps(host);
    this.#moveSteps = new MoveTablesSteps(host);
    this.#reshard = new ReshardController(this.#primitives(), (name) => tabletRpc(env.TABLET, name));
    this.#moveTables = new MoveTablesController(this.#movePrimitives(), (name) => tabletRpc(env.TABLET, name));
    this.#retention = new RetentionSettings(host);
  }

  /** The serving graph with the open MoveTables workflows' routing rules and the Reshards' read shards. */
  #graph(): ServingGraph {
    const workflows = this.#workflows.list();
    const rules = routingRules(workflows);
    const stored = this.#store.graph();
    const keyspaces: Record<string, KeyspaceGraph> = {};
    for (const [name, ks] of Object.entries(stored.keyspaces)) setOwn(keyspaces, name, withReadShards(ks, workflows));
    const graph = { ...stored, keyspaces };
    return Object.keys(rules).length > 0 ? { ...graph, routingRules: rules } : graph;
  }

  /** The MoveTables steps as its controller calls them: each queued like any change. */
  #movePrimitives(): MoveTablesPrimitives {
    const step = async <T>(fn: () => Promise<T> | T): Promise<T> => unwrap(await this.#step(fn));
    const base = this.#primitives();
    return {
      keyspace: base.keyspace,
      records: async () => this.#workflows.list().filter((w) => w.kind === "movetables"),
      recoverLater: base.recoverLater,
      record: base.record,
      create: (req) =>
        step(() =>
          this.#moveSteps.create(req.keyspace, req.workflow, {
            sourceKeyspace: req.sourceKeyspace,
            tables: req.tables,
            options: {
              ...(req.onDdl ? { onDdl: req.onDdl } : {}),
              ...(req.autoSwitch !== undefined ? { autoSwitch: req.autoSwitch } : {}),
            },
          }),
        ),
      ddl: async (req) => {
        await this.#serial(async () => {
          await this.#bootstrap();
          await this.#changes.ddl(req, false);
        });
      },
      start: base.start,
      setProgress: base.setProgress,
      denyTables: (keyspace, workflow, side, deny) => step(() => this.#moveSteps.denyTables(keyspace, workflow, side, deny)),
      route: (keyspace, workflow, to) => step(() => this.#moveSteps.route(keyspace, workflow, to)),
      finish: (keyspace, workflow, state) => step(() => this.#moveSteps.finish(keyspace, workflow, state)),
    };
  }

  /** The workflow steps as the Reshard controller calls them: each queued like any change. */
  #primitives(): ReshardPrimitives {
    const step = async <T>(fn: () => Promise<T> | T): Promise<T> => unwrap(await this.#step(fn));
    return {
      records: async () => this.#workflows.list().filter((w) => w.kind !== "movetables"),
      recoverLater: async (ms) => {
        const at = await this.ctx.storage.getAlarm();
        if (at === null || at > Date.now() + ms) await this.ctx.storage.setAlarm(Date.now() + ms);
      },
      keyspace: async (name) => {
        const ks = this.#store.keyspace(name);
        if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${name}"`, { keyspace: name });
        return ks;
      },
      record: async (keyspace, workflow) => {
        if (!this.#store.keyspace(keyspace)) throw new VtError("INVALID_ARGUMENT", `no keyspace "${keyspace}"`, { keyspace });
        const w = this.#workflows.get(keyspace, workflow);
        if (!w) throw new VtError("INVALID_ARGUMENT", `no workflow "${workflow}" in keyspace ${keyspace}`, { keyspace, workflow });
        return w;
      },
      create: (req) =>
        step(() =>
          this.#steps.createReshard(req.keyspace, req.workflow, req.sourceShards, req.targetShards, {
            ...(req.onDdl ? { onDdl: req.onDdl } : {}),
            ...(req.autoSwitch !== undefined ? { autoSwitch: req.autoSwitch } : {}),
          }),
        ),
      start: (keyspace, workflow) => step(() => this.#steps.start(keyspace, workflow)),
      setProgress: async (keyspace, workflow, progress) => {
        this.#steps.setProgress(keyspace, workflow, progress);
      },
      denyWrites: (keyspace, shards, deny) =>
        step(() =>
          this.#steps.setDenyWrites(
            keyspace,
            shards.map((s) => s.shard),
            deny,
          ),
        ),
      switchWrites: (keyspace, workflow) => step(() => this.#steps.switchWrites(keyspace, workflow)),
      reverseWrites: (keyspace, workflow) => step(() => this.#steps.reverseWrites(keyspace, workflow)),
      complete: (keyspace, workflow) => step(() => this.#steps.complete(keyspace, workflow)),
      cancel: (keyspace, workflow) => step(() => this.#steps.cancel(keyspace, workflow)),
      setReads: (keyspace, workflow, reads) => step(() => this.#steps.setReads(keyspace, workflow, reads)),
    };
  }

  /** A workflow action (topology/reshard.ts): not queued as a whole, each of its steps is. */
  workflow(req: WorkflowRequest): Promise<Envelope<WorkflowView | VDiffReport>> {
    return envelopeAsync(async () => {
      await this.#serial(() => this.#bootstrap());
      const kind = req.action === "create" ? (req.kind ?? "reshard") : this.#workflows.get(req.keyspace, req.workflow)?.kind;
      if (kind === "movetables" && req.tabletTypes !== undefined && !(req.tabletTypes.includes("primary") && req.tabletTypes.length > 1)) {
        throw unsupportedError(
          "VD2720",
          `workflow ${req.keyspace}.${req.workflow} is a MoveTables: its routing rules move reads and writes together; leave out --tablet-types`,
          { keyspace: req.keyspace, workflow: req.workflow },
        );
      }
      return kind === "movetables" ? this.#moveTables.run(req) : this.#reshard.run(req);
    });
  }

  /** Runs `fn` after every change queued before it (changes await tablets, so the input gate is not enough). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Re-drives every unresolved change (set whenever one is recorded or could not be finished). */
  override async alarm(): Promise<void> {
    await this.#serial(() => this.#changes.resolveAll());
    // Outside the change queue: undoing a switch queues its own steps.
    await this.#reshard.recover();
    await this.#moveTables.recover();
  }

  async #bootstrap(): Promise<void> {
    if (this.#store.meta("bootstrapped") !== undefined) return;
    const name = this.env.DEFAULT_KEYSPACE || "main";
    const count = Number(this.env.DEFAULT_SHARDS || "2");
    if (this.#store.keyspace(name) === undefined) await this.#createKeyspace(name, count);
    this.#store.setMeta("bootstrapped", "1");
  }

  async #createKeyspace(name: string, shards: number | readonly string[]): Promise<ServingGraph> {
    if (typeof name !== "string" || !isValidKeyspaceName(name)) {
      throw new VtError("INVALID_ARGUMENT", `keyspace name "${String(name)}" must start with a letter and hold only letters, digits and _ (at most 63)`);
    }
    if (this.#store.keyspace(name)) throw new VtError("INVALID_ARGUMENT", `keyspace "${name}" already exists`);
    let names: string[];
    if (typeof shards === "number") {
      names = evenShards(shards);
    } else if (Array.isArray(shards) && shards.every((s) => typeof s === "string")) {
      names = validateShardSet(shards).map(formatKeyRange);
    } else {
      throw new VtError("INVALID_ARGUMENT", 'shards must be a count or a list of key ranges such as ["-80", "80-"]');
    }
    const sharded = !(names.length === 1 && names[0] === "-");
    this.ctx.storage.transactionSync(() => this.#store.addKeyspace(name, defaultVSchema(sharded), names));
    const ks = this.#store.keyspace(name);
    if (ks) await this.#tablets.syncTablets(ks);
    return this.#graph();
  }

  graph(): Promise<Envelope<ServingGraph>> {
    return envelopeAsync(async () => {
      if (this.#store.meta("bootstrapped") === undefined) await this.#serial(() => this.#bootstrap());
      return this.#graph();
    });
  }

  /**
   * Answers the serving graph once the keyspace's version is no longer `version` and no push of
   * its config to its tablets is under way (at once if so already); else waits until such a push
   * ends (the flip of a SwitchTraffic, writes taken again after a failed one) or `maxMs` (at most
   * MAX_GRAPH_WAIT_MS) pass, and answers the graph if the version changed, null if not.
   */
  awaitGraph(keyspace: string, version: number, maxMs: number): Promise<Envelope<GraphWait>> {
    return envelopeAsync(async () => {
      if (typeof keyspace !== "string" || !Number.isInteger(version) || typeof maxMs !== "number") {
        throw new VtError("INVALID_ARGUMENT", "awaitGraph(keyspace, version, maxMs): a keyspace name, an integer version and a number of ms");
      }
      const changed = () => (this.#store.keyspace(keyspace)?.version ?? -1) !== version;
      let waited = false;
      if (!changed() || this.#graphWaiters.syncing(keyspace)) waited = await this.#graphWaiters.wait(keyspace, maxMs);
      if (!changed()) return { graph: null, waited };
      if (this.#store.meta("bootstrapped") === undefined) await this.#serial(() => this.#bootstrap());
      return { graph: this.#graph(), waited };
    });
  }

  createKeyspace(name: string, shards: number | string[]): Promise<Envelope<ServingGraph>> {
    return envelopeAsync(() =>
      this.#serial(async () => {
        await this.#bootstrap();
        return this.#createKeyspace(name, shards);
      }),
    );
  }

  /**
   * Replaces a keyspace's vschema. Vindex columns must exist in the tables that exist
   * (INVALID_ARGUMENT); a change of where a table's rows live (vindex column, vindex, kind) is
   * allowed only while the table is empty on every shard, checked under a write fence so no row
   * lands by the old placement after the check.
   */
  applyVSchema(keyspace: string, input: unknown): Promise<Envelope<ServingGraph>> {
    return envelopeAsync(() =>
      this.#serial(async () => {
        await this.#bootstrap();
        await this.#changes.applyVSchema(keyspace, input);
        return this.#graph();
      }),
    );
  }

  /**
   * Applies one DDL statement to every shard of a keyspace, or to none. Every shard tries it
   * under a write fence; only when all succeeded is it recorded (with any vschema entry it adds)
   * and applied. A refusal answers the refusing shard's error and leaves no trace. Once recorded
   * it answers success: a shard that fails to apply it (it tried it, under the fence, so only for
   * transient reasons) keeps refusing writes until the alarm has applied it there.
   */
  applyDdl(req: DdlRequest): Promise<Envelope<ServingGraph>> {
    return envelopeAsync(() =>
      this.#serial(async () => {
        await this.#bootstrap();
        await this.#changes.ddl(req, true);
        return this.#graph();
      }),
    );
  }

  /**
   * A block of ids of a table's automatic sequence (id-blocks.ts): at least `count`, none below
   * `floor` (decimal text). Null when the sequence does not exist yet and no floor was given.
   */
  reserveIds(keyspace: string, table: string, count: number, floor: string | null): Promise<Envelope<IdBlock | null>> {
    return envelopeAsync(async () => {
      if (!this.#store.keyspace(keyspace)) throw new VtError("INVALID_ARGUMENT", `no keyspace "${keyspace}"`, { keyspace });
      if (typeof table !== "string" || typeof count !== "number" || !(count >= 1) || (floor !== null && !/^-?\d{1,19}$/.test(floor))) {
        throw new VtError("INVALID_ARGUMENT", "reserveIds: table, a count of at least 1 and a decimal floor or null");
      }
      return this.#ids.reserve(keyspace, table, count, floor === null ? undefined : BigInt(floor)) ?? null;
    });
  }

  /** The keyspace's schema history, in order (the Catalog replays it). */
  schemaHistory(keyspace: string): Promise<Envelope<DdlEntry[]>> {
    return envelopeAsync(async () => {
      await this.#bootstrap();
      if (!this.#store.keyspace(keyspace)) throw new VtError("INVALID_ARGUMENT", `no keyspace "${keyspace}"`, { keyspace });
      return this.#store.ddl(keyspace);
    });
  }

  /**
   * Re-sends a keyspace's config and schema to its tablets (finishing a pending change first).
   * Gates call it when a tablet answers NOT_SERVING with a version older than the graph's (a
   * sync that did not reach it).
   */
  repair(keyspace: string): Promise<Envelope<ServingGraph>> {
    return envelopeAsync(() =>
      this.#serial(async () => {
        if (!this.#store.keyspace(keyspace)) throw new VtError("INVALID_ARGUMENT", `no keyspace "${keyspace}"`);
        await this.#changes.resolve(keyspace);
        const ks = this.#store.keyspace(keyspace);
        if (ks) await this.#tablets.syncTablets(ks);
        return this.#graph();
      }),
    );
  }

  /** A workflow step (workflow-steps.ts) in the change queue. */
  #step<T>(fn: () => Promise<T> | T): Promise<Envelope<T>> {
    return envelopeAsync(() =>
      this.#serial(async () => {
        await this.#bootstrap();
        return fn();
      }),
    );
  }

  createReshard(
    keyspace: string,
    workflow: string,
    sourceShards: string[],
    targetShards: string[],
    options?: WorkflowOptions,
  ): Promise<Envelope<WorkflowRecord>> {
    return this.#step(() => this.#steps.createReshard(keyspace, workflow, sourceShards, targetShards, options));
  }

  startWorkflow(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>> {
    return this.#step(() => this.#steps.start(keyspace, workflow));
  }

  switchWrites(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>> {
    return this.#step(() => this.#steps.switchWrites(keyspace, workflow));
  }

  reverseWrites(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>> {
    return this.#step(() => this.#steps.reverseWrites(keyspace, workflow));
  }

  complete(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>> {
    return this.#step(() => this.#steps.complete(keyspace, workflow));
  }

  cancel(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>> {
    return this.#step(() => this.#steps.cancel(keyspace, workflow));
  }

  setDenyWrites(keyspace: string, shards: string[], deny: boolean): Promise<Envelope<TabletStatus[]>> {
    return this.#step(() => this.#steps.setDenyWrites(keyspace, shards, deny));
  }

  /** Not queued behind changes: it writes the record alone, in one synchronous step. */
  setWorkflowProgress(keyspace: string, workflow: string, progress: unknown): Promise<Envelope<WorkflowRecord>> {
    return envelopeAsync(async () => this.#steps.setProgress(keyspace, workflow, progress));
  }

  getWorkflow(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord | null>> {
    return envelopeAsync(async () => this.#workflows.get(keyspace, workflow) ?? null);
  }

  keyspaceTablets(keyspace: string): Promise<Envelope<string[]>> {
    return envelopeAsync(async () => {
      const out = new Set<string>();
      for (const s of this.#store.keyspace(keyspace)?.shards ?? []) out.add(s.tablet);
      for (const w of this.#workflows.list()) {
        if (!isOpen(w)) continue;
        if (w.keyspace === keyspace) for (const s of w.targets) out.add(s.tablet);
        if ((w.sourceKeyspace ?? w.keyspace) === keyspace) for (const s of w.sources) out.add(s.tablet);
      }
      return [...out].sort();
    });
  }

  /** The keyspace's binlog retention, or a change of it (topology/retention.ts), queued like any change. */
  retention(keyspace: string, change?: unknown): Promise<Envelope<KeyspaceRetention>> {
    return envelopeAsync(() =>
      this.#serial(async () => {
        await this.#bootstrap();
        return this.#retention.run(keyspace, change);
      }),
    );
  }

  /** Queued like a change, so two creates of one name never both pass the check. */
  createSubscription(spec: SubscriptionSpec): Promise<Envelope<SubscriptionRecord>> {
    return this.#step(async () => {
      const world = { keyspace: (name: string) => this.#store.keyspace(name), known: async (k: string) => unwrap(await this.keyspaceTablets(k)) };
      return this.#subscriptions.create(await checkSubscriptionSpec(spec, world), Date.now());
    });
  }

  deleteSubscription(name: string): Promise<Envelope<SubscriptionRecord>> {
    return this.#step(() => this.#subscriptions.delete(name));
  }

  updateSubscription(change: SubscriptionChange): Promise<Envelope<SubscriptionRecord>> {
    return this.#step(() => {
      const world = { keyspace: (name: string) => this.#store.keyspace(name) };
      return this.#subscriptions.update(checkSubscriptionChange(change, world, (n) => this.#subscriptions.get(n)));
    });
  }

  getSubscription(name: string): Promise<Envelope<SubscriptionRecord | null>> {
    return envelopeAsync(async () => this.#subscriptions.get(name));
  }

  subscriptions(): Promise<Envelope<SubscriptionRecord[]>> {
    return envelopeAsync(async () => this.#subscriptions.list());
  }

  /** An open workflow's streams as the tablets holding them report them (none when one does not answer). */
  async #live(w: WorkflowRecord): Promise<{ live?: WorkflowLive }> {
    if (!isOpen(w)) return {};
    try {
      const streams = (await workflowStreams(streamed(w), streamHolders(w), (name) => tabletRpc(this.env.TABLET, name))).map(({ shard, state }) => ({
        id: state.spec.id,
        target: shard.shard,
        phase: state.phase,
        rowsCopied: state.rowsCopied,
        lagMs: state.lagMs,
      }));
      return {
        live: { rowsCopied: streams.reduce((n, s) => n + s.rowsCopied, 0), lagMs: streams.reduce((n, s) => Math.max(n, s.lagMs), 0), streams },
      };
    } catch {
      return {};
    }
  }

  /** The ⚑ GET /v1/topology view: the graph plus each shard's row count, size and position. */
  view(): Promise<Envelope<TopologyView>> {
    return envelopeAsync(async () => {
      if (this.#store.meta("bootstrapped") === undefined) await this.#serial(() => this.#bootstrap());
      const graph = this.#graph();
      const keyspaces = await Promise.all(
        Object.values(graph.keyspaces).map(async (ks) => ({
          name: ks.name,
          sharded: ks.sharded,
          vschema: ks.vschema,
          retention: this.#retention.policy(ks.name),
          // The gate's system lookup tables (`_vtl_…`) are not the user's to see.
          tables: Object.values(ks.tables)
            .map((t) => t.name)
            .filter((n) => !n.toLowerCase().startsWith("_vtl_")),
          ...(ks.readShards ? { readShards: ks.readShards.map((r) => ({ name: r.name, tablet: r.tablet })) } : {}),
          shards: await Promise.all(
            ks.shards.map(async (s) => {
              const st = await tabletRpc(this.env.TABLET, s.tablet).status();
              return {
                name: s.name,
                keyRange: s.keyRange,
                serving: s.serving,
                tablet: s.tablet,
                ...(ks.readShards ? { servesReads: ks.readShards.some((r) => r.tablet === s.tablet) } : {}),
                rowCount: st.ok ? st.value.rowCount : null,
                bytes: st.ok ? st.value.bytes : null,
                position: st.ok ? st.value.position : null,
                binlog: st.ok ? (st.value.retention ?? null) : null,
              };
            }),
          ),
        })),
      );
      const workflows = await Promise.all(this.#workflows.list().map(async (w) => ({ ...w, ...(await this.#live(w)) })));
      return { version: graph.version, keyspaces, workflows };
    });
  }
}
