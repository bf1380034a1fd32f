// Non-recursive common table expressions (WITH) over shards. A CTE whose body only filters and
// projects rows (no aggregates, DISTINCT, LIMIT, windows or subqueries) of co-located or
// reference tables gives, on each shard, exactly its rows that live there. Such a CTE is planned
// as if it were a table: sharded like its body's tables (its vindex column is the body's vindex
// column when selected), or a reference table when the body reads only reference tables. The
// statement keeps its WITH clause and the shards evaluate it; every SQL text the gate builds for
// the shards (partial aggregates, gate-join queries) is prefixed with it.

import type { Node, SelectStmt } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { TableInfo } from "../../contract/tablet-rpc.ts";
import type { TableVSchema } from "../../contract/vschema.ts";
import { rangeOf, walk, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate } from "../sql/template.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import { containsAggregate, declaredCollation, hasSubquery, hasWindow, unsupported } from "./ast.ts";
import { analyzeJoin, colocated } from "./join.ts";
import { isVindexColumnName } from "./routing.ts";
import { parseOne } from "../sql/parse.ts";
import { own, setOwn } from "../../topology/own.ts";

type WithClause = Extract<Node, { type: "with_clause" }>;

/**
 * The keyspace as the main query sees it: each CTE added as a table (columns, declared types and
 * collations, and a vschema entry). Also returns the WITH clause as a prefix for gate-built SQL.
 */
