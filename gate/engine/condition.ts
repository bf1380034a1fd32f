// Conditions the gate evaluates itself (HAVING over combined groups), with SQLite's semantics:
// three-valued logic, NULL on any NULL comparison operand, values ordered as compareValues does.
// Only what can be evaluated exactly is built: comparisons, AND / OR / NOT, IS [NOT] NULL.

import type { SqlValue } from "../../contract/sql-values.ts";
import type { Bindings } from "../sql/template.ts";
import { compareValues, type Collation } from "./compare.ts";
import { evalValue, type ValueExpr } from "./values.ts";

export type Operand = { readonly column: number } | ValueExpr;

export type Condition =
  | { readonly op: "=" | "!=" | "<" | "<=" | ">" | ">="; readonly left: Operand; readonly right: Operand; readonly collation: Collation }
  | { readonly op: "is"; readonly left: Operand; readonly right: Operand; readonly negate: boolean; readonly collation: Collation }
  | { readonly op: "and" | "or"; readonly left: Condition; readonly right: Condition }
  | { readonly op: "not"; readonly inner: Condition }
  | { readonly op: "value"; readonly operand: Operand };

type Truth = 1 | 0 | null;

function operand(o: Operand, row: readonly SqlValue[], b: Bindings): SqlValue {
  return "column" in o ? (row[o.column] ?? null) : evalValue(o, b);
}

function truthy(v: SqlValue): Truth {
  if (v === null) return null;
  if (typeof v === "number") return v !== 0 ? 1 : 0;
  if (typeof v === "bigint") return v !== 0n ? 1 : 0;
  // Text and blobs are true when their numeric prefix (as SQLite reads one: ASCII blanks, a
  // sign, digits, a fraction, an exponent; no "Infinity") is non-zero.
  const text = typeof v === "string" ? v : new TextDecoder().decode(v);
  const m = /^[ \t\n\f\r\v]*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)/.exec(text);
  const n = m?.[1] === undefined ? 0 : Number(m[1]);
  return n === 0 || Number.isNaN(n) ? 0 : 1;
}

export function evaluate(c: Condition, row: readonly SqlValue[], b: Bindings): Truth {
  switch (c.op) {
    case "and": {
      const l = evaluate(c.left, row, b);
      if (l === 0) return 0;
      const r = evaluate(c.right, row, b);
      return r === 0 ? 0 : l === null || r === null ? null : 1;
    }
    case "or": {
      const l = evaluate(c.left, row, b);
      if (l === 1) return 1;
      const r = evaluate(c.right, row, b);
      return r === 1 ? 1 : l === null || r === null ? null : 0;
    }
    case "not": {
      const v = evaluate(c.inner, row, b);
      return v === null ? null : v === 1 ? 0 : 1;
    }
    case "value":
      return truthy(operand(c.operand, row, b));
    case "is": {
      const l = operand(c.left, row, b);
      const r = operand(c.right, row, b);
      const same = l === null || r === null ? l === r : compareValues(l, r, c.collation) === 0;
      return same !== c.negate ? 1 : 0;
    }
    default: {
      const l = operand(c.left, row, b);
      const r = operand(c.right, row, b);
      if (l === null || r === null) return null;
      const d = compareValues(l, r, c.collation);
      const ok = c.op === "=" ? d === 0 : c.op === "!=" ? d !== 0 : c.op === "<" ? d < 0 : c.op === "<=" ? d <= 0 : c.op === ">" ? d > 0 : d >= 0;
      return ok ? 1 : 0;
    }
  }
}
