// The Topology's and the Catalog's RPC surfaces: what the gate may call on the one Topology
// Durable Object (by name "global") and on a keyspace's Catalog. Callers hold these interfaces,
// never the classes (topology/topology-do.ts, topology/catalog-do.ts implement them).

import type { RetentionPolicy } from "./binlog-retention.ts";
import type { Envelope } from "./envelope.ts";
import type { ServingGraph, TopologyView } from "./serving-graph.ts";
import type { BoundQuery, DdlEntry, QueryResult, RpcNamespace } from "./tablet-rpc.ts";
import type { TableVSchema } from "./vschema.ts";
import type { VDiffReport, WorkflowRequest, WorkflowView } from "./workflow-rpc.ts";
import type { TabletStatus } from "./tablet-rpc.ts";
import type { WorkflowOptions, WorkflowRecord } from "./workflow-record.ts";
import type { SubscriptionChange, SubscriptionRecord, SubscriptionSpec } from "./subscription-rpc.ts";

export interface DdlRequest {
  readonly keyspace: string;
  readonly sql: string;
  /** A vschema entry to add with the table (CREATE TABLE in a sharded keyspace without one). */
  readonly addTable?: { readonly name: string; readonly entry: TableVSchema };
  /** A table whose auto-added vschema entry goes away (DROP TABLE). */
  readonly dropTable?: string;
  /** The gate's id for this request: a retry with the same id learns the first attempt's outcome. */
  readonly requestId?: string;
}

/** awaitGraph's answer. */
export interface GraphWait {
  /** The graph, once the keyspace's version moved on; null when it did not. */
  readonly graph: ServingGraph | null;
  /** Whether the Topology waited (for a push of the keyspace's config, or its bound) rather than answering at once. */
  readonly waited: boolean;
}

export interface TopologyRpc {
  /** The serving graph (the default keyspace is created on first use). */
  graph(): Promise<Envelope<ServingGraph>>;
  /**
   * Long-poll of a request held through a cutover: the graph once the keyspace's version is no
   * longer `version` and its tablets have learned it; `graph` null when `maxMs` (at most 1000)
   * passed, or a push of its config ended, without a new version, or when it could not wait.
   */
  awaitGraph(keyspace: string, version: number, maxMs: number): Promise<Envelope<GraphWait>>;
  /** A keyspace of `shards` even shards, or of the given key ranges. */
  createKeyspace(name: string, shards: number | string[]): Promise<Envelope<ServingGraph>>;
  applyVSchema(keyspace: string, input: unknown): Promise<Envelope<ServingGraph>>;
  /** One DDL statement on every shard of the keyspace, or on none. */
  applyDdl(req: DdlRequest): Promise<Envelope<ServingGraph>>;
  /** The keyspace's schema history, in order. */
  schemaHistory(keyspace: string): Promise<Envelope<DdlEntry[]>>;
  /** Re-sends the keyspace's config and schema to its tablets (one answered with an older version). */
  repair(keyspace: string): Promise<Envelope<ServingGraph>>;
  /** The ⚑ GET /v1/topology view. */
  view(): Promise<Envelope<TopologyView>>;
  /**
   * A block of ids of a table's automatic sequence: at least `count`, none below `floor`
   * (decimal text); null when the sequence does not exist yet and no floor was given.
   */
  reserveIds(keyspace: string, table: string, count: number, floor: string | null): Promise<Envelope<IdBlock | null>>;

  // Workflows (topology/workflow-steps.ts). Every step is idempotent: a retry of one that already
  // happened answers the same record. Refusals are INVALID_ARGUMENT and change nothing.

