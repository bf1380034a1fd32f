// The serving graph: what the gate caches and plans with. Its `version` grows on every change
// (keyspace, shards, vschema, schema); tablets learn the version of their keyspace's last change
// and refuse plans made on an older one, so a stale cache costs a retry, never a wrong answer.

import type { RetentionPolicy, TabletRetention } from "./binlog-retention.ts";
import type { SubscriptionSummary } from "./subscription-rpc.ts";
import type { TableInfo } from "./tablet-rpc.ts";
import type { VSchema } from "./vschema.ts";
import type { WorkflowRecord } from "./workflow-record.ts";

export interface ShardGraph {
  readonly name: string;
  /** Hex key range, e.g. "-80". */
  readonly keyRange: string;
  readonly serving: boolean;
  /**
   * The Durable Object name of the shard's tablet. Shards made with their keyspace keep the
   * legacy `<keyspace>/<shard>` (tablet-rpc.ts tabletName); shards a workflow makes get
   * `<keyspace>/<shard>~<generation>`, so a shard name can come back on a fresh tablet.
   */
  readonly tablet: string;
}

export interface KeyspaceGraph {
  readonly name: string;
  readonly sharded: boolean;
  readonly vschema: VSchema;
  readonly shards: readonly ShardGraph[];
  /** Keyed by lower-cased table name (SQLite matches names case-insensitively). */
  readonly tables: Readonly<Record<string, TableInfo>>;
  readonly schemaIndex: number;
  /** The graph version of this keyspace's last change; tablets refuse plans older than it. */
  readonly version: number;
  /**
   * Present while a Reshard serves some key ranges' reads from other tablets than their writes
   * (`switchtraffic --tablet-types=replica`): the shards a read-only statement goes to, covering
   * the keyspace. Absent: reads go where writes go (`shards`).
   */
  readonly readShards?: readonly ShardGraph[];
}

/** The keyspace as a read-only statement outside a transaction sees it. */
export function readView(ks: KeyspaceGraph): KeyspaceGraph {
  return ks.readShards ? { ...ks, shards: ks.readShards } : ks;
}

export interface ServingGraph {
  readonly version: number;
  readonly keyspaces: Readonly<Record<string, KeyspaceGraph>>;
  /**
   * Routing rules of open MoveTables workflows (workflow-record.ts routingRules):
   * `<keyspace>.<table>` lower-cased → the keyspace whose shards serve that table's SQL.
   */
  readonly routingRules?: Readonly<Record<string, string>>;
}

/** An open workflow's streams as they stand (GET /v1/topology), read from the tablets holding them. */
export interface WorkflowLive {
  readonly rowsCopied: number;
  /** The largest lag of its streams, ms. */
  readonly lagMs: number;
  readonly streams: readonly { readonly id: string; readonly target: string; readonly phase: string; readonly rowsCopied: number; readonly lagMs: number }[];
}

/** GET /v1/topology (⚑). */
export interface TopologyView {
  version: number;
  keyspaces: {
    name: string;
    sharded: boolean;
    shards: {
      name: string;
      keyRange: string;
      serving: boolean;
      tablet: string;
      /** Present while `readShards` is: whether this shard's tablet serves reads. */
      servesReads?: boolean;
      rowCount: number | null;
      bytes: number | null;
      position: string | null;
      /** The tablet's binlog retention figures (null when the tablet did not answer). */
      binlog?: TabletRetention | null;
    }[];
    /** Present while some reads go to other tablets than writes (a Reshard's reads switched ahead of its writes). */
    readShards?: { name: string; tablet: string }[];
    tables: string[];
    vschema: VSchema;
    /** The keyspace's binlog retention setting (DEFAULT_RETENTION until set). */
    retention?: RetentionPolicy;
  }[];
  /** Every workflow's record, by keyspace and creation (closed ones until their name is used again). */
  workflows: (WorkflowRecord & { readonly live?: WorkflowLive })[];
  /** Queue subscriptions with their publishers' lag (added by the gate, which reaches the publishers). */
  subscriptions?: SubscriptionSummary[];
}

const KEYSPACE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

export function isValidKeyspaceName(name: string): boolean {
  return KEYSPACE_NAME.test(name) && !name.toLowerCase().startsWith("_vt");
}
