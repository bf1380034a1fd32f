// Foreign keys in a sharded keyspace. SQLite checks a foreign key on the shard the write runs on,
// so a key is only right when the parent row is always on that shard: the parent is a reference
// table (every shard has every row), or parent and child are sharded by the same vindex and the
// key maps the child's vindex column onto the parent's. Anything else is refused when the key is
// declared (CREATE TABLE / ALTER TABLE … ADD COLUMN), never with an error SQLite would not give.

import type { Node } from "sql-parser-cst";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import { tableVSchema } from "../../topology/vschema.ts";
import type { TableVSchema } from "../../contract/vschema.ts";
import { affinityOf } from "../engine/values.ts";

/** One declared foreign key: child columns → parent table (and columns, when named). */
export interface ForeignKey {
  readonly columns: readonly string[];
  readonly parent: string;
  readonly parentColumns: readonly string[] | null;
  /** The ON DELETE / ON UPDATE actions, upper-cased ("CASCADE", "SET NULL", …); absent = NO ACTION. */
  readonly onDelete: string;
  readonly onUpdate: string;
}

function ident(n: Node | undefined): string | undefined {
  return n?.type === "identifier" ? n.name : undefined;
}

function listNames(n: Node | undefined): string[] | null {
  if (n?.type !== "paren_expr" || n.expr.type !== "list_expr") return null;
  return (n.expr.items as Node[]).map((i) => ident(i.type === "index_specification" ? i.expr : i) ?? "");
}

function referencesOf(columns: readonly string[], spec: Extract<Node, { type: "references_specification" }>): ForeignKey {
  let onDelete = "NO ACTION";
  let onUpdate = "NO ACTION";
  for (const o of spec.options as Node[]) {
    if (o.type !== "referential_action") continue;
    const action = (Array.isArray(o.actionKw) ? o.actionKw : [o.actionKw]).map((k) => k.name).join(" ");
    if (o.eventKw.name === "DELETE") onDelete = action;
    else onUpdate = action;
  }
  const parent = ident(spec.table as Node) ?? (spec.table.type === "member_expr" ? (ident(spec.table.property as Node) ?? "") : "");
  return { columns, parent, parentColumns: listNames(spec.columns as Node | undefined), onDelete, onUpdate };
}

/** Foreign keys declared by column definitions and table constraints. */
export function foreignKeysOf(items: readonly Node[]): ForeignKey[] {
  const out: ForeignKey[] = [];
  for (const item of items) {
    if (item.type === "column_definition") {
      for (const c of item.constraints as Node[]) {
        const inner = c.type === "constraint" ? c.constraint : c;
        if (inner.type === "references_specification") out.push(referencesOf([item.name.name], inner));
      }
      continue;
    }
    const inner = item.type === "constraint" ? item.constraint : item;
    if (inner.type === "constraint_foreign_key") out.push(referencesOf(listNames(inner.columns as Node) ?? [], inner.references));
  }
  return out;
}

/** A declared column's type (from the statement, or the keyspace's schema). */
export type ColumnType = (table: string, column: string) => string | undefined;

/**
 * Refuses (UNSUPPORTED VD2102) a foreign key of `child` (placed by `childEntry`) that SQLite could
 * not check on one shard. `self` is the child's entry when the key references the child itself.
 */
export function checkForeignKey(
  ks: KeyspaceGraph,
  child: string,
  childEntry: TableVSchema | undefined,
  childPk: readonly string[],
  fk: ForeignKey,
  typeOf: ColumnType,
): void {
  const isSelf = fk.parent.toLowerCase() === child.toLowerCase();
  const parentEntry = isSelf ? childEntry : tableVSchema(ks.vschema, fk.parent);
  const what = `the foreign key ${child} (${fk.columns.join(", ")}) → ${fk.parent}`;
  if (!parentEntry) {
    throw unsupportedError(
      "VD2102",
      `${what}: ${fk.parent} has no vschema entry, so where its rows live is unknown; create ${fk.parent} (or its vschema entry) first`,
    );
  }
  // Its actions are checked with the schema's other keys (foreign-key-actions.ts).
  if (parentEntry.type === "reference") return;
  const parentVindex = parentEntry.column_vindexes?.[0];
  const childVindex = childEntry?.column_vindexes?.[0];
  if (!parentVindex || !childVindex) {
    throw unsupportedError("VD2102", `${what}: a reference table's rows would need their parent on every shard, but ${fk.parent} is sharded`);
  }
  const parentColumns = fk.parentColumns ?? (isSelf ? childPk : primaryKeyOf(ks, fk.parent));
  const at = fk.columns.findIndex((c) => c.toLowerCase() === childVindex.column.toLowerCase());
  const sameVindex = childVindex.name === parentVindex.name || sameDefinition(ks, childVindex.name, parentVindex.name);
  const mapped = at >= 0 && parentColumns?.[at]?.toLowerCase() === parentVindex.column.toLowerCase();
  const childType = typeOf(child, childVindex.column);
  const parentType = typeOf(fk.parent, parentVindex.column);
  const sameAffinity = childType !== undefined && parentType !== undefined && affinityOf(childType) === affinityOf(parentType);
  if (!mapped || !sameVindex || !sameAffinity) {
    throw unsupportedError(
      "VD2102",
      `${what}: the parent row may live on another shard (only a key from the child's vindex column ${childVindex.column} to the parent's vindex column ${parentVindex.column}, same vindex and column affinity, or a key to a reference table, is checked on one shard)`,
    );
  }
}

function sameDefinition(ks: KeyspaceGraph, a: string, b: string): boolean {
  const da = Object.hasOwn(ks.vschema.vindexes, a) ? ks.vschema.vindexes[a] : undefined;
  const db = Object.hasOwn(ks.vschema.vindexes, b) ? ks.vschema.vindexes[b] : undefined;
  return da !== undefined && db !== undefined && da.type === db.type && JSON.stringify(da.params ?? {}) === JSON.stringify(db.params ?? {});
}

/** The parent's primary key columns (a key naming no columns references them), when known. */
function primaryKeyOf(ks: KeyspaceGraph, table: string): readonly string[] | null {
  const info = Object.hasOwn(ks.tables, table.toLowerCase()) ? ks.tables[table.toLowerCase()] : undefined;
  if (!info) return null;
  const pk = info.columns.filter((c) => c.pk > 0).sort((x, y) => x.pk - y.pk);
  return pk.length > 0 ? pk.map((c) => c.name) : null;
}
