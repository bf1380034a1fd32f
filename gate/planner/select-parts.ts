// Readers of a SELECT shared by the select planners (select.ts, select-merge-sort.ts,
// select-aggregate.ts): its clauses, ORDER BY positions, item widths and the LIMIT each shard runs.

import type { Node, SelectStmt } from "sql-parser-cst";
import type { Route } from "../engine/route.ts";
import type { ValueExpr } from "../engine/values.ts";
import { limitNumber } from "../engine/limit-values.ts";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import type { Edit } from "../sql/template.ts";
import { limitValues, type SelectItem, orderTerms, type OrderTerm, valueExprOf } from "./ast.ts";
import type { Scope } from "./scope.ts";

export type Clause = SelectStmt["clauses"][number];

export function clause<T extends Clause["type"]>(s: SelectStmt, type: T): Extract<Clause, { type: T }> | undefined {
  return s.clauses.find((c) => c.type === type) as Extract<Clause, { type: T }> | undefined;
}

export function sortTerms(s: SelectStmt): OrderTerm[] {
  return orderTerms(clause(s, "order_by_clause"));
}
export type RouteBase = Omit<ConstructorParameters<typeof Route>[0], "template">;

/** A positive integer literal (`ORDER BY 2`, `GROUP BY 1`) is a position; `1.0` is a constant. */
export function positionOf(ps: ParsedStatement, n: Node): number | undefined {
  if (n.type !== "number_literal" || !/^\d+$/.test(n.text)) return undefined;
  const v = valueExprOf(ps, n);
  return v && "literal" in v && typeof v.literal === "number" ? v.literal : undefined;
}

/** Number of output columns an item expands to (a `*` is every column of the tables it names). */
export function itemWidth(scope: Scope, item: SelectItem): number {
  return item.star ? scope.star(item.node).length : 1;
}

export function limitEdit(ps: ParsedStatement, s: SelectStmt): { edit: Edit; count: ValueExpr | null; offset: ValueExpr | null } | undefined {
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
