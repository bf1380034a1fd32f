// The source side of a stream: one unit of the rows a filter selects, read in one synchronous
// call (a Durable Object request is a consistent snapshot, so the tail and the copy page agree).
//
// A unit is the binlog tail after `from.seq` (whole transactions, bounded by the limits), then,
// while the copy is not done and the tail reached the binlog head, the next copy page in PRIMARY
// KEY order at exactly that head. A target applies every change keyed by the PRIMARY KEY (delete
// `before`'s key, upsert `after`), so a change to a row not copied yet needs no filtering: after
// each unit every target row equals the source row with the same key at `to.seq`.
//
// A DDL transaction is a unit of its own (a unit holding a DDL holds nothing else), so a target
// that stops on a DDL stops exactly before it, with every earlier change applied.

import { VtError } from "../contract/errors.ts";
import { decodeQuoted, normalizeInt, type SqlValue } from "../contract/sql-values.ts";
import {
  STREAM_MAX_BYTES,
  STREAM_MAX_ROWS,
  type CopyCursor,
  type RowChange,
  type StreamFilter,
  type StreamItem,
  type StreamLimits,
  type StreamPos,
  type StreamUnit,
  type StreamValue,
  type TablePlacement,
} from "../contract/stream-rpc.ts";
import { keyRangeContains, parseKeyRange, type KeyRange } from "../topology/keyrange.ts";
import { noPrimaryKey } from "../topology/placements.ts";
import { createVindex, type Vindex } from "../topology/vindex.ts";
import { imageColumns, lastSeq } from "./binlog.ts";
import { checkRetained, setHold } from "./binlog-retention.ts";
import { scanTable } from "./stream-page.ts";

/**
 * One SQLite quote() literal as an exact stream value (contract/stream-rpc.ts StreamValue): an
 * integer as normalizeInt gives it, a REAL with an integral value as `{real: n}`.
 */
export function decodeExact(lit: string): StreamValue {
  if (/^-?\d+$/.test(lit)) return normalizeInt(BigInt(lit));
  const v = decodeQuoted(lit);
  return typeof v === "number" && Number.isInteger(v) ? { real: v } : v;
}

/** A stream value as the SqlValue it stands for (an integral REAL as its number). */
export function sqlValueOf(v: StreamValue): SqlValue {
  return v !== null && typeof v === "object" && "real" in v ? v.real : v;
}

function decodeImage(text: string | null): StreamValue[] | null {
  return text === null ? null : (JSON.parse(text) as string[]).map(decodeExact);
}

/** Whether a row of one listed table falls in the filter's range. */
class TableMatcher {
  readonly placement: TablePlacement;
  readonly #range: KeyRange;
  readonly #vindex: Vindex | null;
  /** The vindex column's index, by the image's column list (the same array for events of one DDL epoch). */
  #columnsSeen: string | null = null;
  #column = -1;

  constructor(placement: TablePlacement, range: KeyRange) {
    this.placement = placement;
    this.#range = range;
    if (placement.kind === "reference") this.#vindex = null;
    else {
      if (!placement.column || !placement.vindex)
        throw new VtError("INVALID_ARGUMENT", `stream filter: sharded table ${placement.table} needs a column and a vindex`);
      this.#vindex = createVindex(placement.vindex.type, placement.vindex.params);
    }
  }

