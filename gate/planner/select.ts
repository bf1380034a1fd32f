// SELECT on a sharded keyspace: one table, routed by its vindex. A statement confined to one
// shard goes through whole; otherwise the gate merges: MergeSort + Limit for ORDER BY / LIMIT,
// Aggregate for aggregates and GROUP BY (select-merge-sort.ts, select-aggregate.ts). Anything it
// cannot merge exactly is UNSUPPORTED.

import type { Node, SelectStmt } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { SortKey } from "../engine/compare.ts";
import { Compound, type SetOp } from "../engine/compound.ts";
import { Subqueries } from "../engine/subqueries.ts";
import { bindSubqueries, pushableSubquery, subqueriesOf } from "./subqueries.ts";
import { Limit } from "../engine/limit.ts";
import type { Primitive } from "../engine/primitive.ts";
import { PointRoute } from "../engine/point-route.ts";
import { Route } from "../engine/route.ts";
import { LOOKUP_SLOT, LookupResolve } from "../engine/lookup.ts";
import { rangeOf, walk, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate } from "../sql/template.ts";
import { containsAggregate, hasSubquery, hasWindow, kw, limitValues, selectItems, tableRef, unsupported, type TableRef } from "./ast.ts";
import { chooseRoute, isVindexColumnName, tableRouting, vindexRouteFields } from "./routing.ts";
import { analyzeJoin, colocated, colocatedRoute } from "./join.ts";
import { planGateJoin } from "./gate-join.ts";
import { Scope } from "./scope.ts";
import { withCtes } from "./cte.ts";
import { own } from "../../topology/own.ts";
import { clause, positionOf, sortTerms, type RouteBase } from "./select-parts.ts";
import { planAggregate } from "./select-aggregate.ts";
import { planMergeSort } from "./select-merge-sort.ts";

export function planSelect(ps: ParsedStatement, ks: KeyspaceGraph): Primitive {
  const s = ps.stmt;
  if (s.type === "compound_select_stmt") return planCompound(ps, s, ks);
  if (s.type !== "select_stmt") throw new VtError("INTERNAL", `planSelect got ${s.type}`);
  const withClause = clause(s, "with_clause");
  if (withClause && !ps.ctes) {
    const planned = withCtes(ps, s, withClause, ks);
    return planSelect(planned.ps, planned.ks);
  }
  const from = clause(s, "from_clause");
  const where = clause(s, "where_clause");
  const fullTemplate = sliceTemplate(ps, ps.range[0], ps.range[1]);

  if (ps.ctes && ps.ctes.length > 0) {
    const ctes = new Set(ps.ctes);
    for (const sub of subqueriesOf(withoutWith(s))) {
      walk(sub, (n) => {
        if (n.type === "identifier" && ctes.has(n.name.toLowerCase())) throw unsupported("VD1008", "a subquery reading a CTE");
      });
    }
  }
  if (!(ps.replacements?.length ?? 0) && !ps.subqueriesKept && hasSubquery(withoutWith(s))) {
    // Correlated subqueries co-located with the outer rows run on the shards as written.
    const keep = keepSubquery(ks, from?.expr as Node | undefined, where?.expr);
    if (keep && subqueriesOf(withoutWith(s)).every(keep)) return planSelect({ ...ps, subqueriesKept: true }, ks);
    // Uncorrelated subqueries run first and are bound in; then the statement plans as usual.
    const outer = from ? outerTables(ks, from.expr as Node) : [];
    const bound = bindSubqueries(ps, ks, outer, (sub) => planSelect(sub, ks), keep);
    return new Subqueries(bound.subs, planSelect(bound.ps, ks));
  }
  if (!from) {
    // No table: any one shard computes it.
    return new Route({ opcode: "reference", table: null, template: fullTemplate, kind: "read" });
  }
  if (from.expr.type === "join_expr") {
    const j = analyzeJoin(ks, from.expr as Node, where?.expr);
    if (!colocated(j.steps, j.scope, j.where)) return planGateJoin(ps, s, j);
    const { step, choice } = colocatedRoute(ps, j);
    if (!step) return new Route({ opcode: choice.opcode, table: j.steps[0]?.table.ref.name ?? null, template: fullTemplate, kind: "read" });
    const base = { opcode: choice.opcode, table: step.table.ref.name, kind: "read" as const, ...vindexRouteFields(step.routing, choice.values) };
    if (choice.opcode === "equal") {
      return new PointRoute(new Route({ ...base, template: fullTemplate }), () => planMerged(ps, s, j.scope, base));
    }
    return planMerged(ps, s, j.scope, base);
  }
  const t = tableRef(from.expr as Node);
  const scope = new Scope(ks, [t]);
  const routing = tableRouting(ks, t.name);
  const choice = chooseRoute(ps, where?.expr, t, routing);
  if (choice.lookup) {
    // A lookup vindex names the shards at execution; a unique one with one value names at most one.
    const base = { opcode: "in" as const, table: t.name, kind: "read" as const, ksidSlot: LOOKUP_SLOT };
    const inner = choice.lookup.unique && choice.values?.length === 1 ? new Route({ ...base, template: fullTemplate }) : planMerged(ps, s, scope, base);
    return new LookupResolve(choice.lookup, choice.values ?? [], inner);
  }
  if (choice.opcode === "reference" || choice.opcode === "unsharded") {
    return new Route({ opcode: choice.opcode, table: t.name, template: fullTemplate, kind: "read" });
  }
  const base = { opcode: choice.opcode, table: t.name, kind: "read" as const, ...vindexRouteFields(routing, choice.values) };
  if (choice.opcode === "equal") {
    return new PointRoute(new Route({ ...base, template: fullTemplate }), () => planMerged(ps, s, scope, base));
  }
  return planMerged(ps, s, scope, base);
}

