// Where each table's rows live, as a stream needs to know it: a reshard moves every table of the
// keyspace, each filtered by the target's key range through the vindex that placed its rows. One
// function answers it from the serving graph, for the workflow that builds a stream's filter and
// for any check made before a stream starts.

import { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { TablePlacement } from "../contract/stream-rpc.ts";
import type { TableInfo } from "../contract/tablet-rpc.ts";
import { keyCollations } from "./key-collations.ts";
import { own } from "./own.ts";
import { unsupportedError } from "./refusals.ts";
import { tokenize, tokenName } from "./sql-lexer.ts";
import { isSystemLookupTable, SYSTEM_LOOKUP_FROM, SYSTEM_LOOKUP_VINDEX } from "./system-lookups.ts";
import { tableVSchema } from "./vschema.ts";

/**
 * The placement of every table of `ks`: user sharded tables by their primary vindex, reference
 * tables (and every table of an unsharded keyspace, whose one shard holds them all) copied whole,
 * and the gate's system lookup tables by their `k` column. A table a foreign key references comes
 * before the tables referencing it (so a target checking foreign keys never meets a child row
 * first); otherwise tables are in name order. A table of a sharded keyspace without a vschema
 * entry is INVALID_ARGUMENT.
 */
export function tablePlacements(ks: KeyspaceGraph): TablePlacement[] {
  const infos = Object.values(ks.tables).sort((a, b) => compareNames(a.name, b.name));
  const byName = new Map(infos.map((t) => [t.name.toLowerCase(), t]));
  const out: TablePlacement[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (t: TableInfo): void => {
    const key = t.name.toLowerCase();
    if (state.has(key)) return; // done, or a cycle of foreign keys: the cycle is broken here
    state.set(key, "visiting");
    for (const parent of referencedTables(t.sql)) {
      const p = byName.get(parent.toLowerCase());
      if (p && p !== t) visit(p);
    }
    state.set(key, "done");
    out.push(placementOf(ks, t.name));
  };
  for (const t of infos) visit(t);
  return out;
}

export function placementOf(ks: KeyspaceGraph, table: string): TablePlacement {
  if (isSystemLookupTable(table)) return { table, kind: "sharded", column: SYSTEM_LOOKUP_FROM, vindex: SYSTEM_LOOKUP_VINDEX };
  if (!ks.sharded) return { table, kind: "reference" };
  const entry = tableVSchema(ks.vschema, table);
  if (entry?.type === "reference") return { table, kind: "reference" };
  const cv = entry?.column_vindexes?.[0];
  const def = cv ? own(ks.vschema.vindexes, cv.name) : undefined;
  if (!cv || !def) {
    throw new VtError(
      "INVALID_ARGUMENT",
      `table ${table} of sharded keyspace ${ks.name} has no primary vindex in the vschema; add one with \`vtctl vschema apply\``,
    );
  }
  return { table, kind: "sharded", column: cv.column, vindex: def.params ? { type: def.type, params: def.params } : { type: def.type } };
}

/** The tables a CREATE TABLE statement's foreign keys reference (`REFERENCES <name>`). */
export function referencedTables(createSql: string): string[] {
  const toks = tokenize(createSql).filter((t) => t.kind !== "space" && t.kind !== "comment");
  const out: string[] = [];
  for (let i = 0; i < toks.length - 1; i++) {
    const t = toks[i];
    if (t?.kind !== "word" || createSql.slice(t.start, t.end).toUpperCase() !== "REFERENCES") continue;
    const name = toks[i + 1];
    if (name && (name.kind === "word" || name.kind === "quoted" || name.kind === "string")) out.push(tokenName(createSql, name));
  }
  return out;
}

function compareNames(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The PRIMARY KEY columns of a table, in key order (empty for a table keyed by its rowid alone). */
export function primaryKeyColumns(info: TableInfo): string[] {
  return info.columns
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
}

/**
 * Refuses (UNSUPPORTED VD2700, naming the table) a table a stream would move that has no
 * PRIMARY KEY: a stream's target applies every change keyed by it, and a rowid numbers rows per
 * shard only.
 */
export function checkStreamable(ks: KeyspaceGraph, placements: readonly TablePlacement[] = tablePlacements(ks)): void {
  for (const p of placements) {
    const info = own(ks.tables, p.table.toLowerCase());
    if (info && primaryKeyColumns(info).length === 0) throw noPrimaryKey(p.table);
    if (info) checkKeyCollations(info);
  }
}

/**
 * Refuses (UNSUPPORTED VD2707, naming the table and column) a table whose PRIMARY KEY keeps apart
 * two values its column compares as equal: a column declared NOCASE or RTRIM under a key
 * declaring another collation. A stream pages the copy and deletes by comparing the column, so
 * one of two such rows could be skipped by a page, or both removed by one delete. (A BINARY
 * column is safe under any key collation: keys distinct for the key are distinct for it.)
 */
export function checkKeyCollations(info: TableInfo): void {
  const bad = keyCollations(info).find((k) => k.columnCollation !== "BINARY" && k.keyCollation !== k.columnCollation);
  if (!bad) return;
  throw unsupportedError(
    "VD2707",
    `resharding table ${info.name}: its PRIMARY KEY column ${bad.column} compares as COLLATE ${bad.columnCollation} but the key is COLLATE ${bad.keyCollation}, so two distinct keys can compare equal (a copy paged in key order could skip one, a delete by key remove both); declare the key with the column's collation`,
    { table: info.name, column: bad.column },
  );
}

/** The refusal of a table without a PRIMARY KEY in a stream. */
export function noPrimaryKey(table: string): VtError {
  return unsupportedError("VD2700", `resharding table ${table}: it has no PRIMARY KEY (rows are streamed and applied by their key); declare one`, { table });
}
