// Keyspace-wide unique constraints (⚑ DESIGN.md: a duplicate UNIQUE / PRIMARY KEY value is refused
// wherever the other row lives). On one shard SQLite enforces a key among that shard's rows; a key
// containing the vindex column is therefore enforced everywhere (equal keys share a shard). Any
// other key of a sharded table gets a system lookup table, made with the owner's CREATE TABLE
// and sharded by the key, which the gate keeps in step as it does an owned lookup_unique vindex.
// A table's vschema `"unique": "per_shard"` opts out (Vitess's semantics: per shard only).

import type { Node } from "sql-parser-cst";
import type { TableInfo } from "../../contract/tablet-rpc.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import type { TableVSchema } from "../../contract/vschema.ts";
import type { LookupTable } from "../engine/lookup.ts";
import type { KeyColumn } from "../engine/unique-key.ts";
import { affinityOf } from "../engine/values.ts";
import { parseOne } from "../sql/parse.ts";
import { declaredCollation, kw } from "./ast.ts";
import { own } from "../../topology/own.ts";
import { SYSTEM_LOOKUP_FROM, SYSTEM_LOOKUP_PREFIX, SYSTEM_LOOKUP_TO, systemLookupTable, systemLookupVindex } from "../../topology/system-lookups.ts";

export { SYSTEM_LOOKUP_PREFIX, systemLookupTable };

export interface UniqueConstraint {
  readonly columns: readonly string[];
  /** The table's INTEGER PRIMARY KEY (the rowid): SQLite picks a value when none is given. */
  readonly rowid: boolean;
  /** Declared with its own ON CONFLICT resolution (changes what a plain INSERT does). */
  readonly conflictClause: boolean;
  /** Columns declared with a DEFAULT (an omitted one is not NULL). */
  readonly defaults: readonly string[];
}

const cache = new Map<string, UniqueConstraint[]>();

function names(cols: Node | undefined): string[] {
  if (cols?.type !== "paren_expr") return [];
  const list = cols.expr as Node;
  const items = list.type === "list_expr" ? (list.items as Node[]) : [list];
  return items.map((spec) => {
    const e = spec.type === "index_specification" ? (spec.expr as Node) : spec;
    return e.type === "identifier" ? e.name : "";
  });
}

/** The UNIQUE and PRIMARY KEY constraints of a CREATE TABLE statement (column and table constraints). */
export function uniqueConstraints(createSql: string): UniqueConstraint[] {
  const hit = cache.get(createSql);
  if (hit) return hit;
  const out: UniqueConstraint[] = [];
  let stmt: Node;
  try {
    stmt = parseOne(createSql).stmt;
  } catch {
    return out;
  }
  if (stmt.type !== "create_table_stmt" || !stmt.columns) return out;
  const items = stmt.columns.expr.items as Node[];
  const alias = rowidAlias(stmt);
  const defaults: string[] = [];
  for (const item of items) {
    if (item.type !== "column_definition") continue;
    for (const c of item.constraints as Node[]) {
      const inner = c.type === "constraint" ? (c.constraint as Node) : c;
      if (inner.type === "constraint_default") defaults.push(item.name.name);
      if (inner.type !== "constraint_primary_key" && inner.type !== "constraint_unique") continue;
      const conflictClause = (inner.clauses as Node[]).some((k) => k.type === "on_conflict_clause");
      const rowid = inner.type === "constraint_primary_key" && alias === item.name.name;
      out.push({ columns: [item.name.name], rowid, conflictClause, defaults });
    }
  }
  for (const item of items) {
    const inner = item.type === "constraint" ? (item.constraint as Node) : item;
    if (inner.type !== "constraint_primary_key" && inner.type !== "constraint_unique") continue;
    const columns = names(inner.columns as Node | undefined);
    if (columns.length === 0 || columns.some((c) => c === "")) continue;
    const conflictClause = (inner.clauses as Node[]).some((k) => k.type === "on_conflict_clause");
    const rowid = inner.type === "constraint_primary_key" && columns.length === 1 && alias === columns[0];
    out.push({ columns, rowid, conflictClause, defaults });
  }
  if (cache.size > 1000) cache.clear();
  cache.set(createSql, out);
  return out;
}

/**
 * The column that is the table's rowid (SQLite's INTEGER PRIMARY KEY alias), if any: a one-column
 * PRIMARY KEY declared exactly INTEGER, in a table with a rowid, not the `INTEGER PRIMARY KEY
 * DESC` column form (SQLite's quirk keeps that one an ordinary key).
 */
