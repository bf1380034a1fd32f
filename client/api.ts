// The public API of the client SDK (`vitess-do/client`), in one place. Everything a user can
// touch is declared or re-exported here; the implementation lives in vitess-client.ts.

import type { SqlValue } from "../contract/sql-values.ts";
import type { WorkflowRecord } from "../contract/workflow-record.ts";
import type { WorkflowLive } from "../contract/serving-graph.ts";
import type { SubscriptionSummary } from "../contract/subscription-rpc.ts";
import type { ChangeEvent, VStream, VStreamOptions } from "./vstream.ts";

export type { ChangeEvent, ChangeRow, VStream, VStreamOptions } from "./vstream.ts";
import { VitessClient } from "./vitess-client.ts";

export { VitessError, type ErrorCode, type VitessErrorOptions } from "./vitess-error.ts";

/**
 * A value in a result: `null`, a `number` (INTEGER within ±(2^53−1), or REAL), a `bigint`
 * (INTEGER beyond 2^53, exact to 64 bits), a `string` (TEXT) or a `Uint8Array` (BLOB).
 */
export type Value = SqlValue;

/**
 * A value accepted as a parameter: every {@link Value}, plus `boolean` (sent as 1 / 0),
 * `ArrayBuffer` (sent as a BLOB) and `undefined` (sent as NULL). Anything else is rejected
 * with `INVALID_ARGUMENT` before the request is sent.
 */
export type InValue = Value | boolean | ArrayBuffer | undefined;

/**
 * Statement parameters: positional (`?`, `?NNN`, `$N`) as an array, or named
 * (`:name`, `@name`, `$name`) as an object whose keys are the names with or without the prefix,
 * as the server accepts them.
 */
export type Params = readonly InValue[] | Readonly<Record<string, InValue>>;

/** One statement of a batch. */
export interface Statement {
  readonly sql: string;
  readonly params?: Params;
}

/** A statement given either as SQL text alone or as `{ sql, params }`. */
export type InStatement = Statement | string;

/** The result of one statement. */
export interface ResultSet {
  /** Column names in order; a name may repeat (`SELECT a, a FROM t`). Empty for a write without RETURNING. */
  columns: string[];
  /** Rows as arrays in `columns` order. */
  rows: Value[][];
  /** Rows inserted, updated or deleted (0 for a read). */
  rowsAffected: number;
  /** The rowid of the last inserted row, when the statement inserted one. */
  lastInsertRowid?: number | bigint;
}

/** A row as an object keyed by column name; when a name repeats, the last column wins. */
export type Row = Record<string, Value>;

/** Options for {@link Client.batch}. */
export interface BatchOptions {
  /** All statements commit together or none does (the server answers `TX_ABORTED` or the failing statement's error). */
  readonly transaction?: boolean;
}

/** How {@link createClient} reaches the gate. */
export interface ClientConfig {
  /** The gate's base URL, e.g. `http://127.0.0.1:8787`; RPC goes to `<url>/rpc`. */
  url: string;
  /** Keyspace for every statement; the server's default keyspace when omitted. */
  keyspace?: string;
  /** Bearer token (`GATE_TOKEN`, or `ADMIN_TOKEN` which grants both). */
  token?: string;
  /**
   * `"http"` (default): one capnweb HTTP batch per call, stateless, works everywhere `fetch` does.
   * `"websocket"`: one capnweb WebSocket session kept open until {@link Client.close}; needs a
   * global `WebSocket` (Node ≥ 22, Workers, browsers), or `fetch` able to upgrade (Workers).
   */
  transport?: "http" | "websocket";
  /**
   * The `fetch` to use instead of the global one, e.g. a service binding's `fetch` or
   * `SELF.fetch.bind(SELF)` in tests. With `transport: "websocket"` the socket is opened through
   * it (`Upgrade: websocket`, Workers' `response.webSocket`).
   */
  fetch?: typeof fetch;
}

/** One shard as the topology reports it. */
export interface ShardView {
  /** Shard name, the hex key range it was created with: `-80`, `80-`, `-`. */
  name: string;
  /** The half-open key range `[start, end)` in hex, e.g. `40-80`. */
  keyRange: string;
  /** Whether the shard serves queries in the current serving graph. */
  serving: boolean;
  /** The shard's tablet (its Durable Object's name). */
  tablet: string;
  /** Present while some of the keyspace's reads go to other tablets than its writes. */
  servesReads?: boolean;
  /** Null when the tablet did not answer. */
  rowCount: number | null;
  bytes: number | null;
  /** The tablet's binlog position, `<uid>:<seq>`. */
  position: string | null;
}

