// The tablet's RPC surface: what the gate and the Topology may call on a shard's Durable Object,
// and the shapes that cross that boundary. Callers hold a `TabletRpc`, never the class.

import type { RetentionPolicy, TabletRetention } from "./binlog-retention.ts";
import type { Envelope } from "./envelope.ts";
import type { SqlValue } from "./sql-values.ts";
import type { ShardJournal, ShardRead, ShardReadRequest } from "./vstream.ts";
import type {
  CopyCursor,
  StreamFilter,
  StreamLimits,
  StreamPart,
  StreamPartOutcome,
  StreamPos,
  StreamSpec,
  StreamState,
  StreamUnit,
  VDiffChunk,
} from "./stream-rpc.ts";

/** What a caller believes it is talking to. The tablet refuses (NOT_SERVING) anything else. */
export interface Target {
  readonly keyspace: string;
  readonly shard: string;
  /** The serving-graph version the caller planned with; older than the tablet's → NOT_SERVING. */
  readonly version: number;
}

/** One statement with its parameters already bound positionally (`?` only). */
export interface BoundQuery {
  readonly sql: string;
  readonly params: readonly SqlValue[];
  /**
   * "read": only reads (SELECT / VALUES / WITH … SELECT), so it may be re-run to recover int64
   * exactness; "insert": reports lastInsertRowid; "write": any other change.
   */
  readonly kind: "read" | "insert" | "write";
  /** A read whose result also says which integral numbers are REALs (QueryResult.reals): an INSERT … SELECT writes them back as REALs. */
  readonly reals?: true;
}

/**
 * A write's RETURNING list may end with a quote() copy of each item, named `_vtg_q0`, `_vtg_q1`,
 * …: the tablet then answers the items' names with the copies' values, decoded exactly
 * (tablet/exact-values.ts). Users cannot name `_vt…`, so only the gate writes such columns.
 */
export const COPY_PREFIX = "_vtg_q";

export interface QueryResult {
  columns: string[];
  rows: SqlValue[][];
  rowsAffected: number;
  lastInsertRowid?: number | bigint;
  /**
   * Asked for by BoundQuery.reals: per row, the columns holding a REAL whose value is integral
   * (SQLite's 1.0, which JavaScript reads as 1), in increasing order.
   */
  reals?: number[][];
}

/** A DDL statement in a keyspace's schema history; `index` counts from 1 and has no holes. */
export interface DdlEntry {
  readonly index: number;
  readonly sql: string;
}

export interface TabletConfig {
  readonly keyspace: string;
  readonly shard: string;
  /** Hex key range, e.g. "-80". */
  readonly keyRange: string;
  readonly serving: boolean;
  readonly version: number;
  /**
   * While a SwitchTraffic moves writes away from this shard: any batch holding a write is refused
   * (NOT_SERVING with `switching: true`) before anything runs; reads still run.
   */
  readonly denyWrites?: boolean;
  /**
   * Tables moved to another keyspace (MoveTables, lower-cased): a batch writing any of their rows
   * is rolled back and refused (NOT_SERVING with `switching: true`, so the gate holds it and
   * retries on the new routing rules); other tables take writes as before.
   */
  readonly deniedTables?: readonly string[];
  /**
   * A tablet that does not serve writes but serves its shard's reads (a Reshard's targets after
   * `switchtraffic --tablet-types=replica`, or its sources after a switch of writes alone): a
   * batch of reads only is answered, anything else is NOT_SERVING.
   */
  readonly servesReads?: boolean;
  /**
   * Tables a reversed MoveTables gives back to this shard: before the tablet takes their writes
   * again it writes, once per id, a journal marker (ShardJournal.rejoin) into its binlog, so a
   * VStream that followed them away knows where they are back.
   */
  readonly rejoins?: readonly { readonly id: string; readonly workflow: string; readonly tables: readonly string[] }[];
  /**
   * Tables a switched MoveTables brought to this shard of its target keyspace: before the tablet
   * takes their writes (their deny lifted in the same config) it writes, once per id, a journal
   * marker (ShardJournal.arrival), so a VStream that reads this shard for other tables knows where
   * their changes start here.
   */
  readonly arrivals?: readonly { readonly id: string; readonly workflow: string; readonly sourceKeyspace: string; readonly tables: readonly string[] }[];
  /**
   * The keyspace's binlog retention (the Topology sends it with every config): the tablet's alarm
   * purges its binlog under it. Absent (a config from before retention was set): DEFAULT_RETENTION.
   */
  readonly retention?: RetentionPolicy;
}

