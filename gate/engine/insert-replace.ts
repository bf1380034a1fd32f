// INSERT OR REPLACE / REPLACE into a table owning unique lookups (lookup_unique vindexes,
// keyspace-wide unique keys), as on one SQLite database: every existing row holding one of a new
// row's unique values is deleted first, wherever it lives (its lookup rows after it), and a
// later row of the statement replaces an earlier one with the same value. The rows themselves
// are then inserted as by a plain INSERT. The deletions commit before the insert: if the insert
// then fails, its error says how many rows were replaced (deleted) already.

import type { Vindex } from "../../topology/vindex.ts";
import { quoteIdent, type SqlValue } from "../../contract/sql-values.ts";
import { Bindings, render, type Part } from "../sql/template.ts";
import { addPairsOf, lookupHolders, ownerMatch, preDeleteColumns, removeLookupRows, type LookupTable } from "./lookup.ts";
import type { VCursor } from "./primitive.ts";
import { shardForKsid } from "./values.ts";

export interface ReplaceTarget {
  readonly table: string;
  readonly vindex: Vindex;
  readonly vindexColumn: string;
  readonly lookups: readonly LookupTable[];
}

/**
 * Which rows of the statement stay: false for a row a later row replaces (same unique value, or
 * the same `local` key, the unique vindex value, which the shard itself replaces).
 */
export function lastRowsWin(
  lookups: readonly LookupTable[],
  pairs: readonly (readonly (readonly [SqlValue, Uint8Array, string])[])[],
  rowCount: number,
  local: readonly (string | undefined)[] = [],
): boolean[] {
  const keep = Array.from({ length: rowCount }, () => true);
  const seenLocal = new Set<string>();
  for (let r = rowCount - 1; r >= 0; r--) {
    const k = local[r];
    if (k === undefined) continue;
    if (seenLocal.has(k)) keep[r] = false;
    else seenLocal.add(k);
  }
  for (const [i, l] of lookups.entries()) {
    if (!l.unique) continue;
    const seen = new Set<string>();
    const mine = pairs[i] ?? [];
    for (let r = rowCount - 1; r >= 0; r--) {
      const v = mine[r]?.[0] ?? null;
      if (v === null) continue;
      const k = typeof v === "string" ? `s${v}` : v instanceof Uint8Array ? `b${Array.from(v).join(",")}` : `n${String(v)}`;
      if (seen.has(k)) keep[r] = false;
      else seen.add(k);
    }
  }
  return keep;
}

/**
 * Deletes every existing row holding a unique lookup value of the statement's rows (`pairs[i][row]`:
 * lookup i's value and keyspace id of each row), with its lookup rows. Answers how many rows went.
 */
export async function deleteReplaced(vc: VCursor, t: ReplaceTarget, pairs: readonly (readonly (readonly [SqlValue, Uint8Array, string])[])[]): Promise<number> {
  let deleted = 0;
  const removed: [SqlValue, Uint8Array][][] = t.lookups.map(() => []);
  const cols = preDeleteColumns(t.vindexColumn, t.lookups).map(quoteIdent).join(", ");
  for (const [i, l] of t.lookups.entries()) {
    if (!l.unique) continue;
    const values = (pairs[i] ?? []).map(([v]) => v);
    const holders = await lookupHolders(vc, l, values);
    for (const [r, holder] of holders.entries()) {
      const value = values[r] ?? null;
      if (!holder || value === null) continue;
      // The holder's row, if it exists: matched by the key's own columns (its shard's unique index makes it one row).
      const match = ownerMatch(l, value);
      const where: Part[] = [" WHERE "];
      match.columns.forEach((c, j) => {
        where.push(j > 0 ? " AND " : "", `${quoteIdent(c)} = `, { values: () => [match.values[j] ?? null], empty: "NULL" });
      });
      const b = new Bindings([]);
      const pre = { ...render([`SELECT ${cols} FROM ${quoteIdent(t.table)}`, ...where], b), kind: "read" as const };
      const del = { ...render([`DELETE FROM ${quoteIdent(t.table)}`, ...where], b), kind: "write" as const };
      const [found, gone] = await vc.execute(shardForKsid(vc.keyspace, holder), [pre, del]);
      addPairsOf(found?.rows ?? [], t.vindex, t.lookups, removed);
      deleted += gone?.rowsAffected ?? 0;
    }
  }
  for (const [i, l] of t.lookups.entries()) await removeLookupRows(vc, l, removed[i] ?? []);
  return deleted;
}

/**
 * Deletes the rows holding each of `values` in the vindex column (a unique key), with their lookup
 * rows: what the REPLACE rows a later row of the statement supersedes would have replaced on their
 * shards before being replaced themselves.
 */
export async function deleteByVindex(vc: VCursor, t: ReplaceTarget, values: readonly SqlValue[]): Promise<void> {
  const removed: [SqlValue, Uint8Array][][] = t.lookups.map(() => []);
  const cols = preDeleteColumns(t.vindexColumn, t.lookups).map(quoteIdent).join(", ");
  for (const v of values) {
    if (v === null) continue;
    const where: Part[] = [` WHERE ${quoteIdent(t.vindexColumn)} = `, { values: () => [v], empty: "NULL" }];
    const b = new Bindings([]);
    const pre = { ...render([`SELECT ${cols} FROM ${quoteIdent(t.table)}`, ...where], b), kind: "read" as const };
    const del = { ...render([`DELETE FROM ${quoteIdent(t.table)}`, ...where], b), kind: "write" as const };
    const [found] = await vc.execute(shardForKsid(vc.keyspace, t.vindex.map(v)), [pre, del]);
    addPairsOf(found?.rows ?? [], t.vindex, t.lookups, removed);
  }
  for (const [i, l] of t.lookups.entries()) await removeLookupRows(vc, l, removed[i] ?? []);
}
