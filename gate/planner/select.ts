// SELECT on a sharded keyspace: one table, routed by its vindex. A statement confined to one
// shard goes through whole; otherwise the gate merges: MergeSort + Limit for ORDER BY / LIMIT,
// Aggregate for aggregates and GROUP BY. Anything it cannot merge exactly is UNSUPPORTED.

import type { Node, SelectStmt } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { Aggregate, type AggFn, type AggOutput } from "../engine/aggregate.ts";
import type { Collation, SortKey } from "../engine/compare.ts";
import { Compound, type SetOp } from "../engine/compound.ts";
import { Distinct } from "../engine/distinct.ts";
import { Subqueries } from "../engine/subqueries.ts";
import { bindSubqueries, pushableSubquery, subqueriesOf } from "./subqueries.ts";
import { compileHaving, type HavingOperand } from "./having.ts";
import { Limit } from "../engine/limit.ts";
import { MergeSort } from "../engine/merge-sort.ts";
import type { Primitive } from "../engine/primitive.ts";
import { PointRoute } from "../engine/point-route.ts";
import { Route } from "../engine/route.ts";
import { LOOKUP_SLOT, LookupResolve } from "../engine/lookup.ts";
import type { ValueExpr } from "../engine/values.ts";
import { limitNumber } from "../engine/limit-values.ts";
import { parseOne, rangeOf, walk, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate, type Edit, type Part } from "../sql/template.ts";
import {
  containsAggregate,
  declaredCollation,
  funcName,
  hasSubquery,
  hasWindow,
  isAggregateCall,
  kw,
  limitValues,
  selectItems,
  type SelectItem,
  orderTerms,
  splitCollate,
  type OrderTerm,
  tableRef,
  textOf,
  unsupported,
  valueExprOf,
  type TableRef,
} from "./ast.ts";
import { chooseRoute, isVindexColumnName, tableRouting, vindexRouteFields } from "./routing.ts";
import { analyzeJoin, colocated, colocatedRoute, planGateJoin } from "./join.ts";
import { Scope, throughCasts } from "./scope.ts";
import { scopedKey } from "./expr-key.ts";
import { withCtes } from "./cte.ts";
import { own } from "../../topology/own.ts";

type Clause = SelectStmt["clauses"][number];

function clause<T extends Clause["type"]>(s: SelectStmt, type: T): Extract<Clause, { type: T }> | undefined {
  return s.clauses.find((c) => c.type === type) as Extract<Clause, { type: T }> | undefined;
}

function sortTerms(s: SelectStmt): OrderTerm[] {
  return orderTerms(clause(s, "order_by_clause"));
}

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

type RouteBase = Omit<ConstructorParameters<typeof Route>[0], "template">;

/** A positive integer literal (`ORDER BY 2`, `GROUP BY 1`) is a position; `1.0` is a constant. */
function positionOf(ps: ParsedStatement, n: Node): number | undefined {
  if (n.type !== "number_literal" || !/^\d+$/.test(n.text)) return undefined;
  const v = valueExprOf(ps, n);
  return v && "literal" in v && typeof v.literal === "number" ? v.literal : undefined;
}

/** Number of output columns an item expands to (a `*` is every column of the tables it names). */
function itemWidth(scope: Scope, item: SelectItem): number {
  return item.star ? scope.star(item.node).length : 1;
}

function limitEdit(ps: ParsedStatement, s: SelectStmt): { edit: Edit; count: ValueExpr | null; offset: ValueExpr | null } | undefined {
  const lc = clause(s, "limit_clause");
  if (!lc) return undefined;
  const { count: c, offset: o } = limitValues(ps, lc);
  const [start, end] = rangeOf(lc);
  // Each shard returns its first count+offset rows; the gate skips offset after merging.
  const compute = (b: Parameters<typeof limitNumber>[1]): string => {
    const n = c ? limitNumber(c, b, "LIMIT") : -1;
    const off = o ? Math.max(0, limitNumber(o, b, "OFFSET")) : 0;
    return n < 0 ? "LIMIT -1" : `LIMIT ${n + off}`;
  };
  return { edit: { start, end, parts: [{ compute }] }, count: c, offset: o };
}