export interface ColumnInfo {
  readonly name: string;
  readonly type: string;
  /** 1-based position in the primary key, 0 when not part of it. */
  readonly pk: number;
  readonly notNull: boolean;
}

export interface TableInfo {
  readonly name: string;
  readonly columns: readonly ColumnInfo[];
  /** The CREATE TABLE text as SQLite keeps it (declared collations are read from it). */
  readonly sql: string;
  /** The CREATE INDEX texts of the table's declared indexes as SQLite keeps them, by name (absent when it has none; a key's automatic index is not one). */
  readonly indexes?: readonly string[];
}

export type BinlogEventKind = "insert" | "update" | "delete" | "ddl" | "journal" | "commit";

export interface BinlogEvent {
  /** Sequence number within this tablet; grows by one per event. */
  readonly seq: number;
  readonly kind: BinlogEventKind;
  readonly table: string | null;
  /** Column names of the images (row events). */
  readonly columns: readonly string[] | null;
  readonly before: readonly SqlValue[] | null;
  readonly after: readonly SqlValue[] | null;
  /** The statement text (ddl events); the journal as JSON (journal events, a contract/vstream.ts ShardJournal). */
  readonly sql: string | null;
  /** Unix ms (commit events). */
  readonly ts: number | null;
}

export interface BinlogChunk {
  readonly events: BinlogEvent[];
  /** Position after the last event returned (always at a commit boundary). */
  readonly position: string;
  /** True when more events follow. */
  readonly more: boolean;
}

export interface TabletStatus {
  readonly uid: string;
  readonly config: TabletConfig | null;
  readonly position: string;
  readonly rowCount: number;
  readonly bytes: number;
  readonly schemaIndex: number;
  /** The token of the change whose write fence the tablet holds, or null. */
  readonly fence: string | null;
  /** Statements executed since the instance started (in memory only). */
  readonly served: number;
  readonly tables: TableInfo[];
  /** The binlog's retention figures (contract/binlog-retention.ts). */
  readonly retention?: TabletRetention;
}

/** A tablet's answer to phase one of a schema or vschema change. */
export interface PreparedChange {
  readonly status: TabletStatus;
  /** The tables as they would be after the entry (as they are, for a fence alone). */
  readonly tables: TableInfo[];
  /** User tables holding at least one row on this shard. */
  readonly nonEmpty: string[];
}

/**
 * The methods of a tablet (tablet/tablet.ts implements them). Each answers an envelope; over RPC
 * every answer is a promise, in process it may be the envelope itself.
 */