/** The tables of a FROM clause (for telling correlated subqueries apart); a subquery in FROM is refused. */
function outerTables(ks: KeyspaceGraph, fromExpr: Node): TableRef[] {
  try {
    return analyzeJoin(ks, fromExpr, undefined).steps.map((st) => st.table.ref);
  } catch (e) {
    if (fromExpr.type === "paren_expr" || hasSubquery(fromExpr)) throw unsupported("VD1009", "a subquery in FROM");
    throw e;
  }
}

/** Which subqueries can stay in the statement (see pushableSubquery), or undefined when none can: the outer tables must be co-located. */
export function keepSubquery(
  ks: KeyspaceGraph,
  fromExpr: Node | undefined,
  where: Node | undefined,
): ((sub: Parameters<typeof pushableSubquery>[0]) => boolean) | undefined {
  if (!fromExpr || !ks.sharded) return undefined;
  let j: ReturnType<typeof analyzeJoin>;
  try {
    j = analyzeJoin(ks, fromExpr, where);
  } catch {
    return undefined;
  }
  if (!colocated(j.steps, j.scope, j.where)) return undefined;
  return (sub) => pushableSubquery(sub, j.scope, ks);
}

/** The statement without its WITH clause (whose CTE bodies are not subqueries). */
export function withoutWith(s: SelectStmt): SelectStmt {
  return { ...s, clauses: s.clauses.filter((c) => c.type !== "with_clause") };
}

/** Several shards answer: the gate must merge. */
function planMerged(ps: ParsedStatement, s: SelectStmt, scope: Scope, base: RouteBase): Primitive {
  const selectClause = clause(s, "select_clause");
  const distinct = selectClause?.modifiers.some((m) => m.type === "select_distinct") ?? false;
  const items = selectItems(s);
  const grouped = clause(s, "group_by_clause") !== undefined || items.some((i) => containsAggregate(i.expr));
  if (hasWindow(s)) {
    // A window partitioned by the vindex column sees whole partitions on each shard.
    const refused = windowRefusal(s, scope);
    if (refused) throw unsupported("VD1010", refused);
    if (grouped) throw unsupported("VD1011", "window functions with aggregates or GROUP BY over several shards");
  }
  if (grouped) {
    if (distinct) throw unsupported("VD1012", "SELECT DISTINCT with aggregates");
    return planAggregate(ps, s, scope, items, base);
  }
  return planMergeSort(ps, s, scope, items, base, distinct);
}

/** Why the window functions of `s` cannot run per shard, or undefined when each is partitioned by a vindex column. */
function windowRefusal(s: SelectStmt, scope: Scope): string | undefined {
  let why: string | undefined;
  const vindexColumn = (n: Node): boolean => {
    const r = scope.resolve(n);
    if (!r?.declared) return false;
    const routing = tableRouting(scope.ks, r.table.ref.name);
    // The right side of a LEFT JOIN reads NULL for unmatched rows of every shard: one partition across shards.
    return !scope.nullable.has(r.table) && routing.routable !== false && isVindexColumnName(routing, r.column);
  };
  walk(s, (n) => {
    if (why || n.type !== "func_call" || !n.over) return;
    const w = n.over.window;
    const def = w.type === "paren_expr" ? (w.expr as Node) : undefined;
    if (def?.type !== "window_definition" || def.baseWindowName) {
      why = "named windows (WINDOW … AS) over several shards";
      return;
    }
    const parts = (def.partitionBy?.specifications.items ?? []) as Node[];
    if (!parts.some(vindexColumn)) why = "window functions over several shards unless PARTITION BY includes the vindex column";
  });
  return why;
}

