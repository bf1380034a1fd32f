// Uncorrelated subqueries in a statement over shards: each is planned on its own, run first,
// and its rows bound into the outer statement (`x IN (…)` as a list, `EXISTS (…)` as 1 / 0, a
// scalar `(…)` as one value). A correlated subquery, or one in FROM, stays UNSUPPORTED.

import type { Node } from "sql-parser-cst";
import { unsupportedError } from "../../topology/refusals.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { Primitive } from "../engine/primitive.ts";
import { rangeOf, walk, type ParsedStatement } from "../sql/parse.ts";
import type { Edit } from "../sql/template.ts";
import { affinityOf, type Affinity } from "../engine/values.ts";
import { columnOf, kw, tableRef, unsupported, type TableRef } from "./ast.ts";
import { analyzeJoin, colocated, type JoinAnalysis } from "./join.ts";
import { isVindexColumnName, tableRouting } from "./routing.ts";
import type { Scope } from "./scope.ts";
import { own } from "../../topology/own.ts";

type SubSelect = Extract<Node, { type: "select_stmt" | "compound_select_stmt" }>;

function isSelect(n: unknown): n is SubSelect {
  return typeof n === "object" && n !== null && ((n as Node).type === "select_stmt" || (n as Node).type === "compound_select_stmt");
}

/** Tables a subquery reads (FROM of each of its SELECTs), with their aliases. */
function subTables(sub: SubSelect): TableRef[] {
  const out: TableRef[] = [];
  walk(sub, (n) => {
    if (n.type === "from_clause" && n.expr.type !== "join_expr") {
      try {
        out.push(tableRef(n.expr as Node));
      } catch {
        // not a plain table: planning the subquery will refuse it
      }
    }
  });
  return out;
}

/** True when the subquery names a column of the outer table that its own tables do not have. */
function isCorrelated(sub: SubSelect, outer: readonly TableRef[], ks: KeyspaceGraph): boolean {
  if (outer.length === 0) return false;
  const inner = subTables(sub);
  const cols = (t: TableRef) => new Set((own(ks.tables, t.name.toLowerCase())?.columns ?? []).map((c) => c.name.toLowerCase()));
  const innerCols = new Set(inner.flatMap((t) => [...cols(t)]));
  // An aliased table is known by its alias only (as in SQLite).
  const innerNames = new Set(inner.map((t) => t.alias.toLowerCase()));
  const outerCols = new Set(outer.flatMap((t) => [...cols(t)]));
  let correlated = false;
  walk(sub, (n) => {
    if (n.type === "member_expr" && n.object.type === "identifier" && n.property.type !== "all_columns") {
      if (!innerNames.has(n.object.name.toLowerCase())) correlated = true;
    } else if (n.type === "identifier") {
      const name = n.name.toLowerCase();
      if (outerCols.has(name) && !innerCols.has(name)) correlated = true;
    }
  });
  return correlated;
}

/**
 * Affinity SQLite gives a subquery's result: its one selected item's, when that is a plain
 * column (functions, aggregates and other expressions have none).
 */
function resultAffinity(sub: SubSelect, ks: KeyspaceGraph): Affinity | undefined {
  if (sub.type !== "select_stmt") return undefined;
  const sc = sub.clauses.find((c) => c.type === "select_clause");
  const item = sc?.type === "select_clause" ? sc.columns?.items[0] : undefined;
  const expr = item?.type === "alias" ? (item.expr as Node) : (item as Node | undefined);
  const t = subTables(sub)[0];
  if (!expr || !t) return undefined;
  const col = columnOf(expr, t);
  const info = own(ks.tables, t.name.toLowerCase())?.columns.find((c) => c.name.toLowerCase() === col?.toLowerCase());
  return info ? affinityOf(info.type) : undefined;
}

/**
 * Bound values carry no affinity, while the subquery's column may: they compare alike unless
 * SQLite would convert one side because of the subquery column's affinity.
 */
function bindable(resultAff: Affinity | undefined, otherAff: Affinity | undefined): boolean {
  if (resultAff === undefined || resultAff === "BLOB") return true;
  const numeric = (a: Affinity | undefined) => a === "INTEGER" || a === "REAL" || a === "NUMERIC";
  if (numeric(resultAff)) return numeric(otherAff);
  return otherAff === "TEXT" || numeric(otherAff);
}

