// Streams between tablets (VReplication) and to subscribers (VStream): the shapes that cross
// tablet, queue and workflow boundaries. One source-side reader (tablet/streamer.ts) serves both.
//
// A stream copies and then follows the rows of a source shard that fall in a target key range.
// Its position is a `StreamPos`: every change the source committed up to binlog `seq` is
// reflected, and the copy has reached `copy`. The source hands out *units* (a piece of copy and
// binlog tail, from one position to the next); the target applies a unit only when the unit's
// `from` is exactly where the target stands, in one transaction with the new position, so a
// unit delivered twice or out of order is never applied twice or out of order.

import type { SqlValue } from "./sql-values.ts";

/** How a table's rows are placed on shards (from the keyspace's vschema). */
export interface TablePlacement {
  /** The table's name as the tablet holds it. */
  readonly table: string;
  /** "sharded": by `column` through `vindex`; "reference": a full copy on every shard. */
  readonly kind: "sharded" | "reference";
  readonly column?: string;
  readonly vindex?: { readonly type: string; readonly params?: Readonly<Record<string, string>> };
}

/** What a stream carries: the rows of `tables` whose keyspace id falls in `keyRange`. */
export interface StreamFilter {
  /** Hex key range of the target, e.g. "-40". */
  readonly keyRange: string;
  /** Tables in copy order; a table not listed is neither copied nor followed. */
  readonly tables: readonly TablePlacement[];
}

/** Where the copy phase stands: `table` is an index into `StreamFilter.tables`. */
export interface CopyCursor {
  readonly table: number;
  /** The primary key (rowid without one) of the last row scanned, or null before the first. */
  readonly after: readonly SqlValue[] | null;
}

export interface StreamPos {
  /** Source binlog sequence: every change committed up to it is reflected (always a commit). */
  readonly seq: number;
  /** The copy phase's cursor; null once every table is copied (then only the binlog follows). */
  readonly copy: CopyCursor | null;
}

/**
 * A value in a stream: a SqlValue, except that a REAL whose value is integral travels as
 * `{real: n}` (a JS number alone would be taken for an INTEGER, and `1.0` must stay REAL on the
 * target). Integers beyond 2^53 are bigints, BLOBs Uint8Arrays, as everywhere.
 */
export type StreamValue = SqlValue | { readonly real: number };

/** One row change of a unit, in source commit order. Images are exact values by column name. */
export interface RowChange {
  readonly table: string;
  readonly columns: readonly string[];
  /** The row before the change, when it was in the filter's range (null: treat as absent). */
  readonly before: readonly StreamValue[] | null;
  /** The row after the change, when it is in the filter's range (null: it is gone from the range). */
  readonly after: readonly StreamValue[] | null;
}

/** A DDL the source applied (applied or not according to the stream's on_ddl policy). A unit holding one holds nothing else. */
export interface DdlChange {
  readonly ddl: string;
}

export type StreamItem = RowChange | DdlChange;

/** What the source hands out for one step of a stream. */
export interface StreamUnit {
  readonly from: StreamPos;
  readonly to: StreamPos;
  /** Binlog changes in (from.seq, to.seq], in commit order. */
  readonly items: readonly StreamItem[];
  /**
   * Rows copied at to.seq (after the items), as `before: null` changes: the page of the copy that
   * moved the cursor from `from.copy` to `to.copy`. Kept apart from `items` because the target
   * skips binlog changes of tables whose copy has not begun (their copy will carry them), never
   * copied rows.
   */
  readonly rows: readonly RowChange[];
  /** Commit time (unix ms) of the last binlog transaction in the unit, for lag; null when none. */
  readonly lastCommitTs: number | null;
  /** The source's binlog head when the unit was read (the unit ends there unless bounded). */
  readonly headSeq: number;
  /**
   * The transactions of `items`, in order: each one's commit sequence and time and the index in
   * `items` just past its last change (a transaction none of whose changes the filter kept is
   * listed too, with no items). VStream hands them out one by one.
   */
  readonly commits?: readonly { readonly seq: number; readonly ts: number | null; readonly end: number }[];
}

