// The VCursor a plan runs through (engine/primitive.ts): its tablets, Catalog, sequences, lookup
// statements and DDL, all reached through the request's Backend. It records the shards a
// statement reached, so the executor knows whether a failed write may be retried.

import { toVtError } from "../contract/errors.ts";
import type { SqlValue } from "../contract/sql-values.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { BoundQuery, QueryResult } from "../contract/tablet-rpc.ts";
import { applyDdl } from "./admin.ts";
import type { Backend } from "./backend.ts";
import type { VCursor } from "./engine/primitive.ts";
import { nextIds } from "./sequences.ts";

/** One statement through the gate, as a client sends it (lookup vindex tables are written so). */
export type RunStatement = (keyspace: string, sql: string, params: SqlValue[]) => Promise<QueryResult>;

export function gateCursor(backend: Backend, ks: KeyspaceGraph, touched: Set<string>, run: RunStatement): VCursor {
  return {
    keyspace: ks,
    execute: async (shard: string, queries: BoundQuery[]): Promise<QueryResult[]> => {
      try {
        const res = await backend.tablet(ks, shard, queries);
        // Only a write applies anything; a shard that was only read is no reason not to retry.
        if (queries.some((q) => q.kind !== "read")) touched.add(shard);
        return res;
      } catch (e) {
        // A write whose answer was lost may have applied there.
        if (toVtError(e)["applied"] === "unknown") touched.add(shard);
        throw e;
      }
    },
    catalog: (query: BoundQuery): Promise<QueryResult> => backend.catalog(ks, query),
    nextIds: (source, count, floor) => nextIds(backend, ks, run, source, count, floor),
    lookupExecute: run,
    applyDdl: (req) => applyDdl(backend, { keyspace: ks.name, ...req, requestId: crypto.randomUUID() }),
  };
}
