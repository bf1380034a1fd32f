// One table's part of a copy page, read on the source: the rows after a key in PRIMARY KEY order,
// each value exact, until a budget is spent. Keys are compared and ordered as their columns
// collate, the order the PRIMARY KEY's index holds them in, so each query is one seek (a key
// declaring a collation other than its column's could tie two rows; SQLite schemas almost never do).
//
// The streams of one source (a split has one per target) walk the same rows in the same pages,
// each keeping the rows of its own key range. So the last few scans are kept per tablet, keyed by
// everything a scan depends on, and a scan asked again is answered from them: the key includes
// total_changes() (every write of this object moves it, DDL included) and the tablet's uid (a
// retired tablet starts a new one), so a kept scan is only ever the very rows a new query reads.

import { normalizeInt, quoteIdent, type SqlValue } from "../contract/sql-values.ts";
import type { StreamValue } from "../contract/stream-rpc.ts";
import { unsupportedError } from "../topology/refusals.ts";

/** A key value as bound (an integral REAL as its number): streamer.ts sqlValueOf, kept here so neither file imports the other. */
function sqlValueOf(v: StreamValue): SqlValue {
  return v !== null && typeof v === "object" && "real" in v ? v.real : v;
}

/** A row of a scan and its PRIMARY KEY values. */
export interface ScannedRow {
  readonly row: readonly StreamValue[];
  readonly key: readonly SqlValue[];
}

export interface Scan {
  readonly rows: readonly ScannedRow[];
  /** About the quote() length of every value read (see quotedLength). */
  readonly bytes: number;
  /** True when the table ended before the budget did. */
  readonly done: boolean;
}

/** Copy rows fetched by the first query of a scan; each later one fetches twice as many, up to the most. */
const FIRST_BATCH = 64;
const MAX_BATCH = 1024;
/** Scans kept per tablet. */
const KEPT = 4;

/** Beyond these an integer is read as its text: a JS number would round it. */
const SAFE_MAX = "9007199254740991";
const SAFE_MIN = "-9007199254740991";

const kept = new WeakMap<SqlStorage, Map<string, Scan>>();

/**
 * A column read exactly in two values: its value as SQLite hands it over (an integer beyond 2^53
 * as its decimal text instead) and its storage class, so an integral REAL stays apart from an
 * INTEGER and an integer's text apart from TEXT. Much cheaper than quote() and decoding its
 * literal; exactRow reads it back.
 */
function exactExpr(column: string): string {
  const c = quoteIdent(column);
  return `CASE WHEN typeof(${c}) = 'integer' AND (${c} > ${SAFE_MAX} OR ${c} < ${SAFE_MIN}) THEN CAST(${c} AS TEXT) ELSE ${c} END, typeof(${c})`;
}

/** The exact stream values of one row read with exactExpr (value, storage class, … per column). */
function exactRow(raw: readonly unknown[], width: number): StreamValue[] {
  const row: StreamValue[] = new Array(width);
  for (let i = 0; i < width; i++) {
    const v = raw[2 * i];
    switch (raw[2 * i + 1]) {
      case "integer":
        row[i] = typeof v === "string" ? normalizeInt(BigInt(v)) : (v as number);
        break;
      case "real":
        row[i] = Number.isInteger(v) ? { real: v as number } : (v as number);
        break;
      case "blob":
        row[i] = new Uint8Array(v as ArrayBuffer);
        break;
      case "text":
        row[i] = v as string;
        break;
      default:
        row[i] = null;
    }
  }
  return row;
}

/** About the length of the value's quote() literal: what a copy page's byte budget counts. */
export function quotedLength(v: StreamValue): number {
  if (v === null) return 4;
  if (typeof v === "string") return v.length + 2;
  if (v instanceof Uint8Array) return 2 * v.length + 3;
  if (typeof v === "bigint") return 20;
  return 8;
}