/** One keyspace as the topology reports it. */
export interface KeyspaceView {
  name: string;
  sharded: boolean;
  shards: ShardView[];
  tables: string[];
  /** The keyspace's vschema (the Vitess JSON form). */
  vschema: unknown;
  /** Present while a Reshard serves some reads from other shards than writes: the shards reads go to. */
  readShards?: { name: string; tablet: string }[];
}

/** The cluster as the gate sees it (the same JSON as `GET /v1/topology`). */
export interface TopologyView {
  /** Serving graph version; grows on every change. */
  version: number;
  keyspaces: KeyspaceView[];
  /** Resharding / MoveTables workflows (empty until workflows exist), as the Topology records them. */
  workflows: (WorkflowRecord & { live?: WorkflowLive })[];
  /** Queue subscriptions with their lag, messages published and last error (see client/subscription.ts). */
  subscriptions?: SubscriptionSummary[];
}

/** What a transaction callback receives. Reserved: interactive transactions are not available yet. */
export interface Transaction {
  execute(sql: string, params?: Params): Promise<ResultSet>;
  query<T = Row>(sql: string, params?: Params): Promise<T[]>;
}

/** A connection to a vitess-do gate. Every method rejects with a {@link VitessError}. */
export interface Client {
  /** True once {@link close} has been called. */
  readonly closed: boolean;

  /**
   * Runs one statement (SQLite dialect) and returns its columns and rows.
   * @example await db.execute("SELECT * FROM users WHERE id = ?", [42n])
   */
  execute(sql: string, params?: Params): Promise<ResultSet>;

  /**
   * Runs one statement and returns its rows as objects keyed by column name (a repeated name
   * keeps the last column). `T` is not checked against the data.
   */
  query<T = Row>(sql: string, params?: Params): Promise<T[]>;

  /**
   * Runs statements in order in one request and returns one result per statement. With
   * `{ transaction: true }` they apply all or nothing. A failing statement's error carries
   * `statementIndex`.
   */
  batch(statements: readonly InStatement[], options?: BatchOptions): Promise<ResultSet[]>;

  /**
   * Interactive transactions are not available yet: this always rejects with `UNSUPPORTED`.
   * Use `batch(statements, { transaction: true })` for an all-or-nothing group of statements.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;

  /** Keyspaces, shards (key range, serving, row count, bytes), the serving graph version, workflows. */
  topology(): Promise<TopologyView>;

  /**
   * Every committed change of the keyspace's tables (or `options.tables`), from `options.from`:
   * "now" (default), "start" (the rows as they are, then the changes) or a stored token. Per
   * shard, transactions arrive whole (BEGIN, ROWs, COMMIT) in commit order; each COMMIT,
   * HEARTBEAT and JOURNAL carries the token to resume from. Iterate it, or pass `onEvent`
   * (return false to stop; the promise then resolves with the last token).
   *
   * @example
   * for await (const e of db.vstream({ tables: ["users"], from: "now" })) if (e.type === "ROW") console.log(e.op, e.after);
   */
  vstream(options?: VStreamOptions): VStream;
  vstream(options: VStreamOptions, onEvent: (e: ChangeEvent) => unknown): Promise<{ token: string | null }>;

  /**
   * Ends the client (closes the WebSocket, if any). Idempotent. Afterwards every call rejects
   * with `INVALID_ARGUMENT` "client is closed".
   */
  close(): Promise<void>;
}

/**
 * Creates a client. Nothing is sent until the first call.
 * Throws `INVALID_ARGUMENT` for a malformed config, or for `transport: "websocket"` on a runtime
 * without a global `WebSocket` (Node 20) when no `fetch` is given.
 *
 * @example
 * const db = createClient({ url: "http://127.0.0.1:8787", keyspace: "main", token });
 * const rs = await db.execute("SELECT * FROM users WHERE id = ?", [42]);
 * await db.close();
 */
export function createClient(config: ClientConfig): Client {
  return new VitessClient(config);
}
