// Joins. When every row of the join can only pair rows that live on the same shard (co-located:
// sharded tables joined on equal vindex columns, plus reference tables), the whole statement is
// routed like a single-table one and merged the same way. Otherwise the gate joins (gate-join.ts).
// This file reads the join chain and decides which tables are co-located.

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { Affinity } from "../engine/values.ts";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import { conjuncts, kw, tableRef, unsupported, type TableRef } from "./ast.ts";
import { chooseRouteBy, isVindexColumnName, tableRouting, type RouteChoice, type TableRouting } from "./routing.ts";
import { Scope, type ResolvedColumn, type ScopeTable } from "./scope.ts";
import { walkColumnRefs } from "./column-refs.ts";

export interface JoinStep {
  readonly table: ScopeTable;
  /** The table as written in FROM (with its alias). */
  readonly node: Node;
  readonly op: "inner" | "left";
  /** ON conjuncts (none for the first table, a comma or CROSS JOIN). */
  readonly on: readonly Node[];
  /** USING columns, as equalities between a column of an earlier table and this one. */
  readonly using: readonly Equality[];
  /** Where this step's text ends (its ON / USING, else its table). */
  readonly end: number;
  readonly routing: TableRouting;
}

export interface Equality {
  readonly a: ResolvedColumn;
  readonly b: ResolvedColumn;
}

export interface JoinAnalysis {
  readonly steps: readonly JoinStep[];
  readonly scope: Scope;
  readonly where: readonly Node[];
}

/** The FROM clause's join chain, left to right. Parenthesized joins, RIGHT / FULL and NATURAL joins are refused. */
export function analyzeJoin(ks: KeyspaceGraph, fromExpr: Node, where: Node | undefined): JoinAnalysis {
  const raw: { node: Node; ref: TableRef; op: "inner" | "left"; spec: Node | undefined }[] = [];
  const visit = (n: Node): void => {
    if (n.type === "join_expr") {
      visit(n.left);
      const op = kw(n.operator);
      let kind: "inner" | "left";
      if (op === "," || op === "JOIN" || op === "INNER JOIN" || op === "CROSS JOIN") kind = "inner";
      else if (op === "LEFT JOIN" || op === "LEFT OUTER JOIN") kind = "left";
      else throw unsupported("VD1054", `${op} (only JOIN, INNER JOIN, CROSS JOIN, LEFT JOIN and commas)`);
      const right = n.right as Node;
      if (right.type === "join_expr" || right.type === "paren_expr") throw unsupported("VD1055", "parenthesized joins");
      raw.push({ node: right, ref: tableRef(right), op: kind, spec: (n.specification ?? undefined) as Node | undefined });
      return;
    }
    if (n.type === "paren_expr") throw unsupported("VD1056", "parenthesized joins and subqueries in FROM");
    raw.push({ node: n, ref: tableRef(n), op: "inner", spec: undefined });
  };
  visit(fromExpr);
  const scope = new Scope(
    ks,
    raw.map((r) => r.ref),
  );
  const steps: JoinStep[] = raw.map((r, i) => {
    const table = scope.tables[i] as ScopeTable;
    let on: Node[] = [];
    const using: Equality[] = [];
    if (r.spec?.type === "join_on_specification") on = conjuncts(r.spec.expr as Node);
    else if (r.spec?.type === "join_using_specification") {
      const list = (r.spec.expr as Extract<Node, { type: "paren_expr" }>).expr as Node;
      for (const c of (list.type === "list_expr" ? list.items : [list]) as Node[]) {
        if (c.type !== "identifier") throw unsupported("VD1057", "this USING form");
        scope.using.add(c.name.toLowerCase());
        const b = scope.resolveIn(table, c.name);
        const earlier = scope.tables
          .slice(0, i)
          .map((t) => scope.resolveIn(t, c.name))
          .find((x) => x !== undefined);
        if (!b || !earlier) throw new VtError("INVALID_ARGUMENT", `cannot join using column ${c.name} - column not present in both tables`);
        using.push({ a: earlier, b });
      }
    } else if (r.spec) throw unsupported("VD1058", `join specification ${r.spec.type}`);
    if (r.op === "left") scope.nullable.add(table);
    return { table, node: r.node, op: r.op, on, using, end: rangeOf(r.spec ?? r.node)[1], routing: tableRouting(ks, r.ref.name) };
  });
  return { steps, scope, where: where ? conjuncts(where) : [] };
}

/** Tables an expression's column references name; undefined when one does not resolve (or a subquery). */
export function tablesOf(scope: Scope, n: Node): Set<ScopeTable> | undefined {
  const out = new Set<ScopeTable>();
  const whole = walkColumnRefs(
    n,
    (node) => {
      if (node.type === "paren_expr") return "inside";
      if (node.type === "member_expr" && node.property.type === "all_columns" && node.object.type === "identifier") {
        const t = scope.byQualifier(node.object.name);
        if (!t) throw new VtError("INVALID_ARGUMENT", `no such table: ${node.object.name}`);
        out.add(t);
        return "taken";
      }
      if (node.type === "member_expr" && node.object.type === "identifier" && !scope.byQualifier(node.object.name)) {
        throw new VtError("INVALID_ARGUMENT", `no such column: ${node.object.name}.${node.property.type === "identifier" ? node.property.name : "?"}`);
      }
      const r = scope.resolve(node);
      if (!r) return "stop";
      out.add(r.table);
      return "taken";
    },
    true,
  );
  return whole ? out : undefined;
}