/**
 * A bound value for a comparison with a stored key value: an integer as its exact text plus 0 (no
 * affinity; Durable Object SQLite binds a JS number as a REAL and refuses bigints), the rest as
 * they are. A key's integral REAL is in the cursor as its number: equal either way.
 */
function bindKey(v: SqlValue, params: SqlValue[]): string {
  if (typeof v === "bigint" || (typeof v === "number" && Number.isSafeInteger(v))) {
    params.push(v.toString());
    return "(? + 0)";
  }
  params.push(v);
  return "?";
}

/** A key's values as text that tells every two different keys apart. */
function keyText(key: readonly SqlValue[] | null): string {
  if (key === null) return "-";
  return key
    .map((v) => {
      if (v === null) return "n";
      if (typeof v === "bigint") return `i${v}`;
      if (typeof v === "number") return `f${v}`;
      if (typeof v === "string") return `s${JSON.stringify(v)}`;
      return `b${Array.from(v, (x) => x.toString(16).padStart(2, "0")).join("")}`;
    })
    .join(",");
}

/**
 * The rows of `table` after the key `after` (from the start when null), `columns` of each, until
 * the row that spends `budget` (bytes as quotedLength counts them, or rows). A row with NULL in
 * its key is refused: the key could not name it on a target.
 */
export function scanTable(
  sql: SqlStorage,
  uid: string,
  table: string,
  columns: readonly string[],
  pk: readonly string[],
  after: readonly SqlValue[] | null,
  budget: { readonly maxBytes: number; readonly maxRows: number },
): Scan {
  const tc = sql.exec<{ tc: number }>("SELECT total_changes() AS tc").one().tc;
  const id = [uid, tc, table, columns.join("\u0000"), pk.join("\u0000"), keyText(after), budget.maxBytes, budget.maxRows].join("\u0001");
  let mine = kept.get(sql);
  const hit = mine?.get(id);
  if (hit) return hit;
  const scan = readScan(sql, table, columns, pk, after, budget);
  if (!mine) {
    mine = new Map();
    kept.set(sql, mine);
  }
  mine.set(id, scan);
  for (const k of mine.keys()) {
    if (mine.size <= KEPT) break;
    mine.delete(k);
  }
  return scan;
}

function readScan(
  sql: SqlStorage,
  table: string,
  columns: readonly string[],
  pk: readonly string[],
  start: readonly SqlValue[] | null,
  budget: { readonly maxBytes: number; readonly maxRows: number },
): Scan {
  const width = columns.length;
  const pkAt = pk.map((k) => columns.indexOf(k));
  const keyList = pk.map(quoteIdent).join(", ");
  const select = `SELECT ${columns.map(exactExpr).join(", ")} FROM ${quoteIdent(table)}`;
  const rows: ScannedRow[] = [];
  let bytes = 0;
  let after = start;
  // Each query is read whole (a reader that stops early would leave a statement open, and an
  // open one locks its table against DROP); the next starts after its last key.
  for (let batch = FIRST_BATCH; ; batch = Math.min(MAX_BATCH, batch * 2)) {
    const params: SqlValue[] = [];
    const where = after === null ? "" : ` WHERE (${keyList}) > (${after.map((v) => bindKey(v, params)).join(", ")})`;
    const got = [...sql.exec(`${select}${where} ORDER BY ${keyList} LIMIT ${batch}`, ...params).raw()];
    for (const raw of got) {
      const row = exactRow(raw, width);
      const key = pkAt.map((i) => sqlValueOf(row[i] ?? null));
      if (key.some((v) => v === null)) {
        throw unsupportedError("VD2701", `resharding table ${table}: a row has NULL in its PRIMARY KEY, so the key cannot name it on the target`, { table });
      }
      for (const v of row) bytes += quotedLength(v);
      rows.push({ row, key });
      if (bytes >= budget.maxBytes || rows.length >= budget.maxRows) return { rows, bytes, done: false };
      after = key;
    }
    if (got.length < batch) return { rows, bytes, done: true };
  }
}
