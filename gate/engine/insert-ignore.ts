// INSERT OR IGNORE / ON CONFLICT DO NOTHING into a table owning unique lookups (lookup_unique
// vindexes, keyspace-wide unique keys): as on one SQLite database, a row whose value another row
// holds (wherever it lives), or an earlier row of the same statement holds, is skipped, never
// written as a second holder and never an error. Conflicts a shard can see (its own keys) are
// left to the shard's own OR IGNORE / DO NOTHING.

import type { SqlValue } from "../../contract/sql-values.ts";
import { lookupHolders, type LookupTable } from "./lookup.ts";
import type { VCursor } from "./primitive.ts";

/**
 * Which rows to write: false for a row whose value of an `ignore`d lookup is held by an existing
 * row (`ownerHas` confirms it: a lookup row left by a failed write holds nothing) or by an
 * earlier kept row of the statement. `pairs[i][row]` is lookup i's (value, keyspace id) of a row.
 */
export async function rowsToKeep(
  vc: VCursor,
  lookups: readonly LookupTable[],
  ignore: readonly boolean[],
  pairs: readonly (readonly (readonly [SqlValue, Uint8Array, string])[])[],
  rowCount: number,
  ownerHas: (l: LookupTable, ksid: Uint8Array, value: SqlValue) => Promise<boolean>,
  local: { readonly held: readonly boolean[]; readonly keys: readonly (readonly string[])[] } = { held: [], keys: [] },
): Promise<boolean[]> {
  // A row whose skipped local key (holding the vindex column) an existing row holds: its shard skips it.
  const keep = Array.from({ length: rowCount }, (_, r) => !local.held[r]);
  for (const [i, l] of lookups.entries()) {
    if (!ignore[i] || !l.unique) continue;
    const mine = pairs[i] ?? [];
    const holders = await lookupHolders(
      vc,
      l,
      mine.map(([v]) => v),
    );
    for (let r = 0; r < rowCount; r++) {
      const holder = holders[r];
      const value = mine[r]?.[0] ?? null;
      if (keep[r] && value !== null && holder && (await ownerHas(l, holder, value))) keep[r] = false;
    }
  }
  // Within the statement, in row order: a later row repeating a kept row's skipped value (of any skipped key) is skipped.
  const seen = new Set<string>();
  for (let r = 0; r < rowCount; r++) {
    if (!keep[r]) continue;
    const mine = [...(local.keys[r] ?? [])];
    for (const [i, l] of lookups.entries()) {
      const v = pairs[i]?.[r]?.[0] ?? null;
      if (!ignore[i] || !l.unique || v === null) continue;
      mine.push(`l${i}:${typeof v === "string" ? `s${v}` : v instanceof Uint8Array ? `b${Array.from(v).join(",")}` : `n${String(v)}`}`);
    }
    if (mine.some((k) => seen.has(k))) keep[r] = false;
    else for (const k of mine) seen.add(k);
  }
  return keep;
}
