// The lookup rows a multi-shard INSERT claims for its rows (lookup vindexes it owns, keyspace-wide
// unique keys): each row's values, added before the rows are written, removed again for rows that
// were not written or that a REPLACE deleted, and checked after the write for a unique value
// another INSERT took meanwhile.

import { VtError } from "../../contract/errors.ts";
import { quoteIdent, type SqlValue } from "../../contract/sql-values.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import type { Vindex } from "../../topology/vindex.ts";
import { render, type Bindings, type Part } from "../sql/template.ts";
import type { InsertRow } from "./insert.ts";
import { addLookupRows, duplicate, lostLookups, ownerHas, ownerMatch, removeLookupRows, sameBytes, type LookupTable } from "./lookup.ts";
import type { VCursor } from "./primitive.ts";
import { uniqueKey } from "./unique-key.ts";
import { evalValue, shardForKsid } from "./values.ts";

/** The INSERT whose rows claim the lookup rows (an Insert). */
export interface LookupClaimer {
  readonly table: string;
  readonly vindex: Vindex;
  /** The vindex column's name (to delete a row that lost a unique lookup race). */
  readonly vindexColumn: string | undefined;
  readonly lookups: readonly LookupTable[];
  ksidOf(value: SqlValue): Uint8Array;
}

/** Each lookup's (value, keyspace id, shard) for every row. */
export function lookupPairsOf(vc: VCursor, b: Bindings, t: LookupClaimer, rows: readonly InsertRow[]): [SqlValue, Uint8Array, string][][] {
  if (t.lookups.length === 0) return [];
  const placed = rows.map((r) => {
    const ksid = t.ksidOf(evalValue(r.vindexValue, b));
    return { ksid, shard: shardForKsid(vc.keyspace, ksid) };
  });
  return t.lookups.map((_, i) =>
    rows.map((r, k): [SqlValue, Uint8Array, string] => {
      const l = t.lookups[i] as LookupTable;
      const values = (r.lookupValues?.[i] ?? []).map((v) => (v === "auto" ? null : evalValue(v, b)));
      const p = placed[k] as { ksid: Uint8Array; shard: string };
      if (l.system?.rowid && values[0] === null) {
        throw unsupportedError(
          "VD2404",
          `INSERT into ${t.table} with a NULL INTEGER PRIMARY KEY ${l.column} (each shard would pick its own rowid; the table is sharded by ${t.vindexColumn ?? "another column"}, and its auto_increment fills another column): give the id`,
        );
      }
      return [l.system ? uniqueKey(values, l.system.columns, t.table) : (values[0] ?? null), p.ksid, p.shard];
    }),
  );
}

/** Adds the lookup rows of every row, before the rows themselves. */
export async function addLookups(vc: VCursor, t: LookupClaimer, pairs: readonly [SqlValue, Uint8Array, string][][]): Promise<void> {
  for (const [i, l] of t.lookups.entries()) {
    await addLookupRows(
      vc,
      l,
      (pairs[i] ?? []).map(([v, k]) => [v, k] as const),
      (ksid, value) => ownerHas(vc, t.table, l, ksid, value, t.vindex, t.vindexColumn),
    );
  }
}

/**
 * After a failed INSERT: removes the lookup rows it may have added for rows not written (shards
 * outside `committed`), keeping any that an existing row holds (the same value on the same
 * keyspace id belongs to that row).
 */
export async function dropOrphanLookups(
  vc: VCursor,
  t: LookupClaimer,
  pairs: readonly [SqlValue, Uint8Array, string][][],
  committed: ReadonlySet<string>,
): Promise<void> {
  await Promise.all(
    t.lookups.map(async (l, i) => {
      const orphans: (readonly [SqlValue, Uint8Array])[] = [];
      for (const [v, k, shard] of pairs[i] ?? []) {
        if (v === null || committed.has(shard)) continue;
        if (!(await ownerHas(vc, t.table, l, k, v, t.vindex, t.vindexColumn))) orphans.push([v, k]);
      }
      await removeLookupRows(vc, l, orphans);
    }),
  ).catch(() => undefined);
}

/** After a REPLACE: the replaced rows' lookup rows, except those the new rows hold again (same value, same keyspace id). */
export async function dropReplacedLookups(
  vc: VCursor,
  lookups: readonly LookupTable[],
  pairs: readonly [SqlValue, Uint8Array, string][][],
  replaced: readonly (readonly [SqlValue, Uint8Array])[][],
): Promise<void> {
  for (const [i, l] of lookups.entries()) {
    const now = pairs[i] ?? [];
    const stale = (replaced[i] ?? []).filter(([v, k]) => !now.some(([nv, nk]) => sameBytes(nk, k) && (l.system ? nv === v : !surelyDiffer(nv, v))));
    await removeLookupRows(vc, l, stale);
  }
}

/**
 * A unique lookup row another INSERT took over while this one wrote its rows: that INSERT keeps
 * the value, and this one's rows holding it are deleted again (CONSTRAINT), so the value is
 * never held twice.
 */
export async function verifyLookups(
  vc: VCursor,
  b: Bindings,
  t: LookupClaimer,
  rows: readonly InsertRow[],
  pairs: readonly (readonly [SqlValue, Uint8Array, string])[][],
  shards: readonly string[],
): Promise<void> {
  for (const [i, l] of t.lookups.entries()) {
    const mine = pairs[i] ?? [];
    const lost = await lostLookups(
      vc,
      l,
      mine.map(([v, k]) => [v, k] as const),
    );
    if (lost.length === 0) continue;
    for (const [v, k] of lost) {
      const at = mine.findIndex(([mv, mk]) => mk === k && mv === v);
      const row = rows[at];
      const shard = mine[at]?.[2];
      if (!row || shard === undefined || !t.vindexColumn) continue;
      const match = ownerMatch(l, v);
      const parts: Part[] = [`DELETE FROM ${quoteIdent(t.table)} WHERE `];
      match.columns.forEach((c, j) => {
        parts.push(`${quoteIdent(c)} = `, { values: () => [match.values[j] ?? null], empty: "NULL" }, " AND ");
      });
      parts.push(`${quoteIdent(t.vindexColumn)} = `, { values: () => [evalValue(row.vindexValue, b)], empty: "NULL" });
      await vc.execute(shard, [{ ...render(parts, b), kind: "write" }]);
    }
    // The statement's other rows stay written: the error says so, as a multi-shard failure does.
    throw new VtError(
      "CONSTRAINT",
      `${duplicate(l, lost[0]?.[0] ?? null, "was inserted concurrently").message}; the rows holding ${lost.length === 1 ? "it were" : "those values were"} not kept (the statement's other rows were)`,
      { committedShards: [...shards] },
    );
  }
}

/**
 * True when a value read back from a lookup column and a value written to it surely differ once
 * stored (both text, or both BLOBs, and unequal); otherwise the lookup column's affinity could
 * make them one value, so the lookup row is kept (at worst an extra row, never a missing one).
 */
function surelyDiffer(written: SqlValue, stored: SqlValue): boolean {
  if (written === null) return true;
  if (typeof written === "string" && typeof stored === "string") return written !== stored;
  if (written instanceof Uint8Array && stored instanceof Uint8Array) return !sameBytes(written, stored);
  return false;
}
