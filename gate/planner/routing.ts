// Which shards a WHERE clause confines a single-table statement to, by its primary vindex.

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { tableVSchema, vindexOf } from "../../topology/vschema.ts";
import type { Vindex } from "../../topology/vindex.ts";
import type { RouteOpcode } from "../engine/route.ts";
import { affinityOf, type Affinity, type ValueExpr } from "../engine/values.ts";
import type { LookupTable } from "../engine/lookup.ts";
import { parseOne, type ParsedStatement } from "../sql/parse.ts";
import { columnOf, conjuncts, declaredCollation, isRealLiteral, kw, valueExprOf, type TableRef } from "./ast.ts";
import { own } from "../../topology/own.ts";
import { systemLookups, type UniqueConstraint } from "./unique-keys.ts";

export interface TableRouting {
  readonly kind: "sharded" | "reference" | "unsharded";
  /** Secondary lookup vindexes (owned by this table). */
  readonly lookups?: readonly (LookupTable & { readonly routable: boolean; readonly key?: UniqueConstraint })[];
  readonly vindex?: Vindex;
  /** The vindex's name in the vschema: tables sharded by the same name place equal values together. */
  readonly vindexName?: string;
  readonly column?: string;
  /** Other columns always equal to the vindex column (a CTE selecting it under several names). */
  readonly sameAs?: readonly string[];
  readonly affinity?: Affinity;
  /** False when the vindex column has a non-BINARY collation: equal values may hash apart. */
  readonly routable?: boolean;
  /** Keyspace-wide unique keys whose system lookup table does not exist (writes refuse them). */
  readonly missingKeys?: readonly UniqueConstraint[];
}

/** The Route fields that let a route use the vindex. */
export function vindexRouteFields(routing: TableRouting, values: readonly ValueExpr[] | undefined) {
  if (!routing.vindex || !values) return {};
  return {
    vindex: routing.vindex,
    values,
    ...(routing.affinity ? { affinity: routing.affinity } : {}),
    ...(routing.routable === false ? { routable: false } : {}),
  };
}

/** How a table is placed: by its primary vindex, copied everywhere (reference), or unsharded. */
export function tableRouting(ks: KeyspaceGraph, table: string): TableRouting {
  if (!ks.sharded) return { kind: "unsharded" };
  const t = tableVSchema(ks.vschema, table);
  if (!t) {
    throw new VtError("INVALID_ARGUMENT", `table ${table} has no entry in the vschema of sharded keyspace ${ks.name}; add one with \`vtctl vschema apply\``);
  }
  if (t.type === "reference") return { kind: "reference" };
  const cv = t.column_vindexes?.[0];
  if (!cv) throw new VtError("INVALID_ARGUMENT", `table ${table} has no primary vindex in the vschema`);
  const info = own(ks.tables, table.toLowerCase());
  const col = info?.columns.find((c) => c.name.toLowerCase() === cv.column.toLowerCase());
  const affinity = affinityOf(col?.type ?? "");
  const vindex = vindexOf(ks.vschema, cv.name);
  // unicode_loose_xxhash folds case and trailing spaces, so NOCASE/RTRIM-equal values hash alike.
  const routable = declaredCollation(info?.sql, cv.column, parseOne) === "BINARY" || vindex.type === "unicode_loose_xxhash";
  // A secondary entry on the primary vindex names the same column again (only CTEs, see cte.ts, build these).
  const sameAs = (t.column_vindexes ?? [])
    .slice(1)
    .filter((lv) => lv.name === cv.name)
    .map((lv) => lv.column);
  const lookups = (t.column_vindexes ?? [])
    .slice(1)
    .filter((lv) => lv.name !== cv.name)
    .map((lv) => {
      const lv2 = vindexOf(ks.vschema, lv.name);
      const lp = lv2.lookup;
      if (!lp) throw new VtError("INVALID_ARGUMENT", `vindex ${lv.name} of table ${table} is not a lookup vindex`);
      const dot = lp.table.indexOf(".");
      return {
        name: lv.name,
        keyspace: dot > 0 ? lp.table.slice(0, dot) : ks.name,
        table: dot > 0 ? lp.table.slice(dot + 1) : lp.table,
        from: lp.from,
        to: lp.to,
        unique: lv2.unique,
        column: lv.column,
        // Equal values under NOCASE / RTRIM would have different lookup rows: such a column is not routed by its lookup.
        routable: declaredCollation(info?.sql, lv.column, parseOne) === "BINARY",
      };
    });
  const system = systemLookups(ks, table, info, cv.column, t);
  const all = [...lookups, ...system.lookups];
  return {
    kind: "sharded",
    vindex,
    vindexName: cv.name,
    column: cv.column,
    affinity,
    routable,
    ...(all.length > 0 ? { lookups: all } : {}),
    ...(sameAs.length > 0 ? { sameAs } : {}),
    ...(system.missing.length > 0 ? { missingKeys: system.missing } : {}),
  };
}