function planMergeSort(ps: ParsedStatement, s: SelectStmt, scope: Scope, items: SelectItem[], base: RouteBase, distinct: boolean): Primitive {
  const exprKeyOf = (n: Node): string => scopedKey(ps, scope, n);
  const terms = sortTerms(s);
  const widths = items.map((i) => itemWidth(scope, i));
  const visible = widths.reduce((a, b) => a + b, 0);
  const hiddenParts: Part[] = [];
  let hiddenCount = 0;
  /** The collation of output column `at`: of the select item (or table column under `*`) it shows. */
  const outputCollation = (at: number): Collation => {
    let start = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const w = widths[i] ?? 1;
      if (item && at < start + w) {
        if (!item.star) return scope.collation(item.expr);
        const c = scope.star(item.node)[at - start];
        return c ? declaredCollation(c.table.info?.sql, c.column, parseOne) : "BINARY";
      }
      start += w;
    }
    return "BINARY";
  };
  const keys: SortKey[] = terms.map((term) => {
    let column = -1;
    const pos = positionOf(ps, term.expr);
    if (pos !== undefined) {
      if (pos < 1 || pos > visible) {
        throw new VtError("INVALID_ARGUMENT", `ORDER BY term ${pos} is out of range (1..${visible})`);
      }
      column = pos - 1;
    } else if (term.expr.type === "identifier") {
      const name = term.expr.name.toLowerCase();
      let at = 0;
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item?.alias?.toLowerCase() === name) {
          column = at;
          break;
        }
        // Columns a `*` expands to are named like aliases (SQLite resolves ORDER BY id to them).
        const under = item?.star && !scope.single ? scope.star(item.node).findIndex((c) => c.column.toLowerCase() === name) : -1;
        if (under >= 0) {
          column = at + under;
          break;
        }
        at += widths[i] ?? 1;
      }
    }
    if (column < 0 && distinct) {
      // Rows are deduplicated on the selected columns only: the term must be one of them.
      const wanted = exprKeyOf(term.expr);
      let at = 0;
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item && !item.star && exprKeyOf(item.expr) === wanted) {
          column = at;
          break;
        }
        const r = item?.star ? scope.resolve(term.expr) : undefined;
        const under = r && item ? scope.star(item.node).findIndex((c) => c.table === r.table && c.column.toLowerCase() === r.column.toLowerCase()) : -1;
        if (under >= 0) {
          column = at + under;
          break;
        }
        at += widths[i] ?? 1;
      }
      if (column < 0) throw unsupported("VD1013", "SELECT DISTINCT ordered by a term that is not selected");
    }
    const collation = term.collation ?? (column >= 0 ? outputCollation(column) : scope.collation(term.expr));
    if (column < 0) {
      column = visible + hiddenCount;
      const [es, ee] = rangeOf(term.expr);
      hiddenParts.push(", ", ...sliceTemplate(ps, es, ee), ` AS _vtg_ord${hiddenCount}`);
      hiddenCount += 1;
    }
    return { column, desc: term.desc, nullsFirst: term.nullsFirst, collation };
  });
  const hidden = hiddenCount;
  const edits: Edit[] = [];
  const selectClause = clause(s, "select_clause");
  if (hiddenParts.length > 0 && selectClause?.columns) {
    const end = rangeOf(selectClause.columns)[1];
    edits.push({ start: end, end, parts: hiddenParts });
  }
  const lim = limitEdit(ps, s);
  if (lim) edits.push(lim.edit);
  const route = new Route({ ...base, template: sliceTemplate(ps, ps.range[0], ps.range[1], edits) });
  let plan: Primitive = keys.length > 0 ? new MergeSort(route, keys, hidden) : route;
  if (distinct)
    plan = new Distinct(
      plan,
      Array.from({ length: visible }, (_, i) => outputCollation(i)),
    );
  if (lim) plan = new Limit(plan, lim.count, lim.offset);
  return plan;
}

