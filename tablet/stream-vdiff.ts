// VDiff of one stream, one chunk at a time, on the stream's target: the source's rows of a PK
// range (those in the target's key range) against the target's rows of the same range (those in
// the source's key range), at one position. The source reads the chunk in one request together
// with its binlog tail since the stream's position; the target applies that tail first (with its
// pump held off), so both sides stand at the same source position when they are compared.

import { unwrap } from "../contract/envelope.ts";
import { VtError } from "../contract/errors.ts";
import { quoteIdent, type SqlValue } from "../contract/sql-values.ts";
import type { CopyCursor, StreamUnit, StreamValue, TablePlacement, VDiffChunk, VDiffSample, VDiffTable } from "../contract/stream-rpc.ts";
import type { TabletRpc } from "../contract/tablet-rpc.ts";
import { keyRangeContains, parseKeyRange } from "../topology/keyrange.ts";
import { createVindex } from "../topology/vindex.ts";
import { imageColumns } from "./binlog.ts";
import { decodeExact, primaryKey, sqlValueOf } from "./streamer.ts";
import type { StreamTarget } from "./stream-target.ts";

/** Differences named per table, at most this many. */
const SAMPLES = 10;

/** A canonical text of an exact value: equal texts ⇔ the same storage class and value. */
function canon(v: StreamValue): string {
  if (v === null) return "n";
  if (typeof v === "object" && !(v instanceof Uint8Array)) return `r${v.real}`;
  if (typeof v === "number" && Number.isInteger(v)) return `i${v}`;
  if (typeof v === "bigint") return `i${v}`;
  if (typeof v === "number") return Object.is(v, -0) ? "r-0" : `r${v}`;
  if (typeof v === "string") return `t${v}`;
  return `b${Array.from(v, (x) => x.toString(16).padStart(2, "0")).join("")}`;
}

function rowKey(row: readonly StreamValue[], at: readonly number[]): string {
  return at.map((i) => canon(row[i] ?? null)).join("\u0000");
}

/** Whether a row of `p` has a keyspace id in `range` (reference tables: always). */
function inRange(p: TablePlacement, columns: readonly string[], row: readonly StreamValue[], range: string): boolean {
  if (p.kind === "reference" || !p.vindex || !p.column) return true;
  const want = p.column.toLowerCase();
  const i = columns.findIndex((c) => c.toLowerCase() === want);
  return keyRangeContains(parseKeyRange(range), createVindex(p.vindex.type, p.vindex.params).map(sqlValueOf(row[i] ?? null)));
}

function bindKey(v: SqlValue, params: SqlValue[]): string {
  if (typeof v === "bigint") {
    params.push(v.toString());
    return "(? + 0)";
  }
  params.push(v);
  return "?";
}

/** The target's rows of `table` with keys in (lower, upper] (null: unbounded), in key order. */
function targetRows(sql: SqlStorage, table: string, pk: readonly string[], lower: readonly SqlValue[] | null, upper: readonly SqlValue[] | null) {
  const columns = imageColumns(sql, table);
  const keys = pk.map(quoteIdent).join(", ");
  const params: SqlValue[] = [];
  const where: string[] = [];
  if (lower) where.push(`(${keys}) > (${lower.map((v) => bindKey(v, params)).join(", ")})`);
  if (upper) where.push(`(${keys}) <= (${upper.map((v) => bindKey(v, params)).join(", ")})`);
  const text = `SELECT ${columns.map((c) => `quote(${quoteIdent(c)})`).join(", ")} FROM ${quoteIdent(table)}${where.length ? ` WHERE ${where.join(" AND ")}` : ""}`;
  const rows = [...sql.exec(text, ...params).raw()].map((r) => (r as string[]).map(decodeExact));
  return { columns, rows };
}

/**
 * Compares the chunk of the stream `id` that starts at `cursor`. The stream must run (its copy
 * done); its position moves to the source position the chunk was read at.
 */
export function vdiffChunk(
  streams: StreamTarget,
  storage: DurableObjectStorage,
  id: string,
  cursor: CopyCursor,
  source: (name: string) => TabletRpc,
  maxRows: number,
): Promise<VDiffChunk> {
  return streams.holding(id, () => compareChunk(streams, storage, id, cursor, source, maxRows));
}

async function compareChunk(
  streams: StreamTarget,
  storage: DurableObjectStorage,
  id: string,
  cursor: CopyCursor,
  source: (name: string) => TabletRpc,
  maxRows: number,
): Promise<VDiffChunk> {
  const s = streams.state(id);
  if (s.phase !== "running")
    throw new VtError("INVALID_ARGUMENT", `stream ${id} is ${s.phase}; VDiff compares a stream whose copy is done`, { phase: s.phase });
  streams.newChain(id);
  const unit: StreamUnit = unwrap(await source(s.spec.sourceTablet).streamUnit(s.spec.filter, { seq: s.pos.seq, copy: cursor }, { maxRows }));
  // Bring the target to the chunk's position: the tail, not the copied rows.
  const tail: StreamUnit = { ...unit, rows: [], to: { seq: unit.to.seq, copy: null } };
  if (!streams.applyUnit(id, { ...tail, from: s.pos }, 0)) throw new VtError("INTERNAL", `stream ${id} moved during its VDiff`);
  const tables = s.spec.filter.tables;
  const last = unit.to.copy?.table ?? tables.length - 1;
  const out: VDiffTable[] = [];
  for (let i = cursor.table; i <= last; i++) {
    const p = tables[i];
    if (!p) break;
    const lower = i === cursor.table ? cursor.after : null;
    const upper = unit.to.copy && unit.to.copy.table === i ? unit.to.copy.after : null;
    if (unit.to.copy && unit.to.copy.table === i && upper === null) break; // nothing of it scanned yet
    const result: VDiffTable = { table: p.table, compared: 0, missing: 0, extra: 0, mismatched: 0, samples: [] };
    out.push(result);
    const pk = primaryKey(storage.sql, p.table) ?? [];
    if (pk.length === 0) continue;
    const mine = targetRows(storage.sql, p.table, pk, lower, upper);
    const pkAt = pk.map((k) => mine.columns.indexOf(k));
    const have = new Map<string, readonly StreamValue[]>();
    for (const row of mine.rows) if (inRange(p, mine.columns, row, s.spec.sourceShard)) have.set(rowKey(row, pkAt), row);
    const sample = (kind: VDiffSample["kind"], row: readonly StreamValue[]) => {
      if (result.samples.length < SAMPLES) result.samples.push({ kind, key: pkAt.map((k) => sqlValueOf(row[k] ?? null)) });
    };
    for (const r of unit.rows) {
      if (r.table !== p.table || !r.after) continue;
      // Source images name columns in source order; compare by name.
      const row = mine.columns.map((c) => r.after?.[r.columns.indexOf(c)] ?? null);
      result.compared += 1;
      const k = rowKey(row, pkAt);
      const t = have.get(k);
      if (!t) {
        result.missing += 1;
        sample("missing", row);
        continue;
      }
      have.delete(k);
      if (
        rowKey(
          t,
          mine.columns.map((_, j) => j),
        ) !==
        rowKey(
          row,
          mine.columns.map((_, j) => j),
        )
      ) {
        result.mismatched += 1;
        sample("mismatched", row);
      }
    }
    for (const row of have.values()) {
      result.extra += 1;
      sample("extra", row);
    }
  }
  return { tables: out, next: unit.to.copy };
}
