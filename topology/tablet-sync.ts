// How the Topology reaches a keyspace's tablets: the config each is sent (its shard, version,
// serving state, denied writes and tables, rejoins, retention), the tablets that keep the
// keyspace's schema, and a fan-out that calls all of them and waits for every answer, failed or
// not. A push of the keyspace's config ends by answering the gate requests held through a
// cutover (graph-waiters.ts).

import { unwrap, type Envelope } from "../contract/envelope.ts";
import { toVtError, type VtError } from "../contract/errors.ts";
import type { RetentionPolicy } from "../contract/binlog-retention.ts";
import type { KeyspaceGraph, ShardGraph } from "../contract/serving-graph.ts";
import { tabletRpc, type Awaitable, type TabletConfig, type TabletStatus } from "../contract/tablet-rpc.ts";
import { InjectedFault, tabletFault, type TabletOp } from "./failpoints.ts";
import type { GraphWaiters } from "./graph-waiters.ts";
import { arrivalsOf, rejoinsOf } from "./movetables-rejoin.ts";
import type { PendingChanges } from "./pending.ts";
import { readOnlyTablets } from "./read-routing.ts";
import type { TopologyStore } from "./topology-store.ts";
import type { WorkflowStore } from "./workflow-store.ts";

export interface ShardOutcome<T> {
  readonly shard: string;
  readonly value?: T;
  readonly error?: VtError;
}

export interface TabletSyncDeps {
  readonly tablets: Env["TABLET"];
  readonly store: TopologyStore;
  readonly workflows: WorkflowStore;
  readonly pending: PendingChanges;
  readonly waiters: GraphWaiters;
  /** The keyspace's binlog retention setting. */
  readonly retention: (keyspace: string) => RetentionPolicy;
}

export class TabletSync {
  readonly #d: TabletSyncDeps;

  constructor(deps: TabletSyncDeps) {
    this.#d = deps;
  }

  /** What shard `s` of `ks` is told it serves and refuses. */
  config(ks: KeyspaceGraph, s: ShardGraph): TabletConfig {
    const open = this.#d.workflows.open(ks.name);
    const reader = !s.serving && readOnlyTablets(ks, open).has(s.tablet);
    const denied = s.serving ? this.#d.workflows.deniedTables(ks.name) : [];
    const rejoins = s.serving ? rejoinsOf(ks.name, open) : [];
    const arrivals = s.serving ? arrivalsOf(ks.name, open) : [];
    return {
      keyspace: ks.name,
      shard: s.name,
      keyRange: s.keyRange,
      serving: s.serving,
      version: ks.version,
      retention: this.#d.retention(ks.name),
      ...(reader ? { servesReads: true } : {}),
      ...(denied.length > 0 ? { deniedTables: denied } : {}),
      ...(rejoins.length > 0 ? { rejoins } : {}),
      ...(arrivals.length > 0 ? { arrivals } : {}),
      ...(s.serving && this.#d.store.deniedShards(ks.name).has(s.name) ? { denyWrites: true } : {}),
    };
  }

  /** Every tablet that keeps the keyspace's schema: its shards, and its open workflows' standby tablets. */
  members(ks: KeyspaceGraph): ShardGraph[] {
    return [...ks.shards, ...this.#d.workflows.standby(ks.name)];
  }

  /** Runs `call` on every one of `shards` and waits for all of them, failed or not, in order. */
  async fanOut<T>(shards: readonly ShardGraph[], op: TabletOp, call: (s: ShardGraph) => Awaitable<Envelope<T>>): Promise<ShardOutcome<T>[]> {
    const settled = await Promise.allSettled(shards.map((s) => tabletCall(op, s.name, () => call(s))));
    return settled.map((r, i) => {
      const shard = shards[i]?.name ?? "?";
      return r.status === "fulfilled" ? { shard, value: r.value } : { shard, error: toVtError(r.reason) };
    });
  }

  /** Syncs the keyspace's tablets (all members by default) to their config and history, reconciling fences with the pending change. */
  syncAll(ks: KeyspaceGraph, shards: readonly ShardGraph[] = this.members(ks)): Promise<ShardOutcome<TabletStatus>[]> {
    const ddl = this.#d.store.ddl(ks.name);
    const keep = this.#d.pending.keep(ks.name);
    return this.#d.waiters.sync(ks.name, () => this.fanOut(shards, "sync", (s) => tabletRpc(this.#d.tablets, s.tablet).sync(this.config(ks, s), ddl, keep)));
  }

  /** Pushes the keyspace's config and schema to each of its tablets; the first failure is thrown. */
  async syncTablets(ks: KeyspaceGraph, shards?: readonly ShardGraph[]): Promise<TabletStatus[]> {
    const out = await this.syncAll(ks, shards);
    const failed = out.find((o) => o.error);
    if (failed?.error) throw failed.error;
    return out.flatMap((o) => (o.value ? [o.value] : []));
  }
}

/** One tablet call of a change fan-out (where the failpoints sit). */
async function tabletCall<T>(op: TabletOp, shard: string, call: () => Awaitable<Envelope<T>>): Promise<T> {
  if (tabletFault(op, shard, "before")) throw new InjectedFault(`${op} to ${shard} lost`);
  const res = await call();
  if (tabletFault(op, shard, "after")) throw new InjectedFault(`answer to ${op} from ${shard} lost`);
  return unwrap(res);
}