const PARTIAL: Record<string, Exclude<AggFn, "distinct">> = {
  count: "count",
  sum: "sum",
  total: "total",
  min: "min",
  max: "max",
  avg: "avg",
  group_concat: "group_concat",
};

function planAggregate(ps: ParsedStatement, s: SelectStmt, scope: Scope, items: SelectItem[], base: RouteBase): Primitive {
  const exprKeyOf = (n: Node): string => scopedKey(ps, scope, n);
  if (items.some((i) => i.star)) throw unsupported("VD1014", "* with aggregates");
  // GROUP BY terms, each resolved to an expression (positions and aliases name select items).
  const groupBy = clause(s, "group_by_clause");
  const groupExprs: Node[] = [];
  const isColumn = (name: string): boolean => scope.isColumn(name);
  for (const g of (groupBy?.columns.items ?? []) as Node[]) {
    const pos = positionOf(ps, g);
    if (pos !== undefined) {
      const item = items[pos - 1];
      if (!item) throw new VtError("INVALID_ARGUMENT", `GROUP BY term ${pos} is out of range`);
      groupExprs.push(item.expr);
      continue;
    }
    // In GROUP BY a table column wins over a result alias of the same name.
    const aliased = g.type === "identifier" && !isColumn(g.name) ? items.find((i) => i.alias?.toLowerCase() === g.name.toLowerCase()) : undefined;
    groupExprs.push(aliased && !containsAggregate(aliased.expr) ? aliased.expr : g);
  }
  if (groupExprs.some((g) => containsAggregate(g))) throw new VtError("INVALID_ARGUMENT", "aggregate functions are not allowed in GROUP BY");
  const groupKeys = groupExprs.map((g) => exprKeyOf(g));

  const shardCols: Part[][] = groupExprs.map((g) => sliceTemplate(ps, ...rangeOf(g)));
  const outputs: AggOutput[] = [];
  const columns: string[] = [];
  /** Adds the partial columns an aggregate call needs to the shard query; returns how to combine them. */
  const addAggregate = (e: Extract<Node, { type: "func_call" }>): AggOutput => {
    const name = funcName(e) ?? "";
    const fn = own(PARTIAL, name);
    if (!fn) throw unsupported("VD1015", `${name}() over several shards`);
    const fa = e.args?.expr;
    if (e.filter) throw unsupported("VD1016", "FILTER on aggregates");
    const args = fa?.type === "func_args" ? (fa.args.items as Node[]) : [];
    const argParts = args.length === 0 ? [] : sliceTemplate(ps, rangeOf(args[0] as Node)[0], rangeOf(args[args.length - 1] as Node)[1]);
    const isStar = args.length === 1 && args[0]?.type === "all_columns";
    if (fa?.type === "func_args" && fa.distinctKw) {
      const x = args[0];
      if (fn === "group_concat" || args.length !== 1 || !x || isStar) throw unsupported("VD1017", `${name}(DISTINCT …)`);
      // Shards group by x as well; every DISTINCT aggregate must be over that same x.
      const wanted = exprKeyOf(x);
      if (distinctArg !== undefined && distinctArg.key !== wanted) throw unsupported("VD1018", "DISTINCT aggregates over different expressions");
      if (!distinctArg) {
        shardCols.push(sliceTemplate(ps, ...rangeOf(x)), ["typeof(", ...sliceTemplate(ps, ...rangeOf(x)), ")"]);
        distinctArg = { key: wanted, node: x, column: shardCols.length - 2 };
      }
      return { kind: "agg", fn: "distinct", inner: fn, column: distinctArg.column, typeColumn: distinctArg.column + 1, collation: scope.collation(x) };
    }
    if (fn === "group_concat") {
      const sep = args[1];
      const separator = sep === undefined ? "," : sep.type === "string_literal" ? sep.value : undefined;
      if (separator === undefined || args.length > 2 || isStar) throw unsupported("VD1019", "group_concat with a separator other than a string literal");
      shardCols.push(["group_concat(", ...argParts, ")"]);
      return { kind: "agg", fn, column: shardCols.length - 1, separator };
    }
    if (fn === "sum" || fn === "total" || fn === "avg") {
      if (isStar || args.length !== 1) throw new VtError("INVALID_ARGUMENT", `wrong number of arguments to function ${name}()`);
      const at = shardCols.length;
      shardCols.push(...sumPartials(argParts));
      return {
        kind: "agg",
        fn,
        parts: {
          ints: [
            { column: at, shift: 32 },
            { column: at + 1, shift: 0 },
          ],
          rest: at + 2,
          restType: at + 3,
          count: at + 4,
        },
      };
    }
    if (fn === "min" || fn === "max") {
      shardCols.push([`${fn}(`, ...argParts, ")"]);
      const collation = args[0] ? scope.collation(args[0]) : "BINARY";
      return { kind: "agg", fn, column: shardCols.length - 1, collation };
    }
    if (fn !== "count") throw new VtError("INTERNAL", `no partial for ${fn}`);
    shardCols.push(isStar || args.length === 0 ? ["count(*)"] : ["count(", ...argParts, ")"]);
    return { kind: "agg", fn, column: shardCols.length - 1 };
  };
  let distinctArg: { key: string; node: Node; column: number } | undefined;
  for (const item of items) {
    // SQLite names a bare column reference by the column as declared, anything else by its text.
    const r = scope.resolve(item.expr);
    columns.push(item.alias ?? (r?.declared ? r.column : undefined) ?? textOf(ps, item.expr));
    const e = item.expr;
    if (isAggregateCall(e) && e.type === "func_call") {
      outputs.push(addAggregate(e));
      continue;
    }
    if (containsAggregate(e)) throw unsupported("VD1020", "an expression around an aggregate");
    const k = groupKeys.indexOf(exprKeyOf(e));
    if (k < 0) throw unsupported("VD1021", `a selected column that is not in GROUP BY (${textOf(ps, e)})`);
    outputs.push({ kind: "group", column: k });
  }

  /** An operand of a HAVING comparison: an aggregate, a grouped expression (or its alias), a literal or a placeholder. */
  const havingOperand = (n: Node): HavingOperand => {
    const v = valueExprOf(ps, n);
    if (v) return v;
    if (isAggregateCall(n) && n.type === "func_call") {
      const wanted = exprKeyOf(n);
      const same = items.findIndex((i) => exprKeyOf(i.expr) === wanted);
      if (same >= 0) return { column: same };
      outputs.push(addAggregate(n));
      return { column: outputs.length - 1 };
    }
    // A result alias names its item unless a table column has that name (the column wins).
    if (n.type === "identifier" && !isColumn(n.name)) {
      const aliased = items.findIndex((i) => i.alias?.toLowerCase() === n.name.toLowerCase());
      if (aliased >= 0 && containsAggregate((items[aliased] as SelectItem).expr)) return { column: aliased };
    }
    const wanted = exprKeyOf(n);
    let at = items.findIndex(
      (i) =>
        !containsAggregate(i.expr) &&
        (exprKeyOf(i.expr) === wanted || (n.type === "identifier" && !isColumn(n.name) && i.alias?.toLowerCase() === n.name.toLowerCase())),
    );
    const g = groupKeys.indexOf(at >= 0 ? exprKeyOf((items[at] as SelectItem).expr) : wanted);
    if (g < 0) throw unsupported("VD1022", `HAVING on ${textOf(ps, n)} (only aggregates, grouped expressions, literals and placeholders)`);
    if (at < 0) {
      outputs.push({ kind: "group", column: g });
      at = outputs.length - 1;
    }
    const item = items[at];
    const expr = item ? item.expr : n;
    const affinity = expr === throughCasts(expr) ? scope.affinity(expr) : undefined;
    return {
      column: at,
      collation: scope.collation(expr),
      ...(affinity ? { affinity } : {}),
    };
  };
  // HAVING, evaluated at the gate over the combined groups; its aggregates become hidden outputs.
  const visible = outputs.length;
  const havingClause = clause(s, "having_clause");
  const having = havingClause ? compileHaving(ps, havingClause.expr, havingOperand) : undefined;

  // Shard SQL: SELECT <group exprs>, <partials> FROM … WHERE … GROUP BY <group exprs>.
  const from = clause(s, "from_clause");
  const where = clause(s, "where_clause");
  if (!from) throw new VtError("INTERNAL", "aggregate without FROM");
  const restEnd = rangeOf(where ?? from)[1];
  const parts: Part[] = [...((ps.withPrefix ?? []) as Part[]), "SELECT "];
  shardCols.forEach((c, i) => {
    parts.push(...(i > 0 ? [", "] : []), ...c, ` AS _vtg_p${i}`);
  });
  parts.push(" ", ...sliceTemplate(ps, rangeOf(from)[0], restEnd));
  const shardGroups = distinctArg ? [...groupExprs, distinctArg.node] : groupExprs;
  if (shardGroups.length > 0) {
    parts.push(" GROUP BY ");
    shardGroups.forEach((g, i) => {
      parts.push(...(i > 0 ? [", "] : []), ...sliceTemplate(ps, ...rangeOf(g)));
    });
  }
  const collations = groupExprs.map((g) => scope.collation(splitCollate(g).expr, splitCollate(g).collation));

  // ORDER BY over the combined rows: positions, aliases, or expressions written as selected.
  const order: SortKey[] = sortTerms(s).map((term) => {
    let column = -1;
    const pos = positionOf(ps, term.expr);
    if (pos !== undefined) column = pos - 1;
    else {
      // A result alias wins over a column of the same name.
      const t = term.expr;
      if (t.type === "identifier") column = items.findIndex((i) => i.alias?.toLowerCase() === t.name.toLowerCase());
      const wanted = exprKeyOf(t);
      if (column < 0) column = items.findIndex((i) => exprKeyOf(i.expr) === wanted);
    }
    if (column < 0 || column >= items.length) throw unsupported("VD1023", "ORDER BY an expression that is not selected, with aggregates");
    const item = items[column];
    const collation = term.collation ?? (item ? scope.collation(item.expr) : "BINARY");
    return { column, desc: term.desc, nullsFirst: term.nullsFirst, collation };
  });
  const route = new Route({ ...base, template: parts });
  let plan: Primitive = new Aggregate(
    route,
    groupExprs.map((_, i) => i),
    collations,
    outputs,
    columns,
    order,
    having,
    visible,
  );
  const lim = limitEdit(ps, s);
  if (lim) plan = new Limit(plan, lim.count, lim.offset);
  return plan;
}

/**
 * The shard partials of sum / total / avg(x), combined by exact-sum.ts: the integer values' sum
 * as two halves that cannot overflow (x / 2^32 and x % 2^32, each summed: a shard holding
 * integers whose sum leaves 64 bits still answers), the sum of every other value with its
 * typeof() ('nan' when it was NaN), and count(x).
 */
function sumPartials(x: Part[]): Part[][] {
  const ints = (op: string): Part[] => ["sum(CASE WHEN typeof(", ...x, ") = 'integer' THEN (", ...x, `) ${op} 4294967296 END)`];
  const rest: Part[] = ["sum(CASE WHEN typeof(", ...x, ") <> 'integer' THEN (", ...x, ") END)"];
  // A NULL sum over some non-integer values is NaN (Inf + -Inf), which SQLite answers as NULL: 'nan' says so.
  const restType: Part[] = [
    "CASE WHEN ",
    ...rest,
    " IS NULL AND count(CASE WHEN typeof(",
    ...x,
    ") NOT IN ('integer', 'null') THEN 1 END) > 0 THEN 'nan' ELSE typeof(",
    ...rest,
    ") END",
  ];
  return [ints("/"), ints("%"), rest, restType, ["count(", ...x, ")"]];
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
