// DDL: applied to every shard through the Topology. A CREATE TABLE in a sharded keyspace
// without a vschema entry gets one on the first primary-key column (⚑ DESIGN.md), or, when its
// name starts with "__" and holds "migration" (migration tools' bookkeeping), a reference entry.

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { tableVSchema } from "../../topology/vschema.ts";
import type { TableVSchema } from "../../contract/vschema.ts";
import { Ddl } from "../engine/ddl.ts";
import type { Primitive } from "../engine/primitive.ts";
import type { ParsedStatement } from "../sql/parse.ts";
import { kw, textOf, tableRef } from "./ast.ts";
import { own } from "../../topology/own.ts";
import { keyspaceKeys, systemLookupDdl, systemLookupTable } from "./unique-keys.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import { checkForeignKey, foreignKeysOf } from "./foreign-keys.ts";
import { checkForeignKeyActions } from "./foreign-key-actions.ts";

/** Names of migration tools' bookkeeping tables: `__` first, "migration" somewhere (any case). */
const MIGRATIONS_TABLE = /^__.*migration/i;

export const DDL_TYPES = new Set([
  "create_table_stmt",
  "create_index_stmt",
  "drop_table_stmt",
  "drop_index_stmt",
  "alter_table_stmt",
  "create_view_stmt",
  "drop_view_stmt",
  "create_trigger_stmt",
  "drop_trigger_stmt",
]);

function primaryKey(s: Extract<Node, { type: "create_table_stmt" }>): string[] {
  const items = (s.columns?.expr.items ?? []) as Node[];
  for (const item of items) {
    if (item.type === "column_definition") {
      for (const c of item.constraints) {
        const inner = c.type === "constraint" ? c.constraint : c;
        if (inner.type === "constraint_primary_key") return [item.name.name];
      }
    }
  }
  for (const item of items) {
    const inner = item.type === "constraint" ? item.constraint : item;
    if (inner.type === "constraint_primary_key" && inner.columns && "expr" in inner.columns) {
      return (inner.columns.expr.items as Node[]).map((spec) => {
        const e = spec.type === "index_specification" ? spec.expr : spec;
        return e.type === "identifier" ? e.name : "";
      });
    }
  }
  return [];
}

/** Declared column types of a CREATE TABLE (lower-cased names). */
function declaredTypes(ps: ParsedStatement, items: readonly Node[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of items) {
    if (item.type === "column_definition") out.set(item.name.name.toLowerCase(), item.dataType ? textOf(ps, item.dataType) : "");
  }
  return out;
}

/** A column's declared type in the keyspace's schema. */
function schemaType(ks: KeyspaceGraph, table: string, column: string): string | undefined {
  const info = Object.hasOwn(ks.tables, table.toLowerCase()) ? ks.tables[table.toLowerCase()] : undefined;
  return info?.columns.find((c) => c.name.toLowerCase() === column.toLowerCase())?.type;
}

/** Refuses the statement's foreign keys that SQLite could not check on one shard (foreign-keys.ts). */
function checkForeignKeys(
  ks: KeyspaceGraph,
  table: string,
  entry: TableVSchema | undefined,
  pk: readonly string[],
  items: readonly Node[],
  own: Map<string, string>,
  replaces = true,
): void {
  const fks = foreignKeysOf(items);
  for (const fk of fks) {
    checkForeignKey(ks, table, entry, pk, fk, (t, c) =>
      t.toLowerCase() === table.toLowerCase() && own.has(c.toLowerCase()) ? own.get(c.toLowerCase()) : schemaType(ks, t, c),
    );
  }
  checkForeignKeyActions(ks, table, entry, fks, replaces);
}

