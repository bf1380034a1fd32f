// Aggregates and GROUP BY over a scatter: each shard answers partials (count, exact sum halves,
// min, max, …) grouped as the statement groups, and Aggregate combines them exactly at the gate.

import type { Node, SelectStmt } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import { Aggregate, type AggFn, type AggOutput } from "../engine/aggregate.ts";
import type { SortKey } from "../engine/compare.ts";
import { compileHaving, type HavingOperand } from "./having.ts";
import { Limit } from "../engine/limit.ts";
import type { Primitive } from "../engine/primitive.ts";
import { Route } from "../engine/route.ts";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate, type Part } from "../sql/template.ts";
import { containsAggregate, funcName, isAggregateCall, type SelectItem, splitCollate, textOf, unsupported, valueExprOf } from "./ast.ts";
import { type Scope, throughCasts } from "./scope.ts";
import { scopedKey } from "./expr-key.ts";
import { own } from "../../topology/own.ts";
import { clause, limitEdit, positionOf, sortTerms, type RouteBase } from "./select-parts.ts";

const PARTIAL: Record<string, Exclude<AggFn, "distinct">> = {
  count: "count",
  sum: "sum",
  total: "total",
  min: "min",
  max: "max",
  avg: "avg",
  group_concat: "group_concat",
};

export function planAggregate(ps: ParsedStatement, s: SelectStmt, scope: Scope, items: SelectItem[], base: RouteBase): Primitive {
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