  inRange(columns: readonly string[], row: readonly StreamValue[]): boolean {
    if (this.#vindex === null) return true;
    const key = columns.join("\u0000");
    if (key !== this.#columnsSeen) {
      const want = (this.placement.column ?? "").toLowerCase();
      this.#column = columns.findIndex((c) => c.toLowerCase() === want);
      this.#columnsSeen = key;
    }
    const t = this.placement.table;
    if (this.#column < 0) throw new VtError("INTERNAL", `stream of table ${t}: its rows have no column ${this.placement.column ?? ""}`);
    const value = sqlValueOf(row[this.#column] ?? null);
    let ksid: Uint8Array;
    try {
      ksid = this.#vindex.map(value);
    } catch (e) {
      // The gate places no such row; a stream must not guess where it belongs.
      throw new VtError(
        "INTERNAL",
        `stream of table ${t}: a row's ${this.placement.column ?? ""} has no keyspace id (${e instanceof Error ? e.message : String(e)})`,
      );
    }
    return keyRangeContains(this.#range, ksid);
  }
}

type BinlogRow = {
  seq: number;
  kind: string;
  tbl: string | null;
  names: string | null;
  before: string | null;
  after: string | null;
  ts: number | null;
};

interface Budget {
  readonly maxBytes: number;
  readonly maxRows: number;
}

function budgetOf(limits: StreamLimits): Budget {
  const pick = (v: number | undefined, d: number, what: string): number => {
    if (v === undefined) return d;
    if (!Number.isFinite(v) || v < 1) throw new VtError("INVALID_ARGUMENT", `stream limits: ${what} must be a positive number`);
    return Math.floor(v);
  };
  return { maxBytes: pick(limits.maxBytes, STREAM_MAX_BYTES, "maxBytes"), maxRows: pick(limits.maxRows, STREAM_MAX_ROWS, "maxRows") };
}

/** The hold a read records: at the reader's durable position, never above where it reads from. */
function holdOf(limits: StreamLimits, seq: number): { id: string; seq: number } | null {
  const h = limits.hold;
  if (h === undefined) return null;
  if (typeof h.id !== "string" || h.id === "" || h.id.length > 512 || !Number.isSafeInteger(h.seq) || h.seq < 0) {
    throw new VtError("INVALID_ARGUMENT", "stream limits: hold must be { id: a non-empty string, seq: a binlog sequence }");
  }
  return { id: h.id, seq: Math.min(h.seq, seq) };
}

function checkFrom(filter: StreamFilter, from: StreamPos, head: number, uid: string): void {
  if (!Number.isSafeInteger(from.seq) || from.seq < 0)
    throw new VtError("INVALID_ARGUMENT", `stream position: seq ${String(from.seq)} is not a binlog sequence`);
  if (from.seq > head) {
    throw new VtError("INVALID_ARGUMENT", `stream position ${uid}:${from.seq} is past this tablet's binlog head ${uid}:${head}`);
  }
  const c = from.copy;
  if (c !== null && (!Number.isSafeInteger(c.table) || c.table < 0 || c.table >= filter.tables.length)) {
    throw new VtError("INVALID_ARGUMENT", `stream position: copy table ${String(c.table)} is not an index of the filter's ${filter.tables.length} tables`);
  }
}

/**
 * The next unit of the stream `filter` selects, from `from`, on the tablet whose binlog `sql`
 * holds (`uid` names it in messages). The tail and the copy page each read at most about
 * `limits` (the tail never splits a transaction, so its first one is whole whatever its size).
 */
export function streamUnit(sql: SqlStorage, uid: string, filter: StreamFilter, from: StreamPos, limits: StreamLimits = {}): StreamUnit {
  const budget = budgetOf(limits);
  const head = lastSeq(sql);
  checkFrom(filter, from, head, uid);
  const hold = holdOf(limits, from.seq);
  checkRetained(sql, uid, hold?.seq ?? from.seq, "stream", hold?.id);
  const range = parseKeyRange(filter.keyRange);
  const matchers = new Map<string, TableMatcher>();
  for (const p of filter.tables) {
    // Every change is applied by its key: a table without one is refused, tail or copy.
    if (primaryKey(sql, p.table)?.length === 0) throw noPrimaryKey(p.table);
    matchers.set(p.table.toLowerCase(), new TableMatcher(p, range));
  }

  const tail = readTail(sql, from.seq, head, matchers, budget);
  const rows: RowChange[] = [];
  if (hold) setHold(sql, hold.id, hold.seq, Date.now());
  let copy = from.copy;
  if (copy !== null && tail.atHead) copy = copyPage(sql, uid, filter, copy, matchers, budget, rows);
  return { from, to: { seq: tail.seq, copy }, items: tail.items, rows, lastCommitTs: tail.lastCommitTs, headSeq: head, commits: tail.commits };
}

interface Tail {
  readonly items: StreamItem[];
  readonly commits: { seq: number; ts: number | null; end: number }[];
  /** The last commit included (from.seq when none). */
  readonly seq: number;
  readonly lastCommitTs: number | null;
  /** True when every event up to the head is included (then a copy page may follow). */
  readonly atHead: boolean;
}

/** Binlog transactions after `fromSeq`, the listed tables' changes filtered by range. */
function readTail(sql: SqlStorage, fromSeq: number, head: number, matchers: ReadonlyMap<string, TableMatcher>, budget: Budget): Tail {
  const items: StreamItem[] = [];
  const commits: { seq: number; ts: number | null; end: number }[] = [];
  let seq = fromSeq;
  let lastCommitTs: number | null = null;
  let bytes = 0;
  let rows = 0;
  let txn: StreamItem[] = [];
  let txnBytes = 0;
  let txnRows = 0;
  let txnDdl = false;
  for (const e of binlogAfter(sql, fromSeq)) {
    const included = seq > fromSeq;
    if (e.kind === "commit") {
      // A DDL transaction is a unit of its own: end before it when the unit already holds one.
      if (txnDdl && included) return { items, commits, seq, lastCommitTs, atHead: false };
      items.push(...txn);
      seq = e.seq;
      lastCommitTs = e.ts;
      commits.push({ seq, ts: e.ts, end: items.length });
      bytes += txnBytes;
      rows += txnRows;
      if (txnDdl) return { items, commits, seq, lastCommitTs, atHead: false };
      txn = [];
      txnBytes = 0;
      txnRows = 0;
      if (bytes >= budget.maxBytes || rows >= budget.maxRows) return { items, commits, seq, lastCommitTs, atHead: seq === head };
      continue;
    }
    if (e.kind === "ddl") {
      txnDdl = true;
      txn.push({ ddl: e.after ?? "" });
      continue;
    }
    const size = (e.before?.length ?? 0) + (e.after?.length ?? 0);
    txnBytes += size;
    txnRows += 1;
    // Past the bounds in a later transaction: leave it whole for the next unit.
    if (included && (bytes + txnBytes > budget.maxBytes || rows + txnRows > budget.maxRows)) return { items, commits, seq, lastCommitTs, atHead: false };
    const m = e.tbl === null ? undefined : matchers.get(e.tbl.toLowerCase());
    if (!m || e.names === null) continue;
    const columns = JSON.parse(e.names) as string[];
    const before = decodeImage(e.before);
    const after = decodeImage(e.after);
    const b = before !== null && m.inRange(columns, before) ? before : null;
    const a = after !== null && m.inRange(columns, after) ? after : null;
    if (b !== null || a !== null) txn.push({ table: m.placement.table, columns, before: b, after: a });
  }
  // The binlog always ends on a commit (a reader never sees a transaction in progress).
  return { items, commits, seq, lastCommitTs, atHead: true };
}

/** The PRIMARY KEY columns of `table` in key order ([] for a rowid alone); null when the table does not exist. */
export function primaryKey(sql: SqlStorage, table: string): string[] | null {
  const cols = sql.exec<{ name: string; pk: number }>("SELECT name, pk FROM pragma_table_info(?)", table).toArray();
  if (cols.length === 0) return null;
  return cols
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
}

/**
 * Copies rows of the filter's tables from `cursor` on, appending those in range to `out`,
 * until the budget is spent; answers the cursor past every row scanned (null after the last
 * table; the scan itself is stream-page.ts).
 */
function copyPage(
  sql: SqlStorage,
  uid: string,
  filter: StreamFilter,
  start: CopyCursor,
  matchers: ReadonlyMap<string, TableMatcher>,
  budget: Budget,
  out: RowChange[],
): CopyCursor | null {
  let bytes = 0;
  let rows = 0;
  let cur: CopyCursor = start;
  for (;;) {
    const placement = filter.tables[cur.table];
    if (!placement) return null;
    const m = matchers.get(placement.table.toLowerCase());
    const pk = primaryKey(sql, placement.table);
    if (pk === null || !m) {
      // Not on this tablet (dropped since the stream began): nothing to copy.
      cur = { table: cur.table + 1, after: null };
      if (cur.table >= filter.tables.length) return null;
      continue;
    }
    const columns = imageColumns(sql, placement.table);
    if (cur.after !== null && cur.after.length !== pk.length) {
      throw new VtError("INVALID_ARGUMENT", `stream position: the copy key of ${placement.table} has ${cur.after.length} values, its PRIMARY KEY ${pk.length}`);
    }
    const scan = scanTable(sql, uid, placement.table, columns, pk, cur.after, { maxBytes: budget.maxBytes - bytes, maxRows: budget.maxRows - rows });
    for (const r of scan.rows) if (m.inRange(columns, r.row)) out.push({ table: placement.table, columns, before: null, after: r.row });
    bytes += scan.bytes;
    rows += scan.rows.length;
    const last = scan.rows.at(-1);
    if (last) cur = { table: cur.table, after: last.key };
    if (!scan.done) return cur;
    cur = { table: cur.table + 1, after: null };
    if (cur.table >= filter.tables.length) return null;
  }
}

/** Rows fetched per binlog query: a reader that stops early leaves no statement open (an open one would lock its table against DROP). */
const BATCH = 64;

/** The binlog after `fromSeq`, in order, read in batches. */
function* binlogAfter(sql: SqlStorage, fromSeq: number): Generator<BinlogRow> {
  let after = fromSeq;
  for (;;) {
    const rows = sql
      .exec<BinlogRow>(
        `SELECT b.seq, b.kind, b.tbl, c.names, b.before, b.after, b.ts
           FROM _vt_binlog b LEFT JOIN _vt_binlog_cols c ON c.id = b.cols WHERE b.seq > ? ORDER BY b.seq LIMIT ${BATCH}`,
        after,
      )
      .toArray();
    yield* rows;
    const last = rows.at(-1);
    if (!last || rows.length < BATCH) return;
    after = last.seq;
  }
}
