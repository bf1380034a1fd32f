// HAVING compiled into a Condition the gate evaluates over combined groups. Shared by scatter
// aggregates (select.ts) and aggregates over gate joins (join.ts): each resolves operands its
// own way (aggregates become hidden outputs, grouped columns carry collation and affinity).

import type { Node } from "sql-parser-cst";
import type { Collation } from "../engine/compare.ts";
import type { Condition, Operand } from "../engine/condition.ts";
import type { Affinity } from "../engine/values.ts";
import type { ParsedStatement } from "../sql/parse.ts";
import { isAggregateCall, kw, textOf, unsupported } from "./ast.ts";

export type HavingOperand = Operand & { collation?: Collation; affinity?: Affinity };

const CMP: Record<string, "=" | "!=" | "<" | "<=" | ">" | ">="> = { "=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=" };

/** Comparisons, AND / OR / NOT and IS [NOT] over `operand`s; anything else is UNSUPPORTED (`where` names the context). */
export function compileHaving(ps: ParsedStatement, n: Node, operand: (n: Node) => HavingOperand, where = ""): Condition {
  const compile = (x: Node): Condition => compileHaving(ps, x, operand, where);
  if (n.type === "paren_expr" && (n.expr as Node).type !== "list_expr" && (n.expr as Node).type !== "select_stmt") return compile(n.expr as Node);
  if (n.type === "prefix_op_expr" && kw(n.operator) === "NOT") return { op: "not", inner: compile(n.expr) };
  if (n.type === "binary_expr") {
    const op = kw(n.operator);
    if (op === "AND" || op === "OR") return { op: op === "AND" ? "and" : "or", left: compile(n.left), right: compile(n.right) };
    const l = operand(n.left);
    const r = operand(n.right);
    // SQLite applies a column's affinity to the other operand; allow only cases it leaves alone.
    for (const [x, y] of [
      [l, r],
      [r, l],
    ] as const) {
      if (!("column" in x) || x.affinity === undefined || x.affinity === "BLOB" || "column" in y) continue;
      const lit = "literal" in y ? y.literal : undefined;
      const numeric = x.affinity !== "TEXT";
      const fine = lit === null || (numeric ? typeof lit === "number" || typeof lit === "bigint" : typeof lit === "string");
      if (!fine) throw unsupported("VD1029", "HAVING comparing a grouped column with a value its affinity would convert (or a placeholder)");
    }
    const collation = ("collation" in l && l.collation) || ("collation" in r && r.collation) || "BINARY";
    const c = CMP[op];
    if (c) return { op: c, left: l, right: r, collation };
    if (op === "IS" || op === "IS NOT") return { op: "is", left: l, right: r, negate: op === "IS NOT", collation };
  }
  if (n.type === "postfix_op_expr") throw unsupported("VD1030", `HAVING … ${kw(n.operator)}`);
  if (isAggregateCall(n) || n.type === "identifier") return { op: "value", operand: operand(n) };
  throw unsupported("VD1031", `this HAVING expression (${textOf(ps, n).slice(0, 40)})${where}`);
}
