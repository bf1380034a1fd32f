// UPDATE of columns a sharded table's lookups cover (engine/owned-update.ts): which lookups move,
// and the pre-read giving each row's lookup values before and after the SET.

import type { Node } from "sql-parser-cst";
import type { LookupTable } from "../engine/lookup.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate, type Part } from "../sql/template.ts";
import { unsupported } from "./ast.ts";

function columnsOf(l: LookupTable): string[] {
  return l.system ? l.system.columns.map((c) => c.name) : [l.column];
}

/** The SET's expression of each assigned column (lower case), or "row" for a column a row value assigns. */
function assignments(set: Node | undefined): Map<string, Node | "row"> {
  const out = new Map<string, Node | "row">();
  if (set?.type !== "set_clause") return out;
  for (const a of set.assignments.items as Node[]) {
    if (a.type !== "column_assignment") continue;
    if (a.column.type === "identifier") {
      out.set(a.column.name.toLowerCase(), a.expr as Node);
      continue;
    }
    if (a.column.type !== "paren_expr") continue;
    const cols = (
      (a.column.expr as Node).type === "list_expr" ? ((a.column.expr as Extract<Node, { type: "list_expr" }>).items as Node[]) : [a.column.expr as Node]
    ).map((c) => (c.type === "identifier" ? c.name.toLowerCase() : ""));
    const e = a.expr as Node;
    const values =
      e.type === "paren_expr" && (e.expr as Node).type === "list_expr" ? ((e.expr as Extract<Node, { type: "list_expr" }>).items as Node[]) : undefined;
    cols.forEach((c, i) => {
      out.set(c, values && values.length === cols.length ? (values[i] as Node) : "row");
    });
  }
  return out;
}

/**
 * The pre-read of an UPDATE moving lookups (undefined when the SET assigns no lookup's column):
 * SELECT <vindex column>, each moved lookup's columns, then each one's columns as the SET makes
 * them, FROM the table WHERE the UPDATE's own condition.
 */
export function lookupUpdate(
  ps: ParsedStatement,
  s: Extract<Node, { type: "update_stmt" }>,
  tableNode: Node,
  where: Node | undefined,
  table: string,
  vindexColumn: string,
  lookups: readonly LookupTable[],
): { moved: LookupTable[]; pre: Part[] } | undefined {
  const set = assignments(s.clauses.find((c) => c.type === "set_clause"));
  const moved = lookups.filter((l) => columnsOf(l).some((c) => set.has(c.toLowerCase())));
  if (moved.length === 0) return undefined;
  const uc = s.clauses.find((c) => c.type === "update_clause");
  if (uc?.type === "update_clause" && uc.orAction) {
    throw unsupported("VD2415", `UPDATE OR … of ${table}'s columns that lookup vindexes or keyspace-wide unique keys cover (use a plain UPDATE)`);
  }
  const after: Part[][] = [];
  for (const l of moved) {
    for (const c of columnsOf(l)) {
      const e = set.get(c.toLowerCase());
      if (e === "row")
        throw unsupported(
          "VD2415",
          `a row value assigned to ${c} of ${table}, which a lookup vindex or keyspace-wide unique key covers (assign each column its own value)`,
        );
      after.push(e ? ["(", ...sliceTemplate(ps, ...rangeOf(e)), ")"] : [quoteIdent(c)]);
    }
  }
  const before = moved.flatMap(columnsOf).map(quoteIdent);
  const pre: Part[] = [`SELECT ${[quoteIdent(vindexColumn), ...before].join(", ")}`];
  for (const a of after) pre.push(", ", ...a);
  pre.push(" FROM ", ...sliceTemplate(ps, ...rangeOf(tableNode)));
  if (where) pre.push(" WHERE ", ...sliceTemplate(ps, ...rangeOf(where)));
  return { moved, pre };
}