export function withCtes(ps: ParsedStatement, _s: SelectStmt, w: WithClause, ks: KeyspaceGraph): { ks: KeyspaceGraph; ps: ParsedStatement } {
  if (w.recursiveKw) throw unsupported("VD1000", "WITH RECURSIVE");
  const tables: Record<string, TableInfo> = { ...ks.tables };
  const vtables: Record<string, TableVSchema> = { ...ks.vschema.tables };
  const names = new Set<string>();
  for (const cte of w.tables.items as Node[]) {
    if (cte.type !== "common_table_expr") throw unsupported("VD1001", `${cte.type} in WITH`);
    const name = cte.table.name;
    const lower = name.toLowerCase();
    if (own(ks.tables, lower)) throw unsupported("VD1002", `a CTE named like a table of the keyspace (${name})`);
    const body = (cte.expr as Extract<Node, { type: "paren_expr" }>).expr as Node;
    if (body.type !== "select_stmt") throw unsupported("VD1003", `CTE ${name}: a compound SELECT in a CTE`);
    const why = notDecomposable(body);
    if (why) throw unsupported("VD1004", `CTE ${name}: ${why} (a CTE may only filter and project rows across shards)`);
    let usesCte = false;
    walk(body, (n) => {
      if (n.type === "identifier" && names.has(n.name.toLowerCase())) usesCte = true;
    });
    if (usesCte) throw unsupported("VD1005", `CTE ${name} reading another CTE`);
    const from = body.clauses.find((c) => c.type === "from_clause");
    const where = body.clauses.find((c) => c.type === "where_clause");
    const select = body.clauses.find((c) => c.type === "select_clause");
    const items = (select?.type === "select_clause" ? (select.columns?.items ?? []) : []) as Node[];
    const listed = cte.columns
      ? ((cte.columns.expr as Extract<Node, { type: "list_expr" }>).items as Node[]).map((c) => (c.type === "identifier" ? c.name : ""))
      : undefined;
    // Columns: name, declared type and collation of each output (a plain column keeps its own).
    const cols: { name: string; type: string; collation: string; source?: { table: string; column: string } }[] = [];
    let entry: TableVSchema = { type: "reference" };
    if (from?.type === "from_clause") {
      const j = analyzeJoin(ks, from.expr as Node, where?.type === "where_clause" ? where.expr : undefined);
      if (j.steps.some((st) => st.routing.kind === "unsharded")) throw new VtError("INTERNAL", "unsharded table in a sharded keyspace");
      if (!colocated(j.steps, j.scope, j.where)) throw unsupported("VD1006", `CTE ${name}: a join of tables that are not co-located`);
      const sharded = j.steps.filter((st) => st.routing.kind === "sharded");
      for (const item of items) {
        const expr = item.type === "alias" ? (item.expr as Node) : item;
        const alias = item.type === "alias" && item.alias.type === "identifier" ? item.alias.name : undefined;
        if (expr.type === "all_columns" || (expr.type === "member_expr" && expr.property.type === "all_columns")) {
          for (const c of j.scope.star(expr)) {
            const t = c.table.info?.columns.find((x) => x.name === c.column);
            cols.push({
              name: c.column,
              type: t?.type ?? "",
              collation: declaredCollation(c.table.info?.sql, c.column, parseOne),
              ...(j.scope.nullable.has(c.table) ? {} : { source: { table: c.table.ref.name, column: c.column } }),
            });
          }
          continue;
        }
        const r = j.scope.resolve(expr);
        const t = r?.declared ? r.table.info?.columns.find((x) => x.name === r.column) : undefined;
        // Affinity: a column's own, a CAST's type, else none. Collation: as SQLite derives it for the expression.
        const type = t?.type ?? (expr.type === "cast_expr" ? ps.text.slice(...rangeOf(expr.args.expr.dataType as Node)) : "");
        cols.push({
          name: alias ?? (r?.declared ? r.column : ps.text.slice(...rangeOf(expr))),
          type,
          collation: j.scope.collation(expr),
          // Only a column that is never NULL-extended can stand for its table's vindex column.
          ...(r?.declared && !j.scope.nullable.has(r.table) ? { source: { table: r.table.ref.name, column: r.column } } : {}),
        });
      }
      if (sharded.length > 0) {
        const first = sharded[0];
        // The CTE is sharded like its tables; its vindex column is any selected vindex column of theirs.
        // Every selected vindex column (t.id, or u.t_id equal to it in a co-located join) names the same value.
        const at = cols.flatMap((c, i) =>
          c.source && sharded.some((st) => st.table.ref.name === c.source?.table && isVindexColumnName(st.routing, c.source.column)) ? [i] : [],
        );
        const vname = first?.routing.vindexName ?? "";
        const names = at.map((i) => listed?.[i] ?? cols[i]?.name ?? "");
        entry = { column_vindexes: (names.length > 0 ? names : ["_vtg_none"]).map((column) => ({ column, name: vname })) };
      }
    } else {
      for (const item of items) {
        const alias = item.type === "alias" && item.alias.type === "identifier" ? item.alias.name : undefined;
        cols.push({ name: alias ?? ps.text.slice(...rangeOf(item.type === "alias" ? (item.expr as Node) : item)), type: "", collation: "BINARY" });
      }
    }
    if (!listed) {
      const seen = new Set<string>();
      for (const c of cols) {
        // SQLite renames a repeated name (id, id:1): refuse rather than guess which one a reference means.
        if (seen.has(c.name.toLowerCase())) throw unsupported("VD1007", `CTE ${name} with two columns named ${c.name} (name them with AS or a column list)`);
        seen.add(c.name.toLowerCase());
      }
    }
    if (listed) {
      if (listed.length !== cols.length) throw new VtError("INVALID_ARGUMENT", `table ${name} has ${cols.length} values for ${listed.length} columns`);
      listed.forEach((n, i) => {
        const c = cols[i];
        if (c) c.name = n;
      });
    }
    const sql = `CREATE TABLE ${quoteIdent(name)} (${cols.map((c) => `${quoteIdent(c.name)} ${c.type}${c.collation !== "BINARY" ? ` COLLATE ${c.collation}` : ""}`).join(", ")})`;
    setOwn(tables, lower, { name, sql, columns: cols.map((c) => ({ name: c.name, type: c.type, pk: 0, notNull: false })) });
    setOwn(vtables, name, entry);
    names.add(lower);
  }
  const [start, end] = rangeOf(w);
  return {
    ks: { ...ks, tables, vschema: { ...ks.vschema, tables: vtables } },
    ps: { ...ps, withPrefix: [...sliceTemplate(ps, start, end), " "], ctes: [...names] },
  };
}

/** Why a CTE body cannot be computed shard by shard, or undefined when it can. */
function notDecomposable(body: SelectStmt): string | undefined {
  for (const c of body.clauses as Node[]) {
    if (c.type === "group_by_clause" || c.type === "having_clause") return "GROUP BY / HAVING";
    if (c.type === "limit_clause") return "LIMIT";
    if (c.type === "window_clause") return "WINDOW";
    if (c.type === "with_clause") return "a nested WITH";
    if (c.type === "select_clause") {
      if (c.modifiers.some((m) => m.type === "select_distinct")) return "DISTINCT";
      if ((c.columns?.items as Node[] | undefined)?.some((i) => containsAggregate(i))) return "aggregates";
    }
  }
  if (hasWindow(body)) return "window functions";
  if (hasSubquery(body)) return "subqueries";
  return undefined;
}
