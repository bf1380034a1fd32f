// The one walk over the column references of an expression, for the planners that ask what an
// expression's names resolve to (expr-key.ts matches expressions by it, join.ts finds the tables
// a condition needs). It does not go into what names no column of this scope: subqueries (their
// names belong to their own FROM), a function's name, the collation of COLLATE, the type of CAST.

import type { Node } from "sql-parser-cst";
import { kw } from "./ast.ts";

/**
 * What a visitor does with a reference: "taken" (the walk does not look inside it), "inside"
 * (the walk looks inside a parenthesized expression; a name or `t.col` has nothing inside),
 * "stop" (the walk ends).
 */
export type RefAnswer = "taken" | "inside" | "stop";

/**
 * Calls `ref` for each name and `t.col` / `main.t.col` / `t.*` of `n`, and for each
 * parenthesized expression before its inside, in source order. OVER clauses are walked only
 * with `windows`. Answers false when `ref` stopped the walk.
 */
export function walkColumnRefs(n: Node, ref: (node: Node) => RefAnswer, windows: boolean): boolean {
  let stopped = false;
  const visit = (x: unknown): void => {
    if (stopped || typeof x !== "object" || x === null) return;
    if (Array.isArray(x)) {
      for (const c of x) visit(c);
      return;
    }
    const node = x as Node;
    if (typeof (node as { type?: unknown }).type !== "string") return;
    switch (node.type) {
      case "identifier":
      case "member_expr":
        if (ref(node) === "stop") stopped = true;
        return;
      case "paren_expr": {
        const answer = ref(node);
        if (answer === "stop") stopped = true;
        else if (answer === "inside") visit(node.expr);
        return;
      }
      case "func_call":
        visit(node.args);
        visit(node.filter);
        if (windows) visit(node.over);
        return;
      case "binary_expr":
        visit(node.left);
        if (kw(node.operator) !== "COLLATE") visit(node.right);
        return;
      case "cast_expr":
        visit(node.args.expr.expr);
        return;
      case "select_stmt":
      case "compound_select_stmt":
        return;
      default:
        for (const [k, v] of Object.entries(node)) if (k !== "range" && typeof v === "object") visit(v);
    }
  };
  visit(n);
  return !stopped;
}
