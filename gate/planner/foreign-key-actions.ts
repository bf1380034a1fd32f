// What a foreign key's ON DELETE / ON UPDATE action may do in a sharded keyspace. SQLite runs an
// action on the shard the parent write runs on, against the child rows that shard holds, so:
// - A write to a reference table runs on every shard ("first shard first"); each shard's sharded
//   child rows react to it. It must be accepted by every shard alike, and it must not change a
//   child column that places the row or that a keyspace-wide lookup records. So a sharded child's
//   key to a reference table must be ON DELETE CASCADE (deleting child rows cannot fail) and the
//   parent's referenced columns are never updated (dml.ts refuses it, VD2105): ON UPDATE never runs.
// - A child whose rows such a delete reaches is deleted the same way: every key to it must be
//   ON DELETE CASCADE too (checked in both directions, whichever key is declared last).
// - A co-located key (child's vindex column → parent's) must not set the child's vindex column
//   (SET NULL / SET DEFAULT would leave the row on the wrong shard), and with several columns must
//   not cascade a parent update into the child's other columns (a lookup would not follow).
// - A reference table's own key to another reference table must not change the columns a sharded
//   child references (ON UPDATE other than NO ACTION / RESTRICT, ON DELETE SET NULL / SET DEFAULT).

import type { Node } from "sql-parser-cst";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { TableVSchema } from "../../contract/vschema.ts";
import { own } from "../../topology/own.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import { tableVSchema } from "../../topology/vschema.ts";
import { parseOne } from "../sql/parse.ts";
import { foreignKeysOf, type ForeignKey } from "./foreign-keys.ts";

/** One foreign key of the schema, with its child table. */
export interface DeclaredKey {
  readonly child: string;
  readonly fk: ForeignKey;
}

const cache = new Map<string, ForeignKey[]>();

/** The foreign keys a table's CREATE TABLE text declares. */
function keysOfSql(sql: string | undefined): ForeignKey[] {
  if (!sql) return [];
  const hit = cache.get(sql);
  if (hit) return hit;
  let out: ForeignKey[] = [];
  try {
    const s = parseOne(sql).stmt;
    if (s.type === "create_table_stmt") out = foreignKeysOf((s.columns?.expr.items ?? []) as Node[]);
  } catch {
    out = [];
  }
  if (cache.size > 1000) cache.clear();
  cache.set(sql, out);
  return out;
}

/**
 * Every foreign key of the keyspace's schema, with `extra` (a statement's keys for `table`): they
 * replace the table's keys for a CREATE TABLE (`replaces`), and add to them for an ADD COLUMN.
 */
