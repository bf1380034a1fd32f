// UPDATE / DELETE on a sharded keyspace: one table, rows found by its vindexes.

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { LOOKUP_SLOT, LookupResolve, OwnedDelete, preDeleteColumns } from "../engine/lookup.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import type { Primitive } from "../engine/primitive.ts";
import { Route } from "../engine/route.ts";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate } from "../sql/template.ts";
import { hasSubquery, kw, tableRef, unsupported } from "./ast.ts";
import { chooseRoute, tableRouting, vindexRouteFields } from "./routing.ts";
import { Subqueries } from "../engine/subqueries.ts";
import { keepSubquery, planSelect } from "./select.ts";
import { bindSubqueries, subqueriesOf } from "./subqueries.ts";
import { lookupUpdate } from "./lookup-update.ts";
import { OwnedUpdate } from "../engine/owned-update.ts";

import { planReferenceWrite } from "./reference-write.ts";

export function planUpdateDelete(ps: ParsedStatement, ks: KeyspaceGraph): Primitive {
  const s = ps.stmt;
  let tableNode: Node | undefined;
  let where: Node | undefined;
  if (s.type === "update_stmt") {
    for (const c of s.clauses) {
      if (c.type === "update_clause") {
        if (c.tables.items.length !== 1) throw unsupported("VD1043", "UPDATE of several tables");
        tableNode = c.tables.items[0] as Node;
      }
      if (c.type === "from_clause") throw unsupported("VD1044", "UPDATE … FROM");
      if (c.type === "where_clause") where = c.expr;
    }
  } else if (s.type === "delete_stmt") {
    for (const c of s.clauses) {
      if (c.type === "delete_clause") {
        if (c.tables.items.length !== 1) throw unsupported("VD1045", "DELETE from several tables");
        tableNode = c.tables.items[0] as Node;
      }
      if (c.type === "where_clause") where = c.expr;
    }
  } else {
    throw new VtError("INTERNAL", `planUpdateDelete got ${s.type}`);
  }
  if (!tableNode) throw new VtError("INTERNAL", "UPDATE/DELETE without a table");
  const t = tableRef(tableNode);
  const routing = tableRouting(ks, t.name);
  const full = sliceTemplate(ps, ps.range[0], ps.range[1]);
  if (routing.kind === "unsharded") return new Route({ opcode: "unsharded", table: t.name, template: full, kind: "write" });
  if (routing.kind === "reference") return planReferenceWrite(ps, ks, t.name, "write");
  if (!(ps.replacements?.length ?? 0) && hasSubquery(s)) {
    const keep = keepSubquery(ks, tableNode, where);
    if (!(keep && subqueriesOf(s).every(keep))) {
      const bound = bindSubqueries(ps, ks, [t], (sub) => planSelect(sub, ks), keep);
      return new Subqueries(bound.subs, planUpdateDelete(bound.ps, ks));
    }
  }
  if (s.type === "update_stmt") {
    const set = s.clauses.find((c) => c.type === "set_clause");
    const vcol = (routing.column ?? "").toLowerCase();
    for (const a of (set?.type === "set_clause" ? set.assignments.items : []) as Node[]) {
      const cols: Node[] =
        a.type === "column_assignment"
          ? a.column.type === "paren_expr"
            ? ((a.column.expr as Extract<Node, { type: "list_expr" }>).items as Node[])
            : [a.column]
          : [];
      if (cols.some((c) => c.type === "identifier" && c.name.toLowerCase() === vcol)) {
        throw unsupported("VD1046", `UPDATE of the vindex column ${routing.column} (it would move the row to another shard)`);
      }
    }
  }
  const choice = chooseRoute(ps, where, t, routing);
  // Even a point write may run on every shard (a value the vindex cannot route), where a
  // per-shard ORDER BY / LIMIT would be wrong.
  for (const c of s.clauses as Node[]) {
    if (c.type === "order_by_clause" || c.type === "limit_clause")
      throw unsupported("VD1048", `${kw(s.type === "update_stmt" ? "UPDATE" : "DELETE")} with ORDER BY / LIMIT`);
  }
  const route = choice.lookup
    ? new Route({ opcode: "in", table: t.name, template: full, kind: "write", ksidSlot: LOOKUP_SLOT })
    : new Route({ opcode: choice.opcode, table: t.name, template: full, kind: "write", ...vindexRouteFields(routing, choice.values) });
  let plan: Primitive = route;
  const lookups = routing.lookups ?? [];
  if (s.type === "delete_stmt" && lookups.length > 0 && routing.vindex) {
    // Read what is deleted (in the same shard transaction) so its lookup rows can go after it.
    const cols = preDeleteColumns(routing.column ?? "", lookups)
      .map(quoteIdent)
      .join(", ");
    const pre = [
      "SELECT ",
      cols,
      " FROM ",
      ...sliceTemplate(ps, ...rangeOf(tableNode)),
      ...(where ? [" WHERE ", ...sliceTemplate(ps, ...rangeOf(where))] : []),
    ];
    plan = new OwnedDelete(route, pre, routing.vindex, lookups);
  }
  if (s.type === "update_stmt" && lookups.length > 0 && routing.vindex && routing.column) {
    // Lookup rows move with the values the SET gives their columns.
    const moving = lookupUpdate(ps, s, tableNode, where, t.name, routing.column, lookups);
    if (moving) plan = new OwnedUpdate(route, moving.pre, t.name, routing.vindex, routing.column, moving.moved);
  }
  return choice.lookup ? new LookupResolve(choice.lookup, choice.values ?? [], plan) : plan;
}