const SET_OPS: Record<string, SetOp> = { "UNION ALL": "union all", UNION: "union", INTERSECT: "intersect", EXCEPT: "except" };

/**
 * A compound SELECT: each branch planned alone, combined at the gate. The parser hangs the
 * compound's own ORDER BY / LIMIT on the last branch; they are taken off it and applied to the
 * combined rows.
 */
function planCompound(ps: ParsedStatement, s: Extract<Node, { type: "compound_select_stmt" }>, ks: KeyspaceGraph): Primitive {
  const branches: SelectStmt[] = [];
  const ops: SetOp[] = [];
  const flatten = (n: Node): void => {
    if (n.type === "compound_select_stmt") {
      flatten(n.left);
      const op = SET_OPS[kw(n.operator)];
      if (!op) throw unsupported("VD1024", `${kw(n.operator)}`);
      ops.push(op);
      flatten(n.right);
    } else if (n.type === "select_stmt") branches.push(n);
    else throw unsupported("VD1025", `a ${n.type.replaceAll("_", " ")} inside a compound SELECT`);
  };
  flatten(s);
  let withInside = false;
  walk(s, (n) => {
    if (n.type === "with_clause") withInside = true;
  });
  if (withInside) throw unsupported("VD1026", "WITH in a compound SELECT");
  const last = branches[branches.length - 1];
  if (!last) throw new VtError("INTERNAL", "compound SELECT without branches");
  const orderBy = clause(last, "order_by_clause");
  const limit = clause(last, "limit_clause");
  const tail = orderBy ?? limit;
  const plans = branches.map((b) => {
    if (b !== last || !tail) return planSelect({ ...ps, stmt: b, range: rangeOf(b) }, ks);
    const stmt: SelectStmt = { ...b, clauses: b.clauses.filter((c) => c !== orderBy && c !== limit) };
    let end = rangeOf(tail)[0];
    while (end > 0 && /\s/.test(ps.text[end - 1] ?? "")) end--;
    return planSelect({ ...ps, stmt, range: [rangeOf(b)[0], end] }, ks);
  });
  // Set operators and ORDER BY compare values: only BINARY columns are safe to compare here.
  if (ops.some((o) => o !== "union all") || orderBy) {
    for (const b of branches) {
      const from = clause(b, "from_clause");
      const names = from ? analyzeJoin(ks, from.expr as Node, undefined).steps.map((st) => st.table.ref.name) : [];
      const sql = names.map((name) => own(ks.tables, name.toLowerCase())?.sql ?? "").join("\n");
      if (/\bCOLLATE\b/i.test(sql))
        throw unsupported(
          "VD1027",
          `${ops.find((o) => o !== "union all")?.toUpperCase() ?? "ORDER BY"} over a table with declared collations in a compound SELECT`,
        );
    }
  }
  const firstItems = selectItems(branches[0] as SelectStmt);
  const width = firstItems.some((i) => i.star) ? -1 : firstItems.length;
  const order: SortKey[] = (orderBy ? sortTerms(last) : []).map((term) => {
    let column = positionOf(ps, term.expr) ?? 0;
    if (column === 0 && term.expr.type === "identifier") {
      const name = term.expr.name.toLowerCase();
      column = firstItems.findIndex((i) => (i.alias ?? (i.expr.type === "identifier" ? i.expr.name : "")).toLowerCase() === name) + 1;
    }
    if (column < 1 || (width >= 0 && column > width)) throw unsupported("VD1028", "ORDER BY of a compound SELECT other than by position or result column name");
    return { column: column - 1, desc: term.desc, nullsFirst: term.nullsFirst, collation: term.collation ?? "BINARY" };
  });
  // Declared collations were refused above, so every column compares as BINARY.
  let plan: Primitive = new Compound(plans, ops, [], order);
  if (limit) {
    const { count, offset } = limitValues(ps, limit);
    plan = new Limit(plan, count, offset);
  }
  return plan;
}