export function planDdl(ps: ParsedStatement, ks: KeyspaceGraph): Primitive {
  const s = ps.stmt;
  const sql = ps.text.slice(ps.range[0], ps.range[1]);
  if (s.type === "create_table_stmt" && s.kind !== undefined && kw(s.kind.kindKw).toUpperCase() === "VIRTUAL") {
    // Writes to a virtual table fire no triggers, so they could not reach the binlog.
    throw unsupportedError(
      "VD2104",
      "CREATE VIRTUAL TABLE (fts5, rtree, …): its writes cannot be recorded in the binlog, so replication and resharding would lose them",
    );
  }
  if (!ks.sharded) return new Ddl(sql);
  switch (s.type) {
    case "create_table_stmt": {
      if (s.kind) throw unsupportedError("VD1090", `CREATE ${kw(s.kind.kindKw)} TABLE in a sharded keyspace`);
      if (s.clauses.some((c) => c.type === "as_clause")) throw unsupportedError("VD1091", "CREATE TABLE … AS SELECT in a sharded keyspace");
      const name = tableRef(s.name as Node).name;
      const pk = primaryKey(s);
      const items = (s.columns?.expr.items ?? []) as Node[];
      const existing = tableVSchema(ks.vschema, name);
      if (existing) {
        checkForeignKeys(ks, name, existing, pk, items, declaredTypes(ps, items));
        return new Ddl(withSystemLookups(sql, name, existing.column_vindexes?.[0]?.column, existing));
      }
      if (own(ks.tables, name.toLowerCase()) && s.ifNotExistsKw) return new Ddl(sql);
      if (MIGRATIONS_TABLE.test(name)) {
        // Migration tools' bookkeeping tables (drizzle's __drizzle_migrations, …): small, read by
        // every client, and often keyed by a column inserts leave NULL. A copy on every shard.
        checkForeignKeys(ks, name, { type: "reference" }, pk, items, declaredTypes(ps, items));
        return new Ddl(sql, { name, entry: { type: "reference" } });
      }
      const vindex = Object.keys(ks.vschema.vindexes)[0];
      const column = pk[0];
      if (column && vindex) checkForeignKeys(ks, name, { column_vindexes: [{ column, name: vindex }] }, pk, items, declaredTypes(ps, items));
      if (!column || !vindex) {
        const why = !column ? "has no primary key" : `cannot use a vindex: keyspace ${ks.name} defines none`;
        throw new VtError(
          "INVALID_ARGUMENT",
          `table ${name} ${why} and no vschema entry; add one first, e.g. vtctl vschema apply ${ks.name} with "tables": {"${name}": {"column_vindexes": [{"column": "<col>", "name": "<vindex>"}]}}`,
        );
      }
      return new Ddl(withSystemLookups(sql, name, column, undefined), { name, entry: { column_vindexes: [{ column, name: vindex }] } });
    }
    case "drop_table_stmt": {
      const first = s.tables.items[0] as Node | undefined;
      const name = first ? tableRef(first).name : undefined;
      const drops = name === undefined || s.tables.items.length !== 1 ? [] : systemTablesOf(ks, name).map((t) => `DROP TABLE IF EXISTS ${quoteIdent(t)}`);
      return new Ddl([sql, ...drops].join(";\n"), undefined, name);
    }
    case "alter_table_stmt": {
      const name = tableRef(s.table as Node).name;
      const t = tableVSchema(ks.vschema, name);
      const vcol = t?.column_vindexes?.[0]?.column.toLowerCase();
      for (const a of s.actions.items as Node[]) {
        if (a.type === "alter_action_rename") throw unsupportedError("VD1092", "ALTER TABLE … RENAME TO in a sharded keyspace (the vschema names the table)");
        if (a.type === "alter_action_rename_column" && a.oldName.type === "identifier" && a.oldName.name.toLowerCase() === vcol) {
          throw unsupportedError("VD1093", `renaming the vindex column ${vcol} of ${name}`);
        }
        if (a.type === "alter_action_rename_column" && a.oldName.type === "identifier" && vcol !== undefined) {
          const old = a.oldName.name.toLowerCase();
          const key = keyspaceKeys(own(ks.tables, name.toLowerCase())?.sql, vcol, t).find((k) => k.columns.some((c) => c.toLowerCase() === old));
          if (key)
            throw unsupportedError(
              "VD2409",
              `renaming column ${a.oldName.name} of ${name}: it is in keyspace-wide unique key (${key.columns.join(", ")}), whose system lookup table is named by its columns`,
            );
        }
        if (a.type === "alter_action_drop_column" && a.column.type === "identifier" && a.column.name.toLowerCase() === vcol) {
          throw unsupportedError("VD1094", `dropping the vindex column ${vcol} of ${name}`);
        }
        if (a.type === "alter_action_add_column") {
          const col = a.column as Node;
          checkForeignKeys(ks, name, t, [], [col], declaredTypes(ps, [col]), false);
        }
      }
      return new Ddl(sql);
    }
    case "create_index_stmt":
      checkUniqueIndex(s, ks);
      return new Ddl(sql);
    case "drop_index_stmt":
      return new Ddl(sql);
    default:
      throw unsupportedError("VD1095", `${textOf(ps, s).split(/\s+/).slice(0, 2).join(" ").toUpperCase()} in a sharded keyspace`);
  }
}

/** The owner's CREATE TABLE and, in the same schema entry (one transaction per shard), its keyspace-wide keys' system tables. */
function withSystemLookups(sql: string, table: string, vindexColumn: string | undefined, entry: TableVSchema | undefined): string {
  if (vindexColumn === undefined || entry?.type !== undefined) return sql;
  const ddl = systemLookupDdl(table, keyspaceKeys(sql, vindexColumn, entry));
  return ddl.length === 0 ? sql : [sql, ...ddl].join(";\n");
}

/** The system lookup tables that belong to `table` (named `_vtl_<table>__<its columns>`). */
function systemTablesOf(ks: KeyspaceGraph, table: string): string[] {
  const info = own(ks.tables, table.toLowerCase());
  if (!info) return [];
  const prefix = systemLookupTable(table, []);
  const cols = new Set(info.columns.map((c) => c.name.toLowerCase()));
  return Object.values(ks.tables)
    .map((t) => t.name)
    .filter(
      (n) =>
        n.toLowerCase().startsWith(prefix) &&
        n
          .slice(prefix.length)
          .split("__")
          .every((c) => cols.has(c.toLowerCase())),
    );
}

/**
 * A UNIQUE index on a sharded table holds across the keyspace only with a system lookup table,
 * which an index made after the table's rows cannot have yet: refused unless it contains the
 * vindex column (then each shard's index is the whole truth) or the table opts out.
 */
function checkUniqueIndex(s: Extract<Node, { type: "create_index_stmt" }>, ks: KeyspaceGraph): void {
  if (kw(s.indexTypeKw) !== "UNIQUE") return;
  const table = tableRef(s.table as Node).name;
  const entry = tableVSchema(ks.vschema, table);
  if (!entry || entry.type !== undefined || entry.unique === "per_shard") return;
  const vcol = entry.column_vindexes?.[0]?.column.toLowerCase();
  const cols = ((s.columns as { expr?: { items?: Node[] } } | undefined)?.expr?.items ?? []).map((spec) => {
    const e = spec.type === "index_specification" ? (spec.expr as Node) : spec;
    return e.type === "identifier" ? e.name.toLowerCase() : "";
  });
  if (vcol !== undefined && cols.includes(vcol)) return;
  throw unsupportedError(
    "VD2402",
    `CREATE UNIQUE INDEX on ${table} without its vindex column ${vcol ?? ""}: it would hold per shard only; declare the key in CREATE TABLE (kept keyspace-wide), include ${vcol ?? "the vindex column"}, or opt out with "unique": "per_shard" in the table's vschema`,
  );
}
