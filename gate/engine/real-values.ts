// Integral REALs through the gate. JavaScript reads SQLite's REAL 1.0 as the number 1, so a value
// read and written again (INSERT … SELECT) would be bound as the INTEGER 1: a TEXT column would
// store '1' where SQLite stores '1.0', an untyped column an INTEGER. A read through typedReads()
// asks each tablet which integral numbers are REALs (BoundQuery.reals), and each row it answers
// remembers its REAL columns for as long as an operator passes that row on unchanged.

import type { BoundQuery, QueryResult } from "../../contract/tablet-rpc.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import type { VCursor } from "./primitive.ts";

/** Rows whose types are known: the columns of each holding an integral REAL (empty: none). */
const realColumns = new WeakMap<readonly SqlValue[], ReadonlySet<number>>();

/** The columns of `row` holding an integral REAL, or undefined when the row's types are not known (the gate made the row). */
export function realsOf(row: readonly SqlValue[]): ReadonlySet<number> | undefined {
  return realColumns.get(row);
}

/** The first `width` values of `row` (dropping the columns an operator added for itself), keeping what is known of their types. */
export function leadingValues(row: readonly SqlValue[], width: number): SqlValue[] {
  const out = row.slice(0, width);
  const reals = realColumns.get(row);
  if (reals) realColumns.set(out, new Set([...reals].filter((c) => c < width)));
  return out;
}

/** `vc`, its reads asking the tablets which integral numbers are REALs and each row remembering the answer. */
export function typedReads(vc: VCursor): VCursor {
  return {
    get keyspace() {
      return vc.keyspace;
    },
    nextIds: (source, count, floor) => vc.nextIds(source, count, floor),
    lookupExecute: (keyspace, sql, params) => vc.lookupExecute(keyspace, sql, params),
    applyDdl: (req) => vc.applyDdl(req),
    ...(vc.catalog ? { catalog: (q: BoundQuery) => (vc.catalog as (q: BoundQuery) => Promise<QueryResult>)(q) } : {}),
    async execute(shard, queries) {
      const results = await vc.execute(
        shard,
        queries.map((q) => (q.kind === "read" ? { ...q, reals: true as const } : q)),
      );
      for (const r of results) {
        if (!r.reals) continue;
        for (const [i, row] of r.rows.entries()) realColumns.set(row, new Set(r.reals[i] ?? []));
        delete r.reals;
      }
      return results;
    },
  };
}