function width(sub: SubSelect): number {
  const first = sub.type === "compound_select_stmt" ? sub.left : sub;
  if (first.type !== "select_stmt") return -1;
  const sc = first.clauses.find((c) => c.type === "select_clause");
  const items = sc?.type === "select_clause" ? (sc.columns?.items ?? []) : [];
  return items.some((i) => i.type === "all_columns" || (i.type === "member_expr" && i.property.type === "all_columns")) ? -1 : items.length;
}

export interface BoundSubqueries {
  /** The statement with each subquery's text replaced by its bound result. */
  readonly ps: ParsedStatement;
  readonly subs: ReadonlyMap<number, Primitive>;
}

/**
 * Finds the subqueries of `ps` (outside FROM), plans each with `plan`, and returns the statement
 * with them replaced. A subquery it cannot bind (correlated, in FROM, several columns where one
 * is needed) is UNSUPPORTED.
 */
export function bindSubqueries(
  ps: ParsedStatement,
  ks: KeyspaceGraph,
  outer: readonly TableRef[],
  plan: (sub: ParsedStatement) => Primitive,
  keep: (sub: SubSelect) => boolean = () => false,
): BoundSubqueries {
  const replacements: Edit[] = [];
  const subs = new Map<number, Primitive>();
  const one = (sub: SubSelect, what: string): { id: number } => {
    if (isCorrelated(sub, outer, ks)) throw unsupported("VD1086", `a correlated subquery (${what})`);
    const id = rangeOf(sub)[0];
    subs.set(id, plan({ ...ps, stmt: sub, range: rangeOf(sub), replacements: [] }));
    return { id };
  };
  const single = (sub: SubSelect, what: string): void => {
    if (width(sub) !== 1) throw unsupportedError("VD1087", `${what}: the subquery must select exactly one column`);
  };
  const visit = (n: unknown, parent: Node | null): void => {
    if (typeof n !== "object" || n === null) return;
    if (Array.isArray(n)) {
      for (const c of n) visit(c, parent);
      return;
    }
    const node = n as Node;
    if (typeof (node as { type?: unknown }).type !== "string") return;
    if (node === ps.stmt) {
      for (const [k, v] of Object.entries(node)) if (k !== "range") visit(v, node);
      return;
    }
    if (node.type === "from_clause") {
      let subInFrom = false;
      walk(node, (x) => {
        if (isSelect(x)) subInFrom = true;
      });
      if (subInFrom) throw unsupported("VD1009", "a subquery in FROM");
    }
    if (node.type === "with_clause") return; // CTEs are planned as tables (cte.ts)
    if (isSelect(node) && keep(node)) return; // runs on the shards as written
    if (node.type === "paren_expr" && isSelect(node.expr) && keep(node.expr)) return;
    if (node.type === "prefix_op_expr" && kw(node.operator) === "EXISTS" && node.expr.type === "paren_expr" && isSelect(node.expr.expr) && keep(node.expr.expr))
      return;
    if (node.type === "prefix_op_expr" && kw(node.operator) === "EXISTS" && node.expr.type === "paren_expr" && isSelect(node.expr.expr)) {
      const { id } = one(node.expr.expr, "EXISTS");
      const [start, end] = rangeOf(node);
      replacements.push({ start, end, parts: [{ compute: (b) => (b.subquery(id).length > 0 ? "1" : "0") }] });
      return;
    }
    if (node.type === "paren_expr" && isSelect(node.expr)) {
      const sub = node.expr;
      const inList = parent?.type === "binary_expr" && /^(NOT )?IN$/.test(kw(parent.operator)) && parent.right === node;
      single(sub, inList ? "IN (subquery)" : "a scalar subquery");
      // The other operand of the comparison (or IN) decides the affinity SQLite applies.
      const other = parent?.type === "binary_expr" ? (parent.left === node ? parent.right : parent.left) : undefined;
      let otherInfo: { type: string } | undefined;
      for (const o of outer) {
        const otherCol = other ? columnOf(other, o) : undefined;
        otherInfo ??=
          otherCol === undefined ? undefined : own(ks.tables, o.name.toLowerCase())?.columns.find((c) => c.name.toLowerCase() === otherCol.toLowerCase());
      }
      if (!bindable(resultAffinity(sub, ks), otherInfo ? affinityOf(otherInfo.type) : undefined)) {
        throw unsupported("VD1088", "a subquery whose column affinity would convert the value it is compared with");
      }
      const { id } = one(sub, inList ? "IN" : "scalar");
      if (inList) {
        const [start, end] = rangeOf(sub);
        replacements.push({ start, end, parts: [{ values: (b) => b.subquery(id).map((r) => r[0] ?? null), empty: "" }] });
      } else {
        const [start, end] = rangeOf(node);
        replacements.push({ start, end, parts: ["(", { values: (b) => [b.subquery(id)[0]?.[0] ?? null], empty: "NULL" }, ")"] });
      }
      return;
    }
    if (isSelect(node)) throw unsupported("VD1089", "a subquery in this position");
    for (const [k, v] of Object.entries(node)) if (k !== "range") visit(v, node);
  };
  visit(ps.stmt, null);
  return { ps: subs.size > 0 ? { ...ps, replacements: [...(ps.replacements ?? []), ...replacements] } : ps, subs };
}