/** True when `column` is the table's vindex column (or a name always equal to it). */
export function isVindexColumnName(routing: TableRouting, column: string): boolean {
  if (routing.kind !== "sharded") return false;
  const l = column.toLowerCase();
  return routing.column?.toLowerCase() === l || (routing.sameAs ?? []).some((c) => c.toLowerCase() === l);
}

export interface RouteChoice {
  readonly opcode: RouteOpcode;
  readonly values?: readonly ValueExpr[];
  /** Set when a lookup vindex picks the shards (opcode "in", values are the lookup column's). */
  readonly lookup?: LookupTable;
}

/** equal on `vcol = value`, in on `vcol IN (values)`, else scatter. */
export function chooseRoute(ps: ParsedStatement, where: Node | undefined, t: TableRef, routing: TableRouting): RouteChoice {
  const list = where ? conjuncts(where) : [];
  const primary = chooseRouteBy(
    ps,
    list,
    (n) => {
      const c = columnOf(n, t);
      return c !== undefined && isVindexColumnName(routing, c);
    },
    routing,
  );
  if (primary.opcode !== "scatter") return primary;
  // No primary vindex value: a lookup vindex on another column may still pick the shards.
  for (const l of routing.lookups ?? []) {
    if (!l.routable) continue;
    const c = chooseRouteBy(ps, list, (n) => columnOf(n, t)?.toLowerCase() === l.column.toLowerCase(), routing);
    if (c.opcode === "equal" || c.opcode === "in") return { opcode: "in", values: c.values ?? [], lookup: l };
  }
  return primary;
}

/** As chooseRoute, over WHERE conjuncts, with `isVindexColumn` telling which expressions are the vindex column. */
export function chooseRouteBy(ps: ParsedStatement, where: readonly Node[], isVindexColumn: (n: Node) => boolean, routing: TableRouting): RouteChoice {
  if (routing.kind === "unsharded") return { opcode: "unsharded" };
  if (routing.kind === "reference") return { opcode: "reference" };
  let inChoice: RouteChoice | undefined;
  for (const c of where) {
    if (c.type !== "binary_expr") continue;
    const op = kw(c.operator);
    if (op === "=" || op === "==" || op === "IS") {
      for (const [a, b] of [
        [c.left, c.right],
        [c.right, c.left],
      ] as const) {
        // A REAL literal routes nowhere: the vindex would see the integer it equals in JavaScript,
        // while a TEXT column compares its text (ast.ts isRealLiteral). Every shard checks instead.
        if (!isVindexColumn(a) || isRealLiteral(b)) continue;
        const v = valueExprOf(ps, b);
        if (v && !(op === "IS" && "literal" in v && v.literal === null)) return { opcode: "equal", values: [v] };
      }
    } else if (op === "IN" && !inChoice && isVindexColumn(c.left) && c.right.type === "paren_expr") {
      const inner = c.right.expr as Node;
      const items = inner.type === "list_expr" ? (inner.items as Node[]) : [inner];
      const values = items.map((i) => (isRealLiteral(i) ? undefined : valueExprOf(ps, i)));
      if (values.every((v): v is ValueExpr => v !== undefined)) inChoice = { opcode: "in", values };
    }
  }
  return inChoice ?? { opcode: "scatter" };
}
