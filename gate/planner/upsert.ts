// INSERT … ON CONFLICT DO UPDATE into a sharded table owning unique lookups (engine/insert-upsert.ts):
// which keys the target names, and what the gate cannot keep exact (refused with an id).

import type { Node } from "sql-parser-cst";
import type { TableInfo } from "../../contract/tablet-rpc.ts";
import type { UpsertSpec } from "../engine/insert-upsert.ts";
import type { LookupTable } from "../engine/lookup.ts";
import type { ValueExpr } from "../engine/values.ts";
import type { ParsedStatement } from "../sql/parse.ts";
import type { Template } from "../sql/template.ts";
import { unsupported, valueExprOf } from "./ast.ts";
import { uniqueConstraints } from "./unique-keys.ts";

type InsertStmt = Extract<Node, { type: "insert_stmt" }>;

/** A lookup's owner columns, lower case. */
function columnsOf(l: LookupTable): string[] {
  return (l.system ? l.system.columns.map((c) => c.name) : [l.column]).map((c) => c.toLowerCase());
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** The DO UPDATE clause of an INSERT into a table owning lookups, or undefined; refuses the forms the gate cannot keep exact. */
export function upsertUpdate(s: InsertStmt, table: string, lookups: readonly LookupTable[]): Extract<Node, { type: "upsert_clause" }> | undefined {
  if (lookups.length === 0) return undefined;
  const upserts = s.clauses.filter((c) => c.type === "upsert_clause");
  const update = upserts.find((c) => c.action.type === "upsert_action_update");
  if (!update) return undefined;
  const ic = s.clauses.find((c) => c.type === "insert_clause");
  const orAction = ic?.type === "insert_clause" && (ic.orAction !== undefined || ic.insertKw.name === "REPLACE");
  if (upserts.length > 1 || orAction || update.where) {
    throw unsupported(
      "VD1033",
      `ON CONFLICT DO UPDATE into ${table}, which owns lookup vindexes or keyspace-wide unique keys, ${
        upserts.length > 1 ? "with several ON CONFLICT clauses" : orAction ? "with OR … / REPLACE" : "with a partial-index target (ON CONFLICT (…) WHERE)"
      } (use one ON CONFLICT (…) DO UPDATE clause)`,
    );
  }
  return update;
}

/**
 * ON CONFLICT (c) DO NOTHING where c is unique only through a lookup_unique vindex: the shards,
 * which hold no UNIQUE index on c, could not run the clause (SQLite refuses the target).
 */
export function checkNothingTargets(s: InsertStmt, table: string, info: TableInfo, lookups: readonly LookupTable[]): void {
  const keys = uniqueConstraints(info.sql);
  for (const c of s.clauses) {
    if (c.type !== "upsert_clause" || c.action.type !== "upsert_action_nothing" || !c.conflictTarget) continue;
    const target = targetColumns(c, table);
    if (
      !target ||
      keys.some((k) =>
        sameSet(
          k.columns.map((x) => x.toLowerCase()),
          target,
        ),
      )
    )
      continue;
    const l = lookups.find((x) => x.unique && !x.system && sameSet(columnsOf(x), target));
    if (l) {
      throw unsupported(
        "VD2411",
        `ON CONFLICT (${l.column}) DO NOTHING into ${table}: ${l.column} is unique only through lookup vindex ${l.name} (declare ${l.column} UNIQUE in the table, or use INSERT OR IGNORE)`,
      );
    }
  }
}

/**
 * A row's values of each local key (`"vindex"`: the row's vindex value). A value the gate does
 * not know (an expression, an omitted column) is refused when `refuseFor` names the table, else
 * undefined (the key is then not checked at the gate for that row).
 */
function localValuesOf(
  ps: ParsedStatement,
  keys: readonly (readonly string[])[],
  vcol: string,
  cols: readonly string[],
  row: readonly Node[],
  refuseFor?: string,
): (ValueExpr | "vindex" | undefined)[][] {
  const at = (c: string) => cols.findIndex((x) => x.toLowerCase() === c);
  return keys.map((k) =>
    k.map((c): ValueExpr | "vindex" | undefined => {
      if (c === vcol) return "vindex";
      const n = row[at(c)];
      const v = n ? valueExprOf(ps, n) : undefined;
      if (!v && refuseFor !== undefined) {
        throw unsupported(
          "VD2413",
          `ON CONFLICT DO UPDATE into ${refuseFor}: ${n ? "an expression as" : "no"} value of ${c}, which is in unique key (${k.join(", ")}) (use a literal or a placeholder)`,
        );
      }
      return v;
    }),
  );
}

/**
 * The keys holding the vindex column whose taken values an INSERT OR IGNORE / ON CONFLICT DO
 * NOTHING skips (its shard does; the gate must not claim lookup values for those rows), and a
 * row's values of them.
 */
export function ignoredLocalKeys(
  ps: ParsedStatement,
  s: InsertStmt,
  table: string,
  info: TableInfo,
  vindexColumn: string,
  cols: readonly string[],
): { keys: string[][]; values: (row: readonly Node[]) => (ValueExpr | "vindex" | undefined)[][] } {
  const vcol = vindexColumn.toLowerCase();
  const local = uniqueConstraints(info.sql)
    .filter((k) => k.columns.some((c) => c.toLowerCase() === vcol))
    .map((k) => k.columns.map((c) => c.toLowerCase()));
  const ic = s.clauses.find((c) => c.type === "insert_clause");
  const all = ic?.type === "insert_clause" && ic.orAction !== undefined && ic.orAction.actionKw.name === "IGNORE";
  const keys = local.filter(
    (k) =>
      all ||
      s.clauses.some((c) => {
        if (c.type !== "upsert_clause" || c.action.type !== "upsert_action_nothing") return false;
        const target = conflictTargetColumns(c, table);
        return target === undefined || sameSet(k, target);
      }),
  );
  return { keys, values: (row) => localValuesOf(ps, keys, vcol, cols, row) };
}

/**
 * The conflict target's columns (lower case; "" for a term that is not a column of `table`), or
 * undefined without one. Drizzle writes the target as "table"."column".
 */
export function conflictTargetColumns(u: Extract<Node, { type: "upsert_clause" }>, table: string): string[] | undefined {
  if (!u.conflictTarget) return undefined;
  const t = u.conflictTarget;
  const items =
    t.type === "paren_expr"
      ? (t.expr as Node).type === "list_expr"
        ? ((t.expr as Extract<Node, { type: "list_expr" }>).items as Node[])
        : [t.expr as Node]
      : [];
  return items.map((spec) => {
    const e = spec.type === "index_specification" && !spec.direction ? (spec.expr as Node) : spec;
    if (e.type === "identifier") return e.name.toLowerCase();
    const qualified = e.type === "member_expr" && (e.object as Node).type === "identifier" && (e.property as Node).type === "identifier";
    if (qualified && (e.object as { name: string }).name.toLowerCase() === table.toLowerCase()) return (e.property as { name: string }).name.toLowerCase();
    return "";
  });
}

function targetColumns(u: Extract<Node, { type: "upsert_clause" }>, table: string): string[] | undefined {
  const cols = conflictTargetColumns(u, table);
  if (cols?.includes("")) throw unsupported("VD1033", `ON CONFLICT DO UPDATE into ${table} with a conflict target other than its column names`);
  return cols;
}

/**
 * The UpsertSpec of an INSERT … VALUES … ON CONFLICT DO UPDATE into a table owning lookups, and
 * for each row the values of the local keys the target names (a key holding the vindex column
 * lives on the row's own shard, where the gate looks for its conflict).
 */
export function planUpsert(args: {
  readonly ps: ParsedStatement;
  readonly update: Extract<Node, { type: "upsert_clause" }>;
  readonly table: string;
  readonly info: TableInfo;
  readonly vindexColumn: string;
  readonly lookups: readonly LookupTable[];
  readonly cols: readonly string[];
  readonly head: Template;
}): { spec: UpsertSpec; localValues: (row: readonly Node[]) => (ValueExpr | "vindex" | undefined)[][] } {
  const { ps, update, table, info, lookups, cols, head } = args;
  const vcol = args.vindexColumn.toLowerCase();
  const target = targetColumns(update, table);
  const keys = uniqueConstraints(info.sql);
  const declaredUnique = (c: string) => keys.some((k) => k.columns.length === 1 && k.columns[0]?.toLowerCase() === c);
  const viaLookup = lookups.map((l) => l.unique && (target === undefined || sameSet(columnsOf(l), target)));
  lookups.forEach((l, i) => {
    // The shard finds the conflict by the key's own UNIQUE index; a lookup_unique vindex alone gives it none.
    if (viaLookup[i] && !l.system && !declaredUnique(l.column.toLowerCase())) {
      throw unsupported(
        "VD2411",
        `ON CONFLICT DO UPDATE into ${table} on ${l.column}, which is unique only through lookup vindex ${l.name} (declare ${l.column} UNIQUE in the table${target ? "" : ", or name the conflict target"})`,
      );
    }
  });
  const localKeys = keys
    .filter((k) => k.columns.some((c) => c.toLowerCase() === vcol))
    .map((k) => k.columns.map((c) => c.toLowerCase()))
    .filter((k) => target === undefined || sameSet(k, target));
  // The DO UPDATE must leave every lookup's columns as they are (their lookup rows stay); `c = excluded.c` on the target's own column does.
  const looked = new Set(lookups.flatMap(columnsOf));
  const set = update.action.type === "upsert_action_update" ? (update.action.set.assignments.items as Node[]) : [];
  for (const a of set) {
    if (a.type !== "column_assignment") continue;
    const assigned =
      a.column.type === "paren_expr"
        ? ((a.column.expr as Extract<Node, { type: "list_expr" }>).items as Node[]).map((c) => (c.type === "identifier" ? c.name.toLowerCase() : ""))
        : a.column.type === "identifier"
          ? [a.column.name.toLowerCase()]
          : [];
    for (const c of assigned) {
      if (!looked.has(c)) continue;
      const e = a.expr as Node;
      const same =
        a.column.type === "identifier" &&
        target?.includes(c) &&
        e.type === "member_expr" &&
        (e.object as Node).type === "identifier" &&
        (e.object as { name: string }).name.toLowerCase() === "excluded" &&
        (e.property as Node).type === "identifier" &&
        (e.property as { name: string }).name.toLowerCase() === c;
      if (!same) {
        throw unsupported(
          "VD2410",
          `ON CONFLICT DO UPDATE SET ${c} into ${table}: ${c} is in a keyspace-wide unique key or has a lookup vindex, which an upsert does not move (use UPDATE for it)`,
        );
      }
    }
  }
  const localValues = (row: readonly Node[]) => localValuesOf(ps, localKeys, vcol, cols, row, table);
  return { spec: { head, viaLookup, localKeys, targetless: target === undefined }, localValues };
}