/** The subqueries of a statement outside FROM (the outermost ones; nested ones are inside them). */
export function subqueriesOf(stmt: Node): SubSelect[] {
  const out: SubSelect[] = [];
  const visit = (n: unknown, top: boolean): void => {
    if (typeof n !== "object" || n === null) return;
    if (Array.isArray(n)) {
      for (const c of n) visit(c, false);
      return;
    }
    const node = n as Node;
    if (typeof (node as { type?: unknown }).type !== "string" || node.type === "with_clause") return;
    if (!top && isSelect(node)) {
      out.push(node);
      return;
    }
    for (const [k, v] of Object.entries(node)) if (k !== "range") visit(v, false);
  };
  visit(stmt, true);
  return out;
}

/**
 * True when a (correlated) subquery can run on each shard as written: it reads only reference
 * tables, or its sharded tables are co-located with each other and its WHERE equates one of
 * their vindex columns with a vindex column of a sharded table of the outer statement (same
 * vindex and affinity). Every row it can see then lives on the outer row's shard. It must not
 * hold subqueries of its own.
 */
export function pushableSubquery(sub: SubSelect, outer: Scope, ks: KeyspaceGraph): boolean {
  if (sub.type !== "select_stmt") return false;
  let nested = false;
  walk(sub, (n) => {
    if (n !== sub && isSelect(n)) nested = true;
  });
  if (nested) return false;
  const from = sub.clauses.find((c) => c.type === "from_clause");
  if (from?.type !== "from_clause") return false;
  const where = sub.clauses.find((c) => c.type === "where_clause");
  let j: JoinAnalysis;
  try {
    j = analyzeJoin(ks, from.expr as Node, where?.type === "where_clause" ? where.expr : undefined);
  } catch {
    return false;
  }
  const sharded = j.steps.filter((st) => st.routing.kind === "sharded");
  if (sharded.length === 0) return j.steps.every((st) => st.routing.kind === "reference");
  if (!colocated(j.steps, j.scope, j.where)) return false;
  const outerVindex = (n: Node) => {
    if (j.scope.resolve(n)) return undefined; // the subquery's own column
    const r = outer.resolve(n);
    if (!r?.declared) return undefined;
    const routing = tableRouting(ks, r.table.ref.name);
    return routing.routable !== false && isVindexColumnName(routing, r.column) ? routing : undefined;
  };
  for (const c of j.where) {
    if (c.type !== "binary_expr" || (kw(c.operator) !== "=" && kw(c.operator) !== "==")) continue;
    for (const [a, b] of [
      [c.left, c.right],
      [c.right, c.left],
    ] as const) {
      const mine = j.scope.resolve(a);
      if (!mine?.declared) continue;
      const st = sharded.find((x) => x.table === mine.table);
      if (!st || st.routing.routable === false || !isVindexColumnName(st.routing, mine.column)) continue;
      const theirs = outerVindex(b);
      if (theirs && theirs.vindexName === st.routing.vindexName && theirs.affinity === st.routing.affinity) return true;
    }
  }
  return false;
}
