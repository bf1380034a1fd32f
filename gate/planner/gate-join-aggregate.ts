// Aggregates over a gate join (gate-join.ts): every joined row becomes a one-row partial, and
// Aggregate combines the partials exactly as it combines shards'.

import type { Node, SelectStmt } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { SortKey } from "../engine/compare.ts";
import { Partials, type PartialFn } from "../engine/join.ts";
import { Aggregate, type AggOutput } from "../engine/aggregate.ts";
import { compileHaving, type HavingOperand } from "./having.ts";
import type { Primitive } from "../engine/primitive.ts";
import type { ParsedStatement } from "../sql/parse.ts";
import type { Part } from "../sql/template.ts";
import { containsAggregate, funcName, isAggregateCall, orderTerms, selectItems, splitCollate, textOf, unsupported, valueExprOf } from "./ast.ts";
import type { Scope, ResolvedColumn, ScopeTable } from "./scope.ts";
import { scopedKey } from "./expr-key.ts";
import { columnSql } from "./join.ts";

const JOIN_AGGREGATES = new Set(["count", "sum", "total", "min", "max", "avg", "group_concat"]);

/**
 * Aggregates over a gate join: GROUP BY plain columns, aggregates of plain columns (or `*`).
 * Each group's query adds the columns (and typeof() of summed ones, since 2.0 arrives as 2);
 * Partials turns every joined row into a one-row partial, and Aggregate combines them exactly as
 * it combines shards' partials.
 */
