// Names of objects inside a tablet's SQLite that user SQL must never reach. One list, used by the
// gate's name check (over the parsed statement) and by the guard over every text a tablet runs
// (over SQLite's own tokens), so the two can never disagree about what is the system's.
//
// Naming rule: `_vt_…` is the tablet's own (tables _vt_meta, _vt_binlog, _vt_binlog_cols and
// the _vt_bl_* triggers); the gate's generated aliases use `_vtg_` and system-managed data
// tables `_vtl_`, which are outside `_vt_…` (users still cannot name them: the planner refuses
// every `_vt` prefix).

/**
 * - `tablet`: the tablet's own tables and triggers (`_vt_…`).
 * - `platform`: the Durable Object runtime's tables (`_cf_…`, miniflare's `__miniflare_do_name`).
 * - `catalog`: SQLite's catalogs and introspection tables (`sqlite_master` and every other
 *   `sqlite_…` name except the harmless functions below, and the `dbstat` virtual table).
 * - `pragma`: PRAGMA table functions (`pragma_table_info`, `pragma_table_list`, …).
 */
export type SystemObjectKind = "tablet" | "platform" | "catalog" | "pragma";

/** Why a name of the system's own (a `_vt` prefix, or a tablet or platform object) cannot be used, for PERMISSION_DENIED. */
export function reservedNameReason(name: string): string {
  return systemObjectKind(name) === "platform"
    ? `"${name}": names starting with _cf_ (and __miniflare_do_name) are the Durable Object runtime's own`
    : `"${name}": names starting with _vt are reserved for the system`;
}

/** `sqlite_…` scalar functions that describe the library, not the database. */
const HARMLESS_SQLITE_FUNCTIONS = new Set(["sqlite_version", "sqlite_source_id", "sqlite_compileoption_used", "sqlite_compileoption_get"]);

/**
 * Which system object `name` (an unquoted identifier, any case) would name, or undefined. The
 * match is on the name alone, whatever its position (table, function, column, alias, schema):
 * that is what keeps it airtight without knowing SQLite's grammar.
 */
export function systemObjectKind(name: string): SystemObjectKind | undefined {
  // ASCII-only lowering, as SQLite compares names.
  const lower = name.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (lower.startsWith("_vt_")) return "tablet";
  if (lower.startsWith("_cf_") || lower === "__miniflare_do_name") return "platform";
  if (lower.startsWith("pragma_")) return "pragma";
  if (lower === "dbstat") return "catalog";
  if (lower.startsWith("sqlite_") && !HARMLESS_SQLITE_FUNCTIONS.has(lower)) return "catalog";
  return undefined;
}

/**
 * True for a name a vschema may not give a table, sequence, lookup table, owner or column:
 * every `_vt` prefix (the tablet's `_vt_…`, the gate's `_vtg_` aliases, its `_vtl_` lookup
 * tables) and every other system object. `keyspace.name` is checked part by part.
 */
export function isReservedName(name: string): boolean {
  return name.split(".").some((part) => /^_vt/i.test(part) || systemObjectKind(part) !== undefined);
}
