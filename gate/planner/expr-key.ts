// Matching one expression against another (GROUP BY terms, select items, ORDER BY and HAVING
// operands) the way SQLite does: by what the column references resolve to, not by how they are
// spelled. `"posts"."author_id"`, `posts.author_id`, `main.posts.author_id`, `(AUTHOR_ID)` and
// `author_id` are one column of one table; everything else compares as whitespace-collapsed text.

import type { Node } from "sql-parser-cst";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { normalizedText } from "./ast.ts";
import { walkColumnRefs } from "./column-refs.ts";
import type { Scope } from "./scope.ts";

/**
 * A key equal for two expressions of `scope` that SQLite reads as the same expression: each
 * column reference (a name, `t.col`, `main.t.col`, parenthesized) becomes the scope table and
 * declared column it resolves to. Names that resolve to nothing (and subqueries, whose names
 * belong to their own FROM) stay as written, so they only match the same text.
 */
export function scopedKey(ps: ParsedStatement, scope: Scope, n: Node): string {
  const refs: { start: number; end: number; token: string }[] = [];
  // A window's text stays as written.
  walkColumnRefs(
    n,
    (node) => {
      const r = node.type === "paren_expr" && Array.isArray(node.expr) ? undefined : resolved(scope, node);
      if (!r) return "inside";
      const [start, end] = rangeOf(node);
      const table = scope.tables.indexOf(r.table);
      refs.push({ start, end, token: `\u0001${table}.${r.column.toLowerCase()}\u0001` });
      return "taken";
    },
    false,
  );
  const [start, end] = rangeOf(n);
  refs.sort((a, b) => a.start - b.start);
  let out = "";
  let at = start;
  for (const r of refs) {
    out += normalizedText(ps.text.slice(at, r.start)) + r.token;
    at = r.end;
  }
  return (out + normalizedText(ps.text.slice(at, end))).trim();
}

/** The column `n` names, or undefined (an ambiguous name is left for SQLite to report). */
function resolved(scope: Scope, n: Node): ReturnType<Scope["resolve"]> {
  try {
    return scope.resolve(n);
  } catch {
    return undefined;
  }
}
