// Which columns of an INSERT … SELECT's SELECT can carry a REAL that JavaScript reads as an
// integer. Values cross the gate as JS numbers, so a REAL 1.0 arrives as 1: a TEXT column that
// places the row (a vindex or lookup column) would be routed by '1' while SQLite stores '1.0'.
// A column is "exact" when its numbers are surely SQLite INTEGERs whenever they are integral.

import type { Node } from "sql-parser-cst";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { own } from "../../topology/own.ts";
import { affinityOf } from "../engine/values.ts";
import type { ParsedStatement } from "../sql/parse.ts";
import { columnOf, isRealLiteral, selectItems, tableRef, valueExprOf, type TableRef } from "./ast.ts";

/**
 * Per result column of `source` (a SELECT), true when an integral number in it is an INTEGER:
 * a placeholder (the gate binds an integral number as INTEGER), a literal other than a REAL, or
 * a column of the one table in FROM whose affinity is INTEGER, NUMERIC (both store an integral
 * REAL as an INTEGER) or TEXT (it holds no numbers). Undefined when the columns cannot be told
 * apart (a compound SELECT, a join): then every column counts as not exact.
 */
export function exactNumberColumns(ps: ParsedStatement, source: Node, ks: KeyspaceGraph): boolean[] | undefined {
  if (source.type !== "select_stmt") return undefined;
  const from = source.clauses.find((c) => c.type === "from_clause");
  let table: TableRef | undefined;
  if (from?.type === "from_clause") {
    try {
      table = tableRef(from.expr as Node);
    } catch {
      return undefined;
    }
  }
  const info = table ? own(ks.tables, table.name.toLowerCase()) : undefined;
  const exactColumn = (name: string): boolean => {
    const c = info?.columns.find((col) => col.name.toLowerCase() === name.toLowerCase());
    return c !== undefined && affinityOf(c.type) !== "REAL" && affinityOf(c.type) !== "BLOB";
  };
  const out: boolean[] = [];
  for (const item of selectItems(source)) {
    if (item.star) {
      if (!info) return undefined;
      for (const c of info.columns) out.push(exactColumn(c.name));
      continue;
    }
    const e = item.expr;
    const column = table ? columnOf(e, table) : undefined;
    if (column !== undefined) out.push(exactColumn(column));
    else out.push(!isRealLiteral(e) && valueExprOf(ps, e) !== undefined);
  }
  return out;
}