export interface TabletRpc {
  /** The statements as one transaction on the shard `target` names (NOT_SERVING when it is not this one). */
  execute(target: Target, queries: BoundQuery[]): Awaitable<Envelope<QueryResult[]>>;
  /** Brings the tablet to `config` and the schema history `ddl`; `keep` names the fence the Topology still holds. */
  sync(config: TabletConfig, ddl: DdlEntry[], keep?: string | null): Awaitable<Envelope<TabletStatus>>;
  /** Phase one of a schema or vschema change: tries `entry` and holds the write fence `token`. */
  prepareChange(config: TabletConfig, ddl: DdlEntry[], token: string, entry: DdlEntry | null): Awaitable<Envelope<PreparedChange>>;
  /** Binlog events after position `from` (null: from the start), at most `limit`, ending at a commit. */
  readBinlog(from: string | null, limit?: number): Awaitable<Envelope<BinlogChunk>>;
  status(): Awaitable<Envelope<TabletStatus>>;
  /** The next unit of a stream of this tablet's rows that `filter` selects, from `from` (tablet/streamer.ts). */
  streamUnit(filter: StreamFilter, from: StreamPos, limits?: StreamLimits): Awaitable<Envelope<StreamUnit>>;
  /** Deletes everything the tablet holds (rows, schema, binlog, config, streams): a shard a workflow retired. */
  retire(): Awaitable<Envelope<TabletStatus>>;
  /** Target side: records a stream and starts pumping it (idempotent for the same spec). */
  startStream(spec: StreamSpec): Awaitable<Envelope<StreamState>>;
  /** The streams this tablet is the target of. */
  streams(): Awaitable<Envelope<StreamState[]>>;
  /** Stops ("stop"), lets move again ("resume") or forgets ("delete") a stream; its rows stay. */
  controlStream(id: string, action: "stop" | "resume" | "delete"): Awaitable<Envelope<StreamState | null>>;
  /** Parts from the queue, taken in order; one outcome per part. */
  applyStreamParts(parts: StreamPart[]): Awaitable<Envelope<StreamPartOutcome[]>>;
  /**
   * Reads the stream's source directly (not through the queue) and applies until the stream stands
   * at binlog `untilSeq` or later with its copy done: the last step of a switch. With `then:
   * "stop"` the stream is stopped in the same step, so nothing moves it between the two.
   */
  drainStream(id: string, untilSeq: number, then?: "stop"): Awaitable<Envelope<StreamState>>;
  /** One VStream read of this tablet's binlog (tablet/vstreamer.ts), waiting up to `req.waitMs` for a commit when there is nothing yet. */
  vstreamRead(req: ShardReadRequest): Awaitable<Envelope<ShardRead>>;
  /**
   * Writes a journal (a switch moved this shard's writes, see contract/vstream.ts ShardJournal) as
   * a transaction of its own at the end of the binlog; once per `id` (a repeat answers the first's
   * commit seq). Served whatever the tablet's serving state.
   */
  appendJournal(id: string, journal: ShardJournal): Awaitable<Envelope<{ readonly seq: number }>>;
  /** The commit seq of the journal or marker this tablet wrote under `id` (null: none). */
  journalSeq(id: string): Awaitable<Envelope<{ readonly seq: number | null }>>;
  /** VDiff of one chunk of the stream's rows from `cursor` (the stream must run); see tablet/stream-vdiff.ts. */
  vdiffStream(id: string, cursor: CopyCursor, maxRows: number): Awaitable<Envelope<VDiffChunk>>;
  /**
   * Records the binlog-retention hold `id` at `seq` (a stream about to start reading from there):
   * no purge passes it until the reader moves it or it is released. A hold `id` already lower stays
   * where it is (never moved forward here); answers where it stands. A `seq` below the floor is
   * refused (INVALID_ARGUMENT, too old). Idempotent.
   */
  holdBinlog(id: string, seq: number): Awaitable<Envelope<{ readonly seq: number }>>;
  /** Forgets the hold (and cut-off record) of reader `id`; `released` says whether it had one. Idempotent. */
  releaseHold(id: string): Awaitable<Envelope<{ readonly released: boolean }>>;
}

export type Awaitable<T> = T | Promise<T>;

/** A Durable Object namespace as a caller sees it: names to ids, ids to stubs of `T`. */
export interface RpcNamespace<T, Id> {
  idFromName(name: string): Id;
  get(id: Id): T;
}

/**
 * The Durable Object name of a shard's tablet: `<keyspace>/<shard>` for every shard made with its
 * keyspace (the legacy name), `<keyspace>/<shard>~<generation>` for one a workflow made. Callers
 * holding a serving graph use its `ShardGraph.tablet`.
 */
export function tabletName(keyspace: string, shard: string, generation?: number): string {
  return generation === undefined ? `${keyspace}/${shard}` : `${keyspace}/${shard}~${generation}`;
}

/** The tablet of Durable Object name `tablet` (a `ShardGraph.tablet`) in the namespace `ns` (the TABLET binding). */
export function tabletRpc<Id>(ns: RpcNamespace<TabletRpc, Id>, tablet: string): TabletRpc {
  return ns.get(ns.idFromName(tablet));
}
