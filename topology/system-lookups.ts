// The gate's system lookup tables (`_vtl_<table>__<columns>`): one per keyspace-wide unique key of
// a sharded table (gate/planner/unique-keys.ts). Each row maps a key's canonical text `k` to the
// keyspace id of the row holding it, and lives on the shard of `k` under one fixed vindex. The
// gate places lookup rows with it and a reshard moves them with it: the choice is made here once.

import { createVindex, type Vindex } from "./vindex.ts";

/** Prefix of the system lookup tables (outside `_vt_…`, so tablets accept them; users cannot name them). */
export const SYSTEM_LOOKUP_PREFIX = "_vtl_";

/** The column a system lookup table is keyed and sharded by, and the one holding the owner row's keyspace id. */
export const SYSTEM_LOOKUP_FROM = "k";
export const SYSTEM_LOOKUP_TO = "keyspace_id";

/** The vindex (vschema form) that shards every system lookup table by its `k` column. */
export const SYSTEM_LOOKUP_VINDEX = Object.freeze({ type: "xxhash" });

let vindex: Vindex | undefined;

/** The vindex that shards every system lookup table by its `k` column. */
export function systemLookupVindex(): Vindex {
  vindex ??= createVindex(SYSTEM_LOOKUP_VINDEX.type);
  return vindex;
}

/** True for the name of a system lookup table (SQLite's ASCII case folding). */
export function isSystemLookupTable(name: string): boolean {
  return name.slice(0, SYSTEM_LOOKUP_PREFIX.length).toLowerCase() === SYSTEM_LOOKUP_PREFIX;
}

/** The system lookup table of one key of `table`. */
export function systemLookupTable(table: string, columns: readonly string[]): string {
  return `${SYSTEM_LOOKUP_PREFIX}${table.toLowerCase()}__${columns.map((c) => c.toLowerCase()).join("__")}`;
}