  /**
   * Records a Reshard of adjacent serving `sourceShards` into `targetShards` (covering exactly
   * their key range) and makes the target tablets (not serving, with the schema): state "created".
   */
  createReshard(
    keyspace: string,
    workflow: string,
    sourceShards: string[],
    targetShards: string[],
    options?: WorkflowOptions,
  ): Promise<Envelope<WorkflowRecord>>;
  /** created → running (its streams move rows). */
  startWorkflow(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>>;
  /** running → switched: in one transaction the targets replace the sources in the shard set (new graph version). */
  switchWrites(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>>;
  /** switched → running: the sources replace the targets again. */
  reverseWrites(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>>;
  /** switched → completed: the source tablets are retired (emptied). */
  complete(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>>;
  /** created / running → cancelled: the target tablets are retired (emptied). */
  cancel(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord>>;
  /** Makes the tablets of serving `shards` refuse writes (TabletConfig.denyWrites) or take them again; answers their status. */
  setDenyWrites(keyspace: string, shards: string[], deny: boolean): Promise<Envelope<TabletStatus[]>>;
  /** Stores the workflow's own progress report (a JSON value up to 64 KB). */
  setWorkflowProgress(keyspace: string, workflow: string, progress: unknown): Promise<Envelope<WorkflowRecord>>;
  /** A workflow action as vtctl and the gate ask it (create, show, vdiff, switchtraffic, …; topology/reshard.ts). */
  workflow(req: WorkflowRequest): Promise<Envelope<WorkflowView | VDiffReport>>;
  /** A workflow's record, or null. */
  getWorkflow(keyspace: string, workflow: string): Promise<Envelope<WorkflowRecord | null>>;
  /**
   * Every tablet that holds or held `keyspace`'s rows and still has its binlog: the serving graph's,
   * and the sources and targets of its open workflows (a MoveTables' too, either side).
   */
  keyspaceTablets(keyspace: string): Promise<Envelope<string[]>>;
  /**
   * The keyspace's binlog retention (`change` undefined), or sets it: `change` names
   * retentionSeconds, retentionBytes or both (INVALID_ARGUMENT otherwise, changing nothing); the
   * new setting reaches every tablet of the keyspace with its config.
   */
  retention(keyspace: string, change?: unknown): Promise<Envelope<KeyspaceRetention>>;

  // Queue subscriptions (topology/subscriptions.ts). Refusals are INVALID_ARGUMENT (UNKNOWN_TABLE
  // for a table) and change nothing.

  /** Records a subscription: a new name, an existing keyspace and tables, a token of that keyspace. */
  createSubscription(spec: SubscriptionSpec): Promise<Envelope<SubscriptionRecord>>;
  /** Removes subscription `name` and answers its record (INVALID_ARGUMENT when there is none). */
  deleteSubscription(name: string): Promise<Envelope<SubscriptionRecord>>;
  /** Changes subscription `name`'s tables in place (revision + 1) and answers the record. */
  updateSubscription(change: SubscriptionChange): Promise<Envelope<SubscriptionRecord>>;
  /** The subscription `name`, or null. */
  getSubscription(name: string): Promise<Envelope<SubscriptionRecord | null>>;
  /** Every subscription, by name. */
  subscriptions(): Promise<Envelope<SubscriptionRecord[]>>;
}

/** A keyspace's binlog retention setting; `isDefault` while it was never set (DEFAULT_RETENTION). */
export interface KeyspaceRetention extends RetentionPolicy {
  readonly keyspace: string;
  readonly isDefault: boolean;
}

/** A block of ids [next, end), as decimal text (ids may exceed 2^53). */
export interface IdBlock {
  readonly next: string;
  readonly end: string;
}

export interface CatalogRpc {
  /** One read-only statement against the keyspace's schema as of at least `schemaIndex`. */
  query(keyspace: string, schemaIndex: number, q: BoundQuery): Promise<Envelope<QueryResult>>;
}

/** The one Topology in the namespace `ns` (the TOPOLOGY binding). */
export function topologyRpc<Id>(ns: RpcNamespace<TopologyRpc, Id>): TopologyRpc {
  return ns.get(ns.idFromName("global"));
}

/** The Catalog of `keyspace` in the namespace `ns` (the CATALOG binding). */
export function catalogRpc<Id>(ns: RpcNamespace<CatalogRpc, Id>, keyspace: string): CatalogRpc {
  return ns.get(ns.idFromName(keyspace));
}