export function planGateAggregate(
  ps: ParsedStatement,
  s: SelectStmt,
  scope: Scope,
  groupOf: ReadonlyMap<ScopeTable, number>,
  addCol: (g: number, parts: Part[]) => number,
  buildJoin: () => { plan: Primitive; offsets: number[] },
  note: string,
): Primitive {
  const clauses = s.clauses as Node[];
  const select = clauses.find((c) => c.type === "select_clause") as Extract<Node, { type: "select_clause" }> | undefined;
  if (select?.modifiers.some((m) => m.type === "select_distinct")) throw unsupported("VD1012", "SELECT DISTINCT with aggregates");
  const exprKeyOf = (n: Node): string => scopedKey(ps, scope, n);
  const items = selectItems(s);
  if (items.some((i) => i.star)) throw unsupported("VD1014", "* with aggregates");
  const plain = (n: Node, what: string): ResolvedColumn => {
    const r = scope.resolve(n);
    if (!r?.declared) throw unsupported("VD1075", `${what} other than a plain column, over ${note}`);
    return r;
  };
  type Ref = [number, number];
  const valueRef = (r: ResolvedColumn): Ref => {
    const g = groupOf.get(r.table) as number;
    return [g, addCol(g, [columnSql(r)])];
  };
  const typeRef = (r: ResolvedColumn): Ref => {
    const g = groupOf.get(r.table) as number;
    return [g, addCol(g, ["typeof(", columnSql(r), ")"])];
  };
  /** Partial columns, resolved to joined-row columns once the join's layout is known. */
  const partials: ((at: (r: Ref) => number) => PartialFn)[] = [];
  const push = (f: (at: (r: Ref) => number) => PartialFn): number => partials.push(f) - 1;

  // GROUP BY terms: positions and aliases name select items; each must be a plain column.
  const gb = clauses.find((c) => c.type === "group_by_clause") as Extract<Node, { type: "group_by_clause" }> | undefined;
  const groupTerms = ((gb?.columns.items ?? []) as Node[]).map((g) => {
    const pos = g.type === "number_literal" && /^\d+$/.test(g.text) ? Number(g.text) : undefined;
    if (pos !== undefined) {
      const item = items[pos - 1];
      if (!item) throw new VtError("INVALID_ARGUMENT", `GROUP BY term ${pos} is out of range`);
      return item.expr;
    }
    if (g.type === "identifier" && !scope.isColumn(g.name)) {
      const aliased = items.find((i) => i.alias?.toLowerCase() === g.name.toLowerCase());
      if (aliased) return aliased.expr;
    }
    return g;
  });
  const groupCols = groupTerms.map((g) => {
    const { expr, collation } = splitCollate(g);
    const r = plain(expr, "GROUP BY");
    const ref = valueRef(r);
    push((at) => ({ kind: "value", column: at(ref) }));
    return { r, collation: scope.collation(expr, collation) };
  });

  const outputs: AggOutput[] = [];
  const names: string[] = [];
  /** The output of one aggregate call, adding the partial columns it needs. */
  const aggregateOutput = (e: Extract<Node, { type: "func_call" }>): AggOutput => {
    const name = funcName(e) ?? "";
    if (!JOIN_AGGREGATES.has(name)) throw unsupported("VD1076", `${name}() over ${note}`);
    if (e.filter) throw unsupported("VD1016", "FILTER on aggregates");
    const fa = e.args?.expr;
    const args = fa?.type === "func_args" ? (fa.args.items as Node[]) : [];
    const star = args.length === 0 || (args.length === 1 && args[0]?.type === "all_columns");
    if (star) {
      if (name !== "count") throw unsupported("VD1077", `${name}(*)`);
      return { kind: "agg", fn: "count", column: push(() => ({ kind: "one" })) };
    }
    const x = plain(args[0] as Node, `the argument of ${name}()`);
    const v = valueRef(x);
    if (fa?.type === "func_args" && fa.distinctKw) {
      if (name === "group_concat" || args.length !== 1) throw unsupported("VD1017", `${name}(DISTINCT …)`);
      const t = typeRef(x);
      const column = push((at) => ({ kind: "value", column: at(v) }));
      const typeColumn = push((at) => ({ kind: "type", column: at(t) }));
      return {
        kind: "agg",
        fn: "distinct",
        inner: name as "count" | "sum" | "total" | "avg" | "min" | "max",
        column,
        typeColumn,
        collation: scope.collation(args[0] as Node),
      };
    }
    if (args.length > 1 && name !== "group_concat") throw unsupported("VD1078", `${name}() with several arguments`);
    switch (name) {
      case "count":
        return { kind: "agg", fn: "count", column: push((at) => ({ kind: "notNull", column: at(v) })) };
      case "min":
      case "max":
        return { kind: "agg", fn: name, column: push((at) => ({ kind: "value", column: at(v) })), collation: scope.collation(args[0] as Node) };
      case "sum":
      case "total":
      case "avg": {
        // Each joined row is a one-value partial: an integer goes to the exact part, a REAL to the rest.
        const t = typeRef(x);
        const what = `${name}()`;
        const ints = [{ column: push((at) => ({ kind: "integer", column: at(v), typeColumn: at(t) })), shift: 0 }];
        const rest = push((at) => ({ kind: "nonInteger", column: at(v), typeColumn: at(t), what }));
        const restType = push((at) => ({ kind: "type", column: at(t) }));
        const count = push((at) => ({ kind: "notNull", column: at(v) }));
        return { kind: "agg", fn: name, parts: { ints, rest, restType, count } };
      }
      default: {
        const sep = args[1];
        const separator = sep === undefined ? "," : sep.type === "string_literal" ? sep.value : undefined;
        if (separator === undefined || args.length > 2) throw unsupported("VD1019", "group_concat with a separator other than a string literal");
        const t = typeRef(x);
        return { kind: "agg", fn: "group_concat", column: push((at) => ({ kind: "text", column: at(v), typeColumn: at(t) })), separator };
      }
    }
  };
  for (const item of items) {
    const e = item.expr;
    const r0 = scope.resolve(e);
    names.push(item.alias ?? (r0?.declared ? r0.column : undefined) ?? textOf(ps, e));
    if (!isAggregateCall(e) || e.type !== "func_call") {
      if (containsAggregate(e)) throw unsupported("VD1079", `an expression around an aggregate, over ${note}`);
      const r = plain(e, "a selected expression");
      const k = groupCols.findIndex((g) => g.r.table === r.table && g.r.column === r.column);
      if (k < 0) throw unsupported("VD1021", `a selected column that is not in GROUP BY (${textOf(ps, e)})`);
      outputs.push({ kind: "group", column: k });
      continue;
    }
    outputs.push(aggregateOutput(e));
  }
  const visible = outputs.length;

  // HAVING over the combined groups: comparisons of aggregates, grouped columns, literals and placeholders.
  const operand = (n: Node): HavingOperand => {
    const v = valueExprOf(ps, n);
    if (v) return v;
    if (isAggregateCall(n) && n.type === "func_call") {
      const same = items.findIndex((i) => exprKeyOf(i.expr) === exprKeyOf(n));
      if (same >= 0) return { column: same };
      outputs.push(aggregateOutput(n));
      return { column: outputs.length - 1 };
    }
    if (n.type === "identifier" && !scope.isColumn(n.name)) {
      const aliased = items.findIndex((i) => i.alias?.toLowerCase() === n.name.toLowerCase());
      if (aliased >= 0 && containsAggregate((items[aliased] as { expr: Node }).expr)) return { column: aliased };
    }
    const r = scope.resolve(n);
    const k = r?.declared ? groupCols.findIndex((g) => g.r.table === r.table && g.r.column === r.column) : -1;
    if (!r || k < 0) throw unsupported("VD1080", `HAVING on ${textOf(ps, n)} (only aggregates, grouped columns, literals and placeholders), over ${note}`);
    let column = outputs.findIndex((o, i) => i < visible && o.kind === "group" && o.column === k);
    if (column < 0) {
      outputs.push({ kind: "group", column: k });
      column = outputs.length - 1;
    }
    const affinity = scope.affinity(n);
    return { column, collation: scope.collation(n), ...(affinity ? { affinity } : {}) };
  };
  const havingClause = clauses.find((c) => c.type === "having_clause") as Extract<Node, { type: "having_clause" }> | undefined;
  const having = havingClause ? compileHaving(ps, havingClause.expr, operand, `, over ${note}`) : undefined;

  // ORDER BY over the output: positions, aliases, or an expression written as selected.
  const ob = clauses.find((c) => c.type === "order_by_clause") as Extract<Node, { type: "order_by_clause" }> | undefined;
  const order: SortKey[] = orderTerms(ob).map(({ expr: term, desc, nullsFirst, collation }) => {
    const pos = term.type === "number_literal" && /^\d+$/.test(term.text) ? Number(term.text) : undefined;
    let column = pos !== undefined ? pos - 1 : -1;
    if (pos === undefined) {
      // A result alias wins over a column of the same name.
      if (term.type === "identifier") column = items.findIndex((i) => i.alias?.toLowerCase() === term.name.toLowerCase());
      const wanted = exprKeyOf(term);
      if (column < 0) column = items.findIndex((i) => exprKeyOf(i.expr) === wanted);
    }
    if (column < 0 || column >= items.length) throw unsupported("VD1081", `ORDER BY an expression that is not selected, with aggregates over ${note}`);
    const item = items[column] as { expr: Node };
    return { column, desc, nullsFirst, collation: collation ?? scope.collation(item.expr) };
  });

  const { plan, offsets } = buildJoin();
  const at = ([g, c]: Ref): number => (offsets[g] ?? 0) + c;
  const fns = partials.map((f) => f(at));
  return new Aggregate(
    new Partials(plan, fns),
    groupCols.map((_, i) => i),
    groupCols.map((g) => g.collation),
    outputs,
    names,
    order,
    having,
    visible,
  );
}
