// The gate's capnweb main stub as the client calls it (⚑ capnweb RPC). Values travel natively
// (bigint, Uint8Array). Errors arrive as plain `Error`s with own fields `code`, `retryable`
// and sometimes `position`, `statementIndex`. Replies are checked by the client, never trusted.

import type { SqlValue } from "../contract/sql-values.ts";
import type { TopologyView } from "./api.ts";
import type { WireParams, WireStatement } from "./params.ts";

export interface ExecuteRequest {
  keyspace?: string;
  sql: string;
  params?: WireParams;
}

export interface BatchRequest {
  keyspace?: string;
  statements: WireStatement[];
  transaction?: boolean;
}

export interface WireResultSet {
  columns: string[];
  rows: SqlValue[][];
  rowsAffected: number;
  lastInsertRowid?: number | bigint;
}

export interface GateRpc {
  /** Binds the session to a token; must come first when the gate has GATE_TOKEN. */
  authenticate(token: string): void;
  execute(req: ExecuteRequest): WireResultSet;
  batch(req: BatchRequest): { results: WireResultSet[] };
  topology(): TopologyView;
  createKeyspace(req: { name: string; shards: number | string[] }): TopologyView;
  applyVSchema(req: { keyspace: string; vschema: unknown }): { keyspace: string; vschema: unknown };
  /** The keyspace's binlog retention; with retentionSeconds, retentionBytes and/or holdSeconds (null: its default), sets it (admin). */
  retention(req: { keyspace: string; retentionSeconds?: number; retentionBytes?: number; holdSeconds?: number | null }): {
    keyspace: string;
    retentionSeconds: number;
    retentionBytes: number;
    holdSeconds: number;
    isDefault: boolean;
  };
  /**
   * Creates (`action: "create"`, name, keyspace?, tables?, binding, from?), changes the tables of
   * (`action: "update"`, name, tables: a list or null for every table) or deletes (`action:
   * "delete"`, name) a queue subscription (admin).
   */
  subscription(
    req:
      | { action: "create"; name: string; keyspace?: string; tables?: string[]; binding: string; from?: string }
      | { action: "update"; name: string; tables: string[] | null }
      | { action: "delete"; name: string },
  ): unknown;
  /** The queue subscriptions with their publishers' status, or the one named. */
  subscriptions(req?: { name?: string }): { subscriptions: unknown[] };
  /** Calls onEvent per event (values native) until it returns false; answers the last token. */
  vstream(req: { keyspace?: string; tables?: string[]; from?: string; heartbeatMs?: number }, onEvent: (e: unknown) => unknown): { token: string | null };
}