/** `a = b` between two plain columns of the scope. */
export function columnEquality(scope: Scope, n: Node): Equality | undefined {
  if (n.type !== "binary_expr") return undefined;
  const op = kw(n.operator);
  if (op !== "=" && op !== "==") return undefined;
  const a = scope.resolve(n.left);
  const b = scope.resolve(n.right);
  return a?.declared && b?.declared && a.table !== b.table ? { a, b } : undefined;
}

export function affinityClass(scope: Scope, c: ResolvedColumn): "numeric" | "text" | "blob" {
  const a: Affinity = scope.affinityOfColumn(c);
  return a === "TEXT" ? "text" : a === "BLOB" ? "blob" : "numeric";
}

export function isVindexColumn(t: ScopeTable, routing: TableRouting, column: string): boolean {
  return t !== undefined && isVindexColumnName(routing, column);
}

/**
 * True when the steps, run whole on each shard, give exactly the join over all rows: the sharded
 * tables are linked by equalities of their vindex columns (same vindex, affinity, BINARY), and a
 * LEFT JOIN never preserves rows that live on every shard (a reference-only left side) against a
 * sharded right side.
 */
export function colocated(steps: readonly JoinStep[], scope: Scope, where: readonly Node[]): boolean {
  const inSet = new Set(steps.map((s) => s.table));
  const routingOf = new Map(steps.map((s) => [s.table, s.routing] as const));
  const sharded = steps.filter((s) => s.routing.kind === "sharded");
  const parent = new Map<ScopeTable, ScopeTable>(sharded.map((s) => [s.table, s.table]));
  const find = (t: ScopeTable): ScopeTable => {
    let x = t;
    while (parent.get(x) !== x) x = parent.get(x) as ScopeTable;
    return x;
  };
  const edge = (e: Equality | undefined): [ScopeTable, ScopeTable] | undefined => {
    if (!e || !inSet.has(e.a.table) || !inSet.has(e.b.table)) return undefined;
    const ra = routingOf.get(e.a.table);
    const rb = routingOf.get(e.b.table);
    if (!ra || !rb || !isVindexColumn(e.a.table, ra, e.a.column) || !isVindexColumn(e.b.table, rb, e.b.column)) return undefined;
    if (ra.vindexName !== rb.vindexName || ra.affinity !== rb.affinity || ra.routable === false || rb.routable === false) return undefined;
    return [e.a.table, e.b.table];
  };
  const union = (p: [ScopeTable, ScopeTable] | undefined): void => {
    if (p) parent.set(find(p[0]), find(p[1]));
  };
  let seenSharded = false;
  for (const [i, st] of steps.entries()) {
    if (st.op === "left") {
      if (st.routing.kind === "sharded") {
        if (!seenSharded) return false;
        // Only an equality in this LEFT JOIN's own condition, to a table before it, keeps its null-extension per shard exact.
        const earlier = new Set(steps.slice(0, i).map((s) => s.table));
        const own = [...st.on.map((c) => columnEquality(scope, c)), ...st.using].filter(
          (e): e is Equality => e !== undefined && ((e.a.table === st.table && earlier.has(e.b.table)) || (e.b.table === st.table && earlier.has(e.a.table))),
        );
        const links = own.map(edge).filter((x) => x !== undefined);
        if (links.length === 0) return false;
        for (const l of links) union(l);
      }
    } else {
      for (const c of st.on) union(edge(columnEquality(scope, c)));
      for (const u of st.using) union(edge(u));
    }
    if (st.routing.kind === "sharded") seenSharded = true;
  }
  for (const c of where) union(edge(columnEquality(scope, c)));
  const roots = new Set(sharded.map((s) => find(s.table)));
  return roots.size <= 1;
}

/** The route of a co-located join: by the first sharded table a WHERE conjunct pins to one shard (or a few). */
export function colocatedRoute(
  ps: ParsedStatement,
  j: JoinAnalysis,
  steps: readonly JoinStep[] = j.steps,
  where: readonly Node[] = j.where,
): { step: JoinStep | undefined; choice: RouteChoice } {
  let best: { step: JoinStep; choice: RouteChoice } | undefined;
  for (const st of steps) {
    if (st.routing.kind !== "sharded") continue;
    const choice = chooseRouteBy(
      ps,
      where,
      (n) => {
        const r = j.scope.resolve(n);
        return r !== undefined && r.table === st.table && isVindexColumnName(st.routing, r.column);
      },
      st.routing,
    );
    if (choice.opcode === "equal") return { step: st, choice };
    if (!best || (best.choice.opcode === "scatter" && choice.opcode === "in")) best = { step: st, choice };
  }
  if (best) return best;
  return { step: undefined, choice: { opcode: steps.every((s) => s.routing.kind === "unsharded") ? "unsharded" : "reference" } };
}

export function columnSql(c: ResolvedColumn): string {
  return `${quoteIdent(c.table.ref.alias)}.${quoteIdent(c.column)}`;
}
