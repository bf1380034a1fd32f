// What a tablet checks before (and, for moved tables, inside) a batch: that it serves the target
// at the batch's graph version, and that no switch, schema change or MoveTables holds the batch's
// writes back. Every refusal is a retryable NOT_SERVING saying why, so the gate can plan again,
// hold the request through a cutover, or wait for the fence.

import { VtError } from "../contract/errors.ts";
import type { BoundQuery, TabletConfig, Target } from "../contract/tablet-rpc.ts";
import type { Fence } from "./schema-change.ts";

const readsOnly = (queries: readonly BoundQuery[]) => queries.every((q) => q.kind === "read");

/** Answers whether the batch runs on a tablet that serves its shard's reads only (it must then change nothing). */
export function checkTarget(c: TabletConfig | null, uid: string, t: Target, queries: readonly BoundQuery[]): boolean {
  const reader = c !== null && !c.serving && c.servesReads === true && readsOnly(queries);
  if (c === null || c.keyspace !== t.keyspace || c.shard !== t.shard || (!c.serving && !reader)) {
    throw new VtError("NOT_SERVING", `tablet ${uid} does not serve ${t.keyspace}/${t.shard}`, {
      servingVersion: c?.version ?? 0,
      shard: t.shard,
    });
  }
  if (t.version < c.version) {
    throw new VtError("NOT_SERVING", `${t.keyspace}/${t.shard}: serving graph version ${t.version} is older than ${c.version}`, {
      servingVersion: c.version,
      shard: t.shard,
    });
  }
  return reader;
}

/** Writes wait (retryable NOT_SERVING, refused before anything ran) while a change holds the fence. */
export function checkFence(fence: Fence | null, c: TabletConfig | null, t: Target, queries: readonly BoundQuery[]): void {
  if (fence === null || readsOnly(queries)) return;
  throw new VtError("NOT_SERVING", `${t.keyspace}/${t.shard}: a schema change is being applied; writes wait until it is`, {
    servingVersion: c?.version ?? 0,
    shard: t.shard,
    fenced: true,
  });
}

/** While writes move to other shards (SwitchTraffic), a batch with a write is refused before anything runs; the gate buffers it. */
export function checkDenyWrites(c: TabletConfig | null, t: Target, queries: readonly BoundQuery[]): void {
  if (c?.denyWrites !== true || readsOnly(queries)) return;
  throw new VtError("NOT_SERVING", `${t.keyspace}/${t.shard}: writes are switching to other shards; retry on the new serving graph`, {
    servingVersion: c.version,
    shard: t.shard,
    switching: true,
  });
}

/**
 * A batch that changed rows of a table moved away (MoveTables, `denied`) since binlog seq `from`
 * is refused; thrown inside its transaction, it rolls back.
 */
export function checkDeniedTables(sql: SqlStorage, c: TabletConfig | null, t: Target, denied: readonly string[], from: number): void {
  const hit = sql
    .exec<{ tbl: string }>(`SELECT tbl FROM _vt_binlog WHERE seq > ? AND lower(tbl) IN (${denied.map(() => "?").join(", ")}) LIMIT 1`, from, ...denied)
    .toArray()[0];
  if (!hit) return;
  throw new VtError("NOT_SERVING", `${t.keyspace}/${t.shard}: table ${hit.tbl} moved to another keyspace; retry on the new routing rules`, {
    servingVersion: c?.version ?? 0,
    shard: t.shard,
    switching: true,
    table: hit.tbl,
  });
}
