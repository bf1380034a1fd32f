// RETURNING values exact in both directions. Durable Object SQLite hands every INTEGER and REAL
// back as a JS number, so a REAL of 1e16 and an integer beyond 2^53 look alike, and the integer is
// rounded. A write cannot be re-run to read its values again, so each write's RETURNING list
// carries, after the items as written, a quote() copy of each item that is a number (`CASE WHEN
// typeof(x) IN ('integer', 'real') THEN quote(x) END AS _vtg_q0`, …): the tablet answers the
// items' names with the copies' exact values (tablet/exact-values.ts). An item that is not a
// pure function of the row (random()) is evaluated again for its copy, whose value is returned.
// Users cannot name `_vt…`, so no user column can pose as a copy.

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { own } from "../../topology/own.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import { COPY_PREFIX } from "../../contract/tablet-rpc.ts";
import { parseOne, rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate, type Part } from "../sql/template.ts";
import { hasSubquery, tableRef } from "./ast.ts";

/** `ps` with the quote() copies of its RETURNING items added, or unchanged when it has no RETURNING (or one the copies cannot mirror). */
export function withExactReturning(ps: ParsedStatement, ks: KeyspaceGraph): ParsedStatement {
  const clauses = (ps.stmt as { clauses?: Node[] }).clauses ?? [];
  const returning = clauses.find((c) => c.type === "returning_clause");
  if (returning?.type !== "returning_clause") return ps;
  // A subquery in RETURNING is bound or kept by the planner later; leave such a list as written.
  if (hasSubquery(returning)) return ps;
  const items = returning.columns.items as Node[];
  const copies: Part[][] = [];
  for (const item of items) {
    const expr = item.type === "alias" ? (item.expr as Node) : item;
    if (expr.type === "all_columns") {
      const columns = targetColumns(ps.stmt, ks);
      if (!columns) return ps;
      for (const c of columns) copies.push([quoteIdent(c)]);
    } else copies.push(sliceTemplate(ps, ...rangeOf(expr)));
  }
  const end = rangeOf(returning)[1];
  const parts: Part[] = [];
  // Only numbers are copied: TEXT and BLOB arrive exact, and a quoted BLOB would double in size.
  copies.forEach((c, i) => {
    parts.push(", CASE WHEN typeof(", ...c, ") IN ('integer', 'real') THEN quote(", ...c, `) END AS ${COPY_PREFIX}${i}`);
  });
  return { ...ps, additions: [...(ps.additions ?? []), { start: end, end, parts }] };
}

/** The columns `RETURNING *` lists: every column of the written table as declared (generated ones too), in order. */
function targetColumns(stmt: Node, ks: KeyspaceGraph): string[] | undefined {
  let target: Node | undefined;
  for (const c of (stmt as { clauses?: Node[] }).clauses ?? []) {
    if (c.type === "insert_clause") target = c.table as Node;
    else if ((c.type === "update_clause" || c.type === "delete_clause") && c.tables.items.length === 1) target = c.tables.items[0] as Node;
  }
  if (!target) return undefined;
  let name: string;
  try {
    name = tableRef(target).name;
  } catch {
    return undefined;
  }
  const sql = own(ks.tables, name.toLowerCase())?.sql;
  if (!sql) return undefined;
  let create: Node;
  try {
    create = parseOne(sql).stmt;
  } catch {
    return undefined;
  }
  if (create.type !== "create_table_stmt" || !create.columns) return undefined;
  const out: string[] = [];
  for (const item of create.columns.expr.items as Node[]) if (item.type === "column_definition") out.push(item.name.name);
  if (out.length === 0) throw new VtError("INTERNAL", `table ${name} has no columns`);
  return out;
}
