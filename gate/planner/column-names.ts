// Result column names as SQLite gives them. SQLite names a result column without an alias by
// the text of its expression as written (a column reference by the column's name). The gate
// rewrites some of that text before a tablet sees it (a placeholder becomes `?` or `(? + 0)`,
// or a literal past the bound-parameter limit), so a tablet names those columns by the
// rewritten text; the names here, taken from the statement as the user wrote it, replace them.

import type { Node } from "sql-parser-cst";
import type { QueryResult } from "../../contract/tablet-rpc.ts";
import { rangeOf, walk, type ParsedStatement } from "../sql/parse.ts";

/**
 * Names to put on the result: `head[i]` for column i, `tail[j]` for column (n − tail.length + j)
 * (the items after a `*`, whose expansion the plan does not count); undefined keeps the name.
 */
export interface ResultNames {
  readonly head: readonly (string | undefined)[];
  readonly tail: readonly (string | undefined)[];
}

/** The result items of a statement: a SELECT's (a compound's leftmost), or RETURNING's. */
function resultItems(stmt: Node): Node[] | undefined {
  let s: Node = stmt;
  while (s.type === "compound_select_stmt") s = s.left as Node;
  const clauses = (s as { clauses?: Node[] }).clauses ?? [];
  for (const c of clauses) {
    if ((c.type === "select_clause" || c.type === "returning_clause") && c.columns) return c.columns.items as Node[];
  }
  return undefined;
}

function isStar(n: Node): boolean {
  return n.type === "all_columns" || (n.type === "member_expr" && n.property.type === "all_columns");
}

function hasParameter(n: Node): boolean {
  let found = false;
  walk(n, (x) => {
    if (x.type === "parameter") found = true;
  });
  return found;
}

/** The names the gate's rewrites would change, or undefined when it changes none. */
export function resultNames(ps: ParsedStatement): ResultNames | undefined {
  const items = resultItems(ps.stmt);
  if (!items) return undefined;
  const names = items.map((item): string | undefined | "*" => {
    if (isStar(item)) return "*";
    if (item.type === "alias" || !hasParameter(item)) return undefined;
    return ps.text.slice(...rangeOf(item));
  });
  const first = names.indexOf("*");
  const last = names.lastIndexOf("*");
  const head = (first < 0 ? names : names.slice(0, first)) as (string | undefined)[];
  const tail = (first < 0 ? [] : names.slice(last + 1)) as (string | undefined)[];
  if (![...head, ...tail].some((n) => n !== undefined)) return undefined;
  return { head, tail };
}

/** `r` with SQLite's names on the columns the gate's rewrites renamed. */
export function withResultNames(r: QueryResult, names: ResultNames | undefined): QueryResult {
  if (!names || r.columns.length < names.head.length + names.tail.length) return r;
  const columns = [...r.columns];
  names.head.forEach((n, i) => {
    if (n !== undefined) columns[i] = n;
  });
  const at = columns.length - names.tail.length;
  names.tail.forEach((n, j) => {
    if (n !== undefined) columns[at + j] = n;
  });
  return { ...r, columns };
}
