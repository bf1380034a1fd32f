// A reference table's copies must stay equal, so an INSERT that would let a shard fill a column
// from a DEFAULT that differs per call (time, randomness) is refused — but only when the INSERT
// leaves that column to its DEFAULT. An INSERT giving the column a value never evaluates it.

import type { Node } from "sql-parser-cst";
import { parseOne, walk } from "../sql/parse.ts";
import { funcName } from "./ast.ts";

/** Columns (lower case) whose DEFAULT calls one of `perCall`, read from the CREATE TABLE text (parsed once per text). */
export function perCallDefaultColumns(createSql: string, perCall: ReadonlySet<string>): readonly string[] {
  const cached = cache.get(createSql);
  if (cached) return cached;
  const out: string[] = [];
  let stmt: Node | undefined;
  try {
    stmt = parseOne(createSql).stmt;
  } catch {
    stmt = undefined;
  }
  if (stmt?.type === "create_table_stmt" && stmt.columns) {
    for (const item of stmt.columns.expr.items as Node[]) {
      if (item.type !== "column_definition") continue;
      for (const c of item.constraints) {
        const inner = c.type === "constraint" ? c.constraint : c;
        if (inner.type !== "constraint_default") continue;
        let varies = false;
        walk(inner.expr as Node, (n) => {
          const name = funcName(n);
          if (name !== undefined && perCall.has(name)) varies = true;
        });
        if (varies) out.push(item.name.name.toLowerCase());
      }
    }
  }
  if (cache.size > 1000) cache.clear();
  cache.set(createSql, out);
  return out;
}

const cache = new Map<string, readonly string[]>();

/**
 * The columns of `perCallDefaults` an INSERT leaves to their DEFAULT: those missing from its
 * column list, or all of them for DEFAULT VALUES. Without a column list (VALUES or SELECT) every
 * column is given (SQLite refuses a row of another width).
 */
export function omittedColumns(insert: Extract<Node, { type: "insert_stmt" }>, perCallDefaults: readonly string[]): string[] {
  if (perCallDefaults.length === 0) return [];
  if (insert.clauses.some((c) => c.type === "default_values")) return [...perCallDefaults];
  const ic = insert.clauses.find((c) => c.type === "insert_clause");
  const list = ic?.type === "insert_clause" ? ic.columns : undefined;
  if (!list) return [];
  const given = new Set((list.expr.items as Node[]).map((c) => (c.type === "identifier" ? c.name.toLowerCase() : "")));
  return perCallDefaults.filter((c) => !given.has(c));
}