export function schemaKeys(ks: KeyspaceGraph, table?: string, extra: readonly ForeignKey[] = [], replaces = false): DeclaredKey[] {
  const out: DeclaredKey[] = [];
  for (const info of Object.values(ks.tables)) {
    if (replaces && table !== undefined && info.name.toLowerCase() === table.toLowerCase()) continue;
    for (const fk of keysOfSql(info.sql)) out.push({ child: info.name, fk });
  }
  if (table !== undefined) for (const fk of extra) out.push({ child: table, fk });
  return out;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function isReference(ks: KeyspaceGraph, table: string, override?: { table: string; entry: TableVSchema | undefined }): boolean {
  const entry = override && same(override.table, table) ? override.entry : tableVSchema(ks.vschema, table);
  return entry?.type === "reference";
}

function primaryKeyOf(ks: KeyspaceGraph, table: string): string[] {
  const info = own(ks.tables, table.toLowerCase());
  return (info?.columns ?? [])
    .filter((c) => c.pk > 0)
    .sort((x, y) => x.pk - y.pk)
    .map((c) => c.name);
}

/**
 * The columns of reference table `table` that a sharded table's foreign key references
 * (lower-cased): an UPDATE of one would run the key's ON UPDATE action on every shard's child rows.
 */
export function columnsShardedChildrenReference(
  ks: KeyspaceGraph,
  table: string,
  keys: readonly DeclaredKey[] = schemaKeys(ks),
  ref: (t: string) => boolean = (t) => isReference(ks, t),
): Set<string> {
  const out = new Set<string>();
  for (const k of keys) {
    if (!same(k.fk.parent, table) || ref(k.child)) continue;
    for (const c of k.fk.parentColumns ?? primaryKeyOf(ks, k.fk.parent)) out.add(c.toLowerCase());
  }
  return out;
}

/**
 * Refuses (VD2102) the actions of `child`'s new keys `fks` that could make a write accepted on some
 * shards and refused on others, or change a placing or looked-up column without the gate.
 */
export function checkForeignKeyActions(ks: KeyspaceGraph, child: string, childEntry: TableVSchema | undefined, fks: ForeignKey[], replaces: boolean): void {
  const override = { table: child, entry: childEntry };
  const keys = schemaKeys(ks, child, fks, replaces);
  const ref = (t: string) => isReference(ks, t, override);
  const mine = (k: DeclaredKey) => same(k.child, child) && fks.includes(k.fk);
  // Sharded tables whose rows a delete on a reference table reaches (through their keys), with
  // and without the statement's keys.
  const reach = (with_: boolean) => {
    const out = new Set<string>();
    for (let grew = true; grew; ) {
      grew = false;
      for (const k of keys) {
        const c = k.child.toLowerCase();
        if ((!with_ && mine(k)) || out.has(c) || ref(k.child)) continue;
        if (ref(k.fk.parent) || out.has(k.fk.parent.toLowerCase())) {
          out.add(c);
          grew = true;
        }
      }
    }
    return out;
  };
  const reached = reach(true);
  const before = reach(false);
  const what = (k: DeclaredKey) => `the foreign key ${k.child} (${k.fk.columns.join(", ")}) → ${k.fk.parent}`;
  for (const k of keys) {
    if (ref(k.child)) continue;
    const parent = k.fk.parent.toLowerCase();
    if (ref(k.fk.parent)) {
      if (mine(k) && k.fk.onDelete !== "CASCADE") {
        throw unsupportedError(
          "VD2102",
          `${what(k)}: a key from a sharded table to reference table ${k.fk.parent} must be ON DELETE CASCADE (with ON DELETE ${k.fk.onDelete} a parent delete could be refused on some shards and applied on others)`,
        );
      }
      continue;
    }
    if (reached.has(parent) && (mine(k) || !before.has(parent)) && k.fk.onDelete !== "CASCADE") {
      throw unsupportedError(
        "VD2102",
        `${what(k)}: rows of ${k.fk.parent} are deleted on every shard by a delete on a reference table, so every key to it must be ON DELETE CASCADE (with ON DELETE ${k.fk.onDelete} that delete could be refused on some shards only)`,
      );
    }
    if (!mine(k)) continue;
    // A co-located key: its columns hold the child's vindex column.
    const moves = (a: string) => a === "SET NULL" || a === "SET DEFAULT";
    if (moves(k.fk.onDelete) || moves(k.fk.onUpdate)) {
      const vcol = (same(k.child, child) ? childEntry : tableVSchema(ks.vschema, k.child))?.column_vindexes?.[0]?.column ?? "";
      throw unsupportedError(
        "VD2102",
        `${what(k)}: ${moves(k.fk.onDelete) ? `ON DELETE ${k.fk.onDelete}` : `ON UPDATE ${k.fk.onUpdate}`} would change the vindex column ${vcol} of ${k.child}, leaving the row on the wrong shard`,
      );
    }
    if (k.fk.columns.length > 1 && k.fk.onUpdate === "CASCADE") {
      throw unsupportedError(
        "VD2102",
        `${what(k)}: ON UPDATE CASCADE of a key of several columns would change ${k.child}'s columns behind the gate, so its lookups and keyspace-wide unique keys would not follow`,
      );
    }
  }
  // A reference table's key to another must not change columns a sharded child references.
  for (const k of keys) {
    if (!ref(k.child) || !ref(k.fk.parent)) continue;
    if (!mine(k) && !keys.some((m) => mine(m) && !ref(m.child) && same(m.fk.parent, k.child))) continue;
    const referenced = columnsShardedChildrenReference(ks, k.child, keys, ref);
    const hit = k.fk.columns.find((c) => referenced.has(c.toLowerCase()));
    if (hit === undefined) continue;
    const changesUpdate = k.fk.onUpdate !== "NO ACTION" && k.fk.onUpdate !== "RESTRICT";
    const changesDelete = k.fk.onDelete === "SET NULL" || k.fk.onDelete === "SET DEFAULT";
    if (changesUpdate || changesDelete) {
      throw unsupportedError(
        "VD2102",
        `${what(k)}: ${changesUpdate ? `ON UPDATE ${k.fk.onUpdate}` : `ON DELETE ${k.fk.onDelete}`} would change ${k.child}.${hit}, which a sharded table's foreign key references, on every shard's child rows`,
      );
    }
  }
}

/** The columns a SET list assigns (`c = …` and `(a, b) = …`). */
function assigned(set: Node | undefined): string[] {
  if (set?.type !== "set_clause") return [];
  return (set.assignments.items as Node[]).flatMap((a) => {
    if (a.type !== "column_assignment") return [];
    const cols = a.column.type === "paren_expr" ? ((a.column.expr as Extract<Node, { type: "list_expr" }>).items as Node[]) : [a.column as Node];
    return cols.map((c) => (c.type === "identifier" ? c.name : c.type === "member_expr" && c.property.type === "identifier" ? c.property.name : ""));
  });
}

/**
 * Refuses (VD2105) an UPDATE, or an INSERT … ON CONFLICT DO UPDATE, of reference table `table`
 * that sets a column a sharded table's foreign key references: each shard's child rows would run
 * the key's ON UPDATE action (or refuse it) on their own. A REPLACE deletes the old row first, which
 * every shard's child rows follow alike (ON DELETE CASCADE), so it is not refused.
 */
export function checkReferenceKeyUpdate(ks: KeyspaceGraph, table: string, stmt: Node): void {
  const sets: Node[] =
    stmt.type === "update_stmt"
      ? stmt.clauses.filter((c) => c.type === "set_clause")
      : stmt.type === "insert_stmt"
        ? stmt.clauses.flatMap((c) => (c.type === "upsert_clause" && c.action.type === "upsert_action_update" ? [c.action.set as Node] : []))
        : [];
  if (sets.length === 0) return;
  const referenced = columnsShardedChildrenReference(ks, table);
  for (const set of sets) {
    const hit = assigned(set).find((c) => referenced.has(c.toLowerCase()));
    if (hit !== undefined) {
      throw unsupportedError(
        "VD2105",
        `${stmt.type === "update_stmt" ? "UPDATE" : "ON CONFLICT DO UPDATE"} of ${table}.${hit}, which a sharded table's foreign key references: each shard's child rows would follow (or refuse) it on their own; delete the row (its child rows go with it) and insert it again`,
      );
    }
  }
}
