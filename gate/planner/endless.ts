// Statements SQLite would never finish, refused before they reach a tablet (VD2300).
//
// Why here: a Durable Object's SQLite offers no interrupt, progress handler or step budget to
// JavaScript, and local workerd runs every isolate on one thread without a CPU limit, so a
// statement that never ends holds the whole local cluster (gate, every tablet, /healthz) for as
// long as it runs; on Cloudflare it holds its tablet until `limits.cpu_ms` stops it. The gate's
// deadline cannot help while that thread is inside SQLite. So what can be proven endless is
// refused up front, and only that: anything that might end (a WHERE, a LIMIT, a join, a seed
// that may be empty) passes through, and the deadline and the CPU limit bound it.
//
// Proof, for `WITH RECURSIVE c AS (seed UNION ALL step) SELECT … FROM c …`:
// - the seed is one SELECT with no FROM, WHERE or other clause: it yields exactly one row;
// - the step is `SELECT <expressions> FROM c` and nothing else (no WHERE, LIMIT, DISTINCT, join,
//   subquery): every row taken from c's queue puts exactly one row back, so the queue never
//   empties and SQLite never stops (the only way out is an error, which answers no rows either);
// - the main SELECT reads c as its only FROM item with no WHERE and no LIMIT, so SQLite cannot
//   skip or stop the scan (a constant-false WHERE would skip it; aggregates, GROUP BY, HAVING,
//   ORDER BY and windows all read every row first).

import type { Node } from "sql-parser-cst";
import { unsupportedError } from "../../topology/refusals.ts";
import { walk } from "../sql/parse.ts";

const MAIN_CLAUSES = new Set(["with_clause", "select_clause", "from_clause", "group_by_clause", "having_clause", "order_by_clause", "window_clause"]);

function clauses(n: Node): readonly Node[] | undefined {
  return n.type === "select_stmt" ? (n.clauses as readonly Node[]) : undefined;
}

function hasSubquery(n: Node): boolean {
  let found = false;
  walk(n, (m) => {
    if (m !== n && (m.type === "select_stmt" || m.type === "compound_select_stmt")) found = true;
  });
  return found;
}

/** The only FROM item of a select, when it is a plain table name. */
function soleTable(cs: readonly Node[]): string | undefined {
  const from = cs.find((c) => c.type === "from_clause");
  if (from?.type !== "from_clause") return undefined;
  const e = from.expr as Node;
  return e.type === "identifier" ? e.name.toLowerCase() : undefined;
}

function oneRowSeed(n: Node): boolean {
  const cs = clauses(n);
  const only = cs?.[0];
  return cs !== undefined && cs.length === 1 && only?.type === "select_clause" && only.modifiers.length === 0 && !hasSubquery(n);
}

function selfFeedingStep(n: Node, name: string): boolean {
  const cs = clauses(n);
  if (cs === undefined || cs.length !== 2) return false;
  const select = cs.find((c) => c.type === "select_clause");
  if (select?.type !== "select_clause" || select.modifiers.length !== 0) return false;
  return soleTable(cs) === name && !hasSubquery(n);
}

/** The names of the statement's recursive CTEs that never stop producing rows. */
function endlessCtes(withClause: Node): Set<string> {
  const out = new Set<string>();
  if (withClause.type !== "with_clause" || !withClause.recursiveKw) return out;
  for (const cte of withClause.tables.items as readonly Node[]) {
    if (cte.type !== "common_table_expr") continue;
    const body = cte.expr.type === "paren_expr" ? (cte.expr.expr as Node) : undefined;
    if (body?.type !== "compound_select_stmt") continue;
    const op = (Array.isArray(body.operator) ? body.operator : [body.operator]) as readonly Node[];
    const unionAll = op.length === 2 && op.every((k, i) => k.type === "keyword" && k.name === (i === 0 ? "UNION" : "ALL"));
    const name = cte.table.name.toLowerCase();
    if (unionAll && oneRowSeed(body.left as Node) && selfFeedingStep(body.right as Node, name)) out.add(name);
  }
  return out;
}

/** Throws UNSUPPORTED VD2300 when the statement is a SELECT that reads an endless recursive CTE to its end. */
export function refuseEndless(stmt: Node): void {
  const cs = clauses(stmt);
  if (cs === undefined || !cs.every((c) => MAIN_CLAUSES.has(c.type))) return;
  const w = cs.find((c) => c.type === "with_clause");
  if (w === undefined) return;
  const read = soleTable(cs);
  if (read === undefined || !endlessCtes(w).has(read)) return;
  throw unsupportedError(
    "VD2300",
    `the recursive CTE ${read} never stops adding rows (its step reads one row and adds one, with no WHERE or LIMIT), and this SELECT reads all of it, so it would never finish; add a condition (WHERE) or a LIMIT to the recursive SELECT`,
  );
}