/**
 * How much one unit may read: the tail stops at the first commit past either bound (a transaction
 * is never split, so the first one is whole whatever its size), and a copy page at either bound.
 */
export interface StreamLimits {
  /** Bytes of row images read, as SQLite quote() writes them (default STREAM_MAX_BYTES). */
  readonly maxBytes?: number;
  /** Binlog row events and copied rows read (default STREAM_MAX_ROWS). */
  readonly maxRows?: number;
  /**
   * The reader's durable position (a stream's applied position, where a restart reads from): the
   * source records it as the binlog-retention hold `id`, so its purge never deletes past `seq`.
   */
  readonly hold?: { readonly id: string; readonly seq: number };
}

export const STREAM_MAX_BYTES = 1 << 20;
export const STREAM_MAX_ROWS = 10_000;

/** What a DDL in the source's binlog does to a stream (Vitess's on_ddl). */
export type OnDdl = "ignore" | "stop" | "exec";

/** A stream as its target tablet records it (`_vt_vreplication`). */
export interface StreamSpec {
  /** Unique on the target: `<workflow>/<source shard>`. */
  readonly id: string;
  readonly workflow: string;
  /** The target tablet's Durable Object name (where the stream lives; its parts are addressed to it). */
  readonly targetTablet: string;
  /** The source tablet's Durable Object name (contract/tablet-rpc.ts tabletName or a generation's). */
  readonly sourceTablet: string;
  readonly sourceShard: string;
  readonly filter: StreamFilter;
  readonly onDdl: OnDdl;
  /** Where it starts: `{seq: 0, copy: {table: 0, after: null}}` copies everything first. */
  readonly start: StreamPos;
}

export type StreamPhase = "copy" | "running" | "stopped" | "error";

export interface StreamState {
  readonly spec: StreamSpec;
  readonly phase: StreamPhase;
  readonly pos: StreamPos;
  /** Rows copied so far, and the source's row estimate of the streamed tables when copy began. */
  readonly rowsCopied: number;
  /** ms between the source committing the last applied transaction and its apply; 0 when caught up. */
  readonly lagMs: number;
  /** Why it stopped (phase "stopped" or "error"), else null. */
  readonly message: string | null;
  readonly updatedAt: number;
  /** When its copy phase ended (unix ms, the target's clock); null while copying, or when it had nothing to copy. */
  readonly copiedAt: number | null;
}

/**
 * One queue message of a stream: a part of an encoded unit (msgpack, cut into pieces that fit a
 * queue message). Parts of one chain are numbered by `step` without gaps; a new chain (`epoch`)
 * starts again at the stream's last unit boundary and outdates every part of the ones before.
 */
export interface StreamPart {
  /** The target tablet's Durable Object name. */
  readonly target: string;
  readonly stream: string;
  readonly epoch: number;
  readonly step: number;
  /** The unit's id (random per unit read), its part number and its number of parts. */
  readonly unit: string;
  readonly part: number;
  readonly parts: number;
  /** The unit's start position, on its first part. */
  readonly from?: StreamPos;
  readonly bytes: Uint8Array;
}

/**
 * What a target did with a part: taken ("applied"), already had or outdated ("duplicate": drop
 * it), not its turn yet ("early": deliver it again later), or the stream no longer exists ("gone").
 */
export type StreamPartOutcome = "applied" | "duplicate" | "early" | "gone";

export interface VDiffSample {
  readonly kind: "missing" | "extra" | "mismatched";
  readonly key: readonly SqlValue[];
}

/** One table's comparison in a VDiff chunk (counts grow as the chunk is compared). */
export interface VDiffTable {
  readonly table: string;
  compared: number;
  missing: number;
  extra: number;
  mismatched: number;
  readonly samples: VDiffSample[];
}

export interface VDiffChunk {
  readonly tables: VDiffTable[];
  /** Where the next chunk starts, or null when every table was compared. */
  readonly next: CopyCursor | null;
}