function rowidAlias(stmt: Extract<Node, { type: "create_table_stmt" }>): string | undefined {
  const options = (stmt.options?.items ?? []) as Node[];
  if (options.some((o) => o.type === "table_option" && kw(o.name) === "WITHOUT ROWID")) return undefined;
  const items = (stmt.columns?.expr.items ?? []) as Node[];
  const declared = (name: string) => items.find((i) => i.type === "column_definition" && i.name.name.toLowerCase() === name.toLowerCase());
  const isInteger = (name: string): boolean => {
    const col = declared(name);
    return col?.type === "column_definition" && kw((col.dataType as { name?: unknown } | undefined)?.name) === "INTEGER";
  };
  for (const item of items) {
    if (item.type === "column_definition") {
      for (const c of item.constraints as Node[]) {
        const inner = c.type === "constraint" ? (c.constraint as Node) : c;
        if (inner.type !== "constraint_primary_key") continue;
        const desc = (inner as { direction?: { type?: string } }).direction?.type === "sort_direction_desc";
        return isInteger(item.name.name) && !desc ? item.name.name : undefined;
      }
      continue;
    }
    const inner = item.type === "constraint" ? (item.constraint as Node) : item;
    if (inner.type !== "constraint_primary_key") continue;
    const columns = names(inner.columns as Node | undefined);
    const only = columns[0];
    return columns.length === 1 && only !== undefined && isInteger(only) ? only : undefined;
  }
  return undefined;
}

/** The name of the column a table's rows are numbered by (its INTEGER PRIMARY KEY), if it has one. */
export function rowidColumn(createSql: string | undefined): string | undefined {
  if (!createSql) return undefined;
  return uniqueConstraints(createSql).find((k) => k.rowid)?.columns[0];
}

/** The keys that need a system lookup: those of a sharded table without its vindex column, unless it opts out. */
export function keyspaceKeys(createSql: string | undefined, vindexColumn: string, entry: TableVSchema | undefined): UniqueConstraint[] {
  if (!createSql || entry?.unique === "per_shard") return [];
  const v = vindexColumn.toLowerCase();
  return uniqueConstraints(createSql).filter((k) => !k.columns.some((c) => c.toLowerCase() === v));
}

/** DDL creating the system lookup tables of a table's keyspace-wide keys (idempotent). */
export function systemLookupDdl(table: string, keys: readonly UniqueConstraint[]): string[] {
  // k: uniqueKey() of the key's values (canonical text); keyspace_id: the owner row's.
  return keys.map(
    (k) =>
      `CREATE TABLE IF NOT EXISTS ${quoteIdent(systemLookupTable(table, k.columns))} (${SYSTEM_LOOKUP_FROM} TEXT PRIMARY KEY, ${SYSTEM_LOOKUP_TO} BLOB NOT NULL)`,
  );
}

/** The lookups (LookupTable form) of a sharded table's keyspace-wide keys; `missing` names keys whose system table does not exist. */
export function systemLookups(
  ks: KeyspaceGraph,
  table: string,
  info: TableInfo | undefined,
  vindexColumn: string,
  entry: TableVSchema | undefined,
): { lookups: (LookupTable & { routable: boolean; key: UniqueConstraint })[]; missing: UniqueConstraint[] } {
  const keys = keyspaceKeys(info?.sql, vindexColumn, entry);
  const lookups: (LookupTable & { routable: boolean; key: UniqueConstraint })[] = [];
  const missing: UniqueConstraint[] = [];
  for (const key of keys) {
    const name = systemLookupTable(table, key.columns);
    if (!own(ks.tables, name.toLowerCase())) {
      missing.push(key);
      continue;
    }
    const columns: KeyColumn[] = key.columns.map((c) => {
      const col = info?.columns.find((x) => x.name.toLowerCase() === c.toLowerCase());
      return { name: col?.name ?? c, affinity: affinityOf(col?.type ?? ""), collation: declaredCollation(info?.sql, c, parseOne) };
    });
    lookups.push({
      name: `unique (${key.columns.join(", ")})`,
      keyspace: ks.name,
      table: name,
      from: SYSTEM_LOOKUP_FROM,
      to: SYSTEM_LOOKUP_TO,
      unique: true,
      column: key.columns.join(", "),
      system: { columns, vindex: systemLookupVindex(), rowid: key.rowid },
      routable: false,
      key,
    });
  }
  return { lookups, missing };
}
