// Joins. When every row of the join can only pair rows that live on the same shard (co-located:
// sharded tables joined on equal vindex columns, plus reference tables), the whole statement is
// routed like a single-table one and merged the same way. Otherwise the gate joins: the tables
// split into groups that are each co-located, each group becomes one query, and GateJoin pairs
// the groups' rows by a column equality, looking the right side up by the left side's keys.

import type { Node, SelectStmt } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { Collation, SortKey } from "../engine/compare.ts";
import { Distinct } from "../engine/distinct.ts";
import { GateJoin, JOIN_KEYS_SLOT, Partials, Project, Sort, type PartialFn } from "../engine/join.ts";
import { Aggregate, type AggOutput } from "../engine/aggregate.ts";
import { compileHaving, type HavingOperand } from "./having.ts";
import { Limit } from "../engine/limit.ts";
import type { Primitive } from "../engine/primitive.ts";
import { Route } from "../engine/route.ts";
import type { Affinity, ValueExpr } from "../engine/values.ts";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import { sliceTemplate, type Part } from "../sql/template.ts";
import {
  conjuncts,
  containsAggregate,
  declaredCollation,
  funcName,
  hasWindow,
  isAggregateCall,
  kw,
  limitValues,
  orderTerms,
  selectItems,
  splitCollate,
  tableRef,
  textOf,
  unsupported,
  valueExprOf,
  type TableRef,
} from "./ast.ts";
import { chooseRouteBy, isVindexColumnName, tableRouting, vindexRouteFields, type RouteChoice, type TableRouting } from "./routing.ts";
import { Scope, type ResolvedColumn, type ScopeTable } from "./scope.ts";
import { scopedKey } from "./expr-key.ts";
import { walkColumnRefs } from "./column-refs.ts";
import { parseOne } from "../sql/parse.ts";

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
function tablesOf(scope: Scope, n: Node): Set<ScopeTable> | undefined {
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
function columnEquality(scope: Scope, n: Node): Equality | undefined {
  if (n.type !== "binary_expr") return undefined;
  const op = kw(n.operator);
  if (op !== "=" && op !== "==") return undefined;
  const a = scope.resolve(n.left);
  const b = scope.resolve(n.right);
  return a?.declared && b?.declared && a.table !== b.table ? { a, b } : undefined;
}

function affinityClass(scope: Scope, c: ResolvedColumn): "numeric" | "text" | "blob" {
  const a: Affinity = scope.affinityOfColumn(c);
  return a === "TEXT" ? "text" : a === "BLOB" ? "blob" : "numeric";
}

function isVindexColumn(t: ScopeTable, routing: TableRouting, column: string): boolean {
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

function columnSql(c: ResolvedColumn): string {
  return `${quoteIdent(c.table.ref.alias)}.${quoteIdent(c.column)}`;
}

interface Group {
  readonly steps: JoinStep[];
  /** Conjuncts the group's own query applies. */
  readonly where: Node[];
  /** Columns its query selects. */
  readonly cols: Part[][];
  /** Join keys to earlier groups: this group's column and the earlier column. */
  readonly keys: { mine: ResolvedColumn; theirs: ResolvedColumn }[];
}

/** The gate-side join of tables that are not co-located. */
export function planGateJoin(ps: ParsedStatement, s: SelectStmt, j: JoinAnalysis): Primitive {
  const { scope, steps } = j;
  const exprKeyOf = (n: Node): string => scopedKey(ps, scope, n);
  const clauses = s.clauses as Node[];
  const select = clauses.find((c) => c.type === "select_clause") as Extract<Node, { type: "select_clause" }> | undefined;
  const tablesNote =
    "tables joined at the gate (not sharded together: join sharded tables on their vindex columns, or use reference tables, to run the join on the shards)";
  const orderBy = clauses.find((c) => c.type === "order_by_clause");
  const grouped =
    clauses.some((c) => c.type === "group_by_clause" || c.type === "having_clause") ||
    (select?.columns?.items as Node[] | undefined)?.some((i) => containsAggregate(i)) === true ||
    (orderBy !== undefined && containsAggregate(orderBy));
  if (hasWindow(s)) throw unsupported("VD1059", `window functions over ${tablesNote}`);

  // Groups: consecutive steps that can run as one query. A later group can take more tables
  // only if it was inner-joined (so joining inside it first is the same join).
  const groups: Group[] = [];
  const groupOf = new Map<ScopeTable, number>();
  for (const st of steps) {
    const g = groups[groups.length - 1];
    if (g) {
      const candidate = [...g.steps, st];
      const tables = new Set(candidate.map((x) => x.table));
      const onInside =
        st.on.every((c) => {
          const ts = tablesOf(scope, c);
          return ts !== undefined && [...ts].every((t) => tables.has(t));
        }) && st.using.every((u) => tables.has(u.a.table));
      const whereInside = j.where.filter((c) => {
        const ts = tablesOf(scope, c);
        return ts !== undefined && ts.size > 0 && [...ts].every((t) => tables.has(t));
      });
      if (onInside && (groups.length === 1 || g.steps[0]?.op === "inner") && colocated(candidate, scope, whereInside)) {
        g.steps.push(st);
        groupOf.set(st.table, groups.length - 1);
        continue;
      }
    }
    groups.push({ steps: [st], where: [], cols: [], keys: [] });
    groupOf.set(st.table, groups.length - 1);
  }
  if (groups.length < 2) throw new VtError("INTERNAL", "a gate join of one group");
  const groupsOf = (c: Node): Set<number> | undefined => {
    const ts = tablesOf(scope, c);
    return ts && new Set([...ts].map((t) => groupOf.get(t) as number));
  };
  const nullExtended = (g: number): boolean => g > 0 && groups[g]?.steps[0]?.op === "left";

  /** Places one condition: in one group's query, or as a join key of the later group. */
  const place = (c: Node, fromOn: { group: number; left: boolean } | undefined): void => {
    const gs = groupsOf(c);
    if (!gs)
      throw unsupported(
        "VD1060",
        `a condition naming something other than a table column (a result alias?), with ${tablesNote}: ${textOf(ps, c).slice(0, 60)}`,
      );
    if (gs.size === 0) {
      (groups[fromOn?.group ?? 0] as Group).where.push(c);
      return;
    }
    const list = [...gs].sort((a, b) => a - b);
    if (list.length === 1) {
      const g = list[0] as number;
      if (fromOn) {
        if (g === fromOn.group) (groups[g] as Group).where.push(c);
        else if (fromOn.left) throw unsupported("VD1061", `a LEFT JOIN condition on the left table alone, with ${tablesNote}`);
        else if (nullExtended(g)) throw unsupported("VD1062", `a condition on the right side of a LEFT JOIN, with ${tablesNote}`);
        else (groups[g] as Group).where.push(c);
        return;
      }
      if (nullExtended(g)) throw unsupported("VD1063", `a WHERE condition on the right side of a LEFT JOIN, with ${tablesNote}`);
      (groups[g] as Group).where.push(c);
      return;
    }
    const eq = columnEquality(scope, c);
    const later = list[list.length - 1] as number;
    if (list.length === 2 && eq && (fromOn ? fromOn.group === later : !nullExtended(later))) {
      const mine = groupOf.get(eq.a.table) === later ? eq.a : eq.b;
      const theirs = mine === eq.a ? eq.b : eq.a;
      (groups[later] as Group).keys.push({ mine, theirs });
      return;
    }
    throw unsupported("VD1064", `a condition across ${tablesNote} other than column = column (${textOf(ps, c).slice(0, 60)})`);
  };
  for (const [gi, g] of groups.entries()) {
    const first = g.steps[0] as JoinStep;
    if (gi > 0) {
      for (const c of first.on) place(c, { group: gi, left: first.op === "left" });
      for (const u of first.using) {
        const mine = groupOf.get(u.a.table) === gi ? u.a : u.b;
        g.keys.push({ mine, theirs: mine === u.a ? u.b : u.a });
      }
    }
  }
  for (const c of j.where) place(c, undefined);
  for (const [gi, g] of groups.entries()) {
    if (gi === 0) continue;
    if (g.keys.length === 0) {
      throw unsupported("VD1065", `a join with no column = column condition between ${tablesNote} (a cross join across shards)`);
    }
    for (const k of g.keys) {
      if (!k.mine.declared || !k.theirs.declared) throw unsupported("VD1066", `joining on a column that is not declared (rowid), with ${tablesNote}`);
      if (affinityClass(scope, k.mine) !== affinityClass(scope, k.theirs)) {
        throw unsupported(
          "VD1067",
          `joining ${columnSql(k.theirs)} with ${columnSql(k.mine)}: their affinities differ, so SQLite would convert values while comparing (${tablesNote})`,
        );
      }
      const coll = (c: ResolvedColumn): Collation => declaredCollation(c.table.info?.sql, c.column, parseOne);
      if (coll(k.mine) !== "BINARY" || coll(k.theirs) !== "BINARY")
        throw unsupported("VD1068", `joining on a column with a non-BINARY collation, with ${tablesNote}`);
    }
    // Look up by the vindex column when one of the keys is it: the lookup then reaches only its shards.
    const vi = g.keys.findIndex((k) => g.steps.some((st) => st.table === k.mine.table && isVindexColumn(st.table, st.routing, k.mine.column)));
    if (vi > 0) g.keys.unshift(...g.keys.splice(vi, 1));
  }

  // Output columns, each computed by one group's query.
  const addCol = (g: number, parts: Part[]): number => {
    const group = groups[g] as Group;
    group.cols.push(parts);
    return group.cols.length - 1;
  };
  /** The joined rows: every group's columns side by side (call once every column is added). */
  const buildJoin = (): { plan: Primitive; offsets: number[] } => {
    // Key columns each group needs, then the queries.
    const keyCols = groups.map((g) => g.keys.map((k) => ({ mine: addCol(groups.indexOf(g), [columnSql(k.mine)]), theirs: k.theirs })));
    const theirCol = (c: ResolvedColumn): [number, number] => {
      const g = groupOf.get(c.table) as number;
      const sql = columnSql(c);
      const group = groups[g] as Group;
      let at = group.cols.findIndex((p) => p.length === 1 && p[0] === sql);
      if (at < 0) at = addCol(g, [sql]);
      return [g, at];
    };
    const theirs = keyCols.map((ks) => ks.map((k) => theirCol(k.theirs)));
    const routes = groups.map((g, gi) => groupRoute(ps, j, g, gi));
    const offsets: number[] = [];
    let width = 0;
    for (const g of groups) {
      offsets.push(width);
      width += g.cols.length;
    }
    let plan: Primitive = routes[0] as Route;
    for (let gi = 1; gi < groups.length; gi++) {
      const group = groups[gi] as Group;
      const their = (theirs[gi] ?? []).map(([g, c]) => (offsets[g] ?? 0) + c);
      plan = new GateJoin({
        left: plan,
        right: routes[gi] as Route,
        leftKeys: their,
        rightKeys: (keyCols[gi] ?? []).map((k) => k.mine),
        outer: group.steps[0]?.op === "left",
        rightWidth: group.cols.length,
      });
    }
    return { plan, offsets };
  };
  const limited = (p: Primitive): Primitive => {
    const lc = clauses.find((c) => c.type === "limit_clause") as Extract<Node, { type: "limit_clause" }> | undefined;
    if (!lc) return p;
    const { count, offset } = limitValues(ps, lc);
    return new Limit(p, count, offset);
  };
  if (grouped) return limited(planGateAggregate(ps, s, scope, groupOf, addCol, buildJoin, tablesNote));

  const items = selectItems(s);
  /** Output column → [group, column in that group's query]. */
  const outputs: [number, number][] = [];
  const names: string[] = [];
  const collations: Collation[] = [];
  /** The column each output shows, when it is a plain column. */
  const shows: (ResolvedColumn | undefined)[] = [];
  /** Per output: the alias it has, or the column name a `*` gave it. */
  const aliasLike: (string | undefined)[] = [];
  /** Select item index → its first output column (or -1 for a star item). */
  const itemColumn: number[] = [];
  for (const item of items) {
    const e = item.expr;
    if (item.star) {
      if (steps.some((st) => st.using.length > 0) && e.type === "all_columns")
        throw unsupported("VD1069", `SELECT * with USING, with ${tablesNote} (name the columns)`);
      itemColumn.push(-1);
      for (const c of scope.star(e)) {
        const g = groupOf.get(c.table) as number;
        outputs.push([g, addCol(g, [columnSql({ table: c.table, column: c.column, declared: true })])]);
        names.push(c.column);
        aliasLike.push(c.column);
        shows.push({ table: c.table, column: c.column, declared: true });
        collations.push(declaredCollation(c.table.info?.sql, c.column, parseOne));
      }
      continue;
    }
    const gs = groupsOf(e);
    if (!gs) throw unsupported("VD1070", `this select item (${textOf(ps, e).slice(0, 60)}) with ${tablesNote}`);
    if (gs.size > 1) throw unsupported("VD1071", `an expression over columns of ${tablesNote} (${textOf(ps, e).slice(0, 60)})`);
    const g = gs.size === 0 ? 0 : ([...gs][0] as number);
    // A missing right row reads as NULLs at the gate: only a plain column is NULL then (typeof() is 'null', coalesce() is not NULL).
    if (nullExtended(g) && !scope.resolve(e)?.declared)
      throw unsupported("VD1072", `an expression over the right side of a LEFT JOIN, with ${tablesNote} (select the column itself)`);
    itemColumn.push(outputs.length);
    outputs.push([g, addCol(g, sliceTemplate(ps, ...rangeOf(e)))]);
    const r = scope.resolve(e);
    names.push(item.alias ?? (r?.declared ? r.column : undefined) ?? textOf(ps, e));
    aliasLike.push(item.alias);
    shows.push(r);
    collations.push(scope.collation(e));
  }
  const visible = outputs.length;
  const distinct = select?.modifiers.some((m) => m.type === "select_distinct") ?? false;

  // ORDER BY: an output column (position, alias, or the same expression), else a hidden column.
  const ob = clauses.find((c) => c.type === "order_by_clause") as Extract<Node, { type: "order_by_clause" }> | undefined;
  const keys: SortKey[] = [];
  for (const ot of orderTerms(ob)) {
    const term = ot.expr;
    let column = -1;
    const pos = term.type === "number_literal" && /^\d+$/.test(term.text) ? Number(term.text) : undefined;
    if (pos !== undefined) {
      if (pos < 1 || pos > visible) throw new VtError("INVALID_ARGUMENT", `ORDER BY term ${pos} is out of range (1..${visible})`);
      column = pos - 1;
    } else {
      if (term.type === "identifier") {
        // A result alias, or a column a `*` expanded to (SQLite names those like aliases), in select order.
        column = aliasLike.findIndex((a) => a?.toLowerCase() === term.name.toLowerCase());
      }
      if (column < 0) {
        const wanted = exprKeyOf(term);
        const i = items.findIndex((it) => itemColumn[items.indexOf(it)] !== -1 && exprKeyOf(it.expr) === wanted);
        if (i >= 0) column = itemColumn[i] ?? -1;
      }
      if (column < 0) {
        const r = scope.resolve(term);
        if (r) column = shows.findIndex((x) => x !== undefined && x.table === r.table && x.column.toLowerCase() === r.column.toLowerCase());
      }
    }
    if (column < 0) {
      if (distinct) throw unsupported("VD1013", "SELECT DISTINCT ordered by a term that is not selected");
      if (valueExprOf(ps, term)) continue; // a constant does not order anything
      const gs = groupsOf(term);
      if (!gs || gs.size > 1) throw unsupported("VD1073", `ORDER BY an expression over several ${tablesNote}`);
      const g = gs.size === 0 ? 0 : ([...gs][0] as number);
      if (nullExtended(g) && !scope.resolve(term)?.declared)
        throw unsupported("VD1074", `ORDER BY an expression over the right side of a LEFT JOIN, with ${tablesNote}`);
      column = outputs.length;
      outputs.push([g, addCol(g, sliceTemplate(ps, ...rangeOf(term)))]);
      names.push(`_vtg_ord${column}`);
      shows.push(undefined);
      collations.push(scope.collation(term));
    }
    const collation = ot.collation ?? collations[column] ?? "BINARY";
    keys.push({ column, desc: ot.desc, nullsFirst: ot.nullsFirst, collation });
  }

  const { plan: joined, offsets } = buildJoin();
  let plan: Primitive = new Project(
    joined,
    outputs.map(([g, c]) => (offsets[g] ?? 0) + c),
    names,
  );
  if (distinct) plan = new Distinct(plan, collations.slice(0, visible));
  if (keys.length > 0 || outputs.length > visible) plan = new Sort(plan, keys, outputs.length - visible);
  return limited(plan);
}

/** One group's query: its columns, its tables (joined as written), its conditions and, after the first, the key lookup. */
function groupRoute(ps: ParsedStatement, j: JoinAnalysis, g: Group, gi: number): Route {
  const parts: Part[] = [...((ps.withPrefix ?? []) as Part[]), "SELECT "];
  if (g.cols.length === 0) g.cols.push(["1"]);
  g.cols.forEach((c, i) => {
    parts.push(...(i > 0 ? [", "] : []), ...c, ` AS _vtg_c${i}`);
  });
  parts.push(" FROM ");
  g.steps.forEach((st, i) => {
    if (i === 0) parts.push(...sliceTemplate(ps, ...rangeOf(st.node)));
    else parts.push(...sliceTemplate(ps, (g.steps[i - 1] as JoinStep).end, st.end));
  });
  const conds: Part[][] = g.where.map((c) => ["(", ...sliceTemplate(ps, ...rangeOf(c)), ")"]);
  const lookup = gi > 0 ? g.keys[0] : undefined;
  if (lookup) conds.unshift([columnSql(lookup.mine), " IN (", { values: (b) => b.subquery(JOIN_KEYS_SLOT).map((r) => r[0] ?? null), empty: "NULL" }, ")"]);
  conds.forEach((c, i) => {
    parts.push(i === 0 ? " WHERE " : " AND ", ...c);
  });
  const first = g.steps[0] as JoinStep;
  const table = first.table.ref.name;
  const lookupStep = lookup ? g.steps.find((st) => st.table === lookup.mine.table && isVindexColumn(st.table, st.routing, lookup.mine.column)) : undefined;
  if (lookupStep) {
    return new Route({
      opcode: "in",
      table: lookupStep.table.ref.name,
      template: parts,
      kind: "read",
      ...vindexRouteFields(lookupStep.routing, []),
      valuesSlot: JOIN_KEYS_SLOT,
    });
  }
  const { step, choice } = colocatedRoute(ps, j, g.steps, g.where);
  const values: readonly ValueExpr[] | undefined = choice.values;
  return new Route({
    opcode: choice.opcode,
    table: step?.table.ref.name ?? table,
    template: parts,
    kind: "read",
    ...(step ? vindexRouteFields(step.routing, values) : {}),
  });
}

const JOIN_AGGREGATES = new Set(["count", "sum", "total", "min", "max", "avg", "group_concat"]);

/**
 * Aggregates over a gate join: GROUP BY plain columns, aggregates of plain columns (or `*`).
 * Each group's query adds the columns (and typeof() of summed ones, since 2.0 arrives as 2);
 * Partials turns every joined row into a one-row partial, and Aggregate combines them exactly as
 * it combines shards' partials.
 */
function planGateAggregate(
  ps: ParsedStatement,
  s: SelectStmt,
  scope: Scope,
  groupOf: ReadonlyMap<ScopeTable, number>,
  addCol: (g: number, parts: Part[]) => number,
  buildJoin: () => { plan: Primitive; offsets: number[] },
  note: string,
): Primitive {
  const clauses = s.clauses as Node[];
  const select = clauses.find((c) => c.type === "select_clause") as Extract<Node, { type: "select_clause" }> | undefined;
  if (select?.modifiers.some((m) => m.type === "select_distinct")) throw unsupported("VD1012", "SELECT DISTINCT with aggregates");
  const exprKeyOf = (n: Node): string => scopedKey(ps, scope, n);
  const items = selectItems(s);
  if (items.some((i) => i.star)) throw unsupported("VD1014", "* with aggregates");
  const plain = (n: Node, what: string): ResolvedColumn => {
    const r = scope.resolve(n);
    if (!r?.declared) throw unsupported("VD1075", `${what} other than a plain column, over ${note}`);
    return r;
  };
  type Ref = [number, number];
  const valueRef = (r: ResolvedColumn): Ref => {
    const g = groupOf.get(r.table) as number;
    return [g, addCol(g, [columnSql(r)])];
  };
  const typeRef = (r: ResolvedColumn): Ref => {
    const g = groupOf.get(r.table) as number;
    return [g, addCol(g, ["typeof(", columnSql(r), ")"])];
  };
  /** Partial columns, resolved to joined-row columns once the join's layout is known. */
  const partials: ((at: (r: Ref) => number) => PartialFn)[] = [];
  const push = (f: (at: (r: Ref) => number) => PartialFn): number => partials.push(f) - 1;

  // GROUP BY terms: positions and aliases name select items; each must be a plain column.
  const gb = clauses.find((c) => c.type === "group_by_clause") as Extract<Node, { type: "group_by_clause" }> | undefined;
  const groupTerms = ((gb?.columns.items ?? []) as Node[]).map((g) => {
    const pos = g.type === "number_literal" && /^\d+$/.test(g.text) ? Number(g.text) : undefined;
    if (pos !== undefined) {
      const item = items[pos - 1];
      if (!item) throw new VtError("INVALID_ARGUMENT", `GROUP BY term ${pos} is out of range`);
      return item.expr;
    }
    if (g.type === "identifier" && !scope.isColumn(g.name)) {
      const aliased = items.find((i) => i.alias?.toLowerCase() === g.name.toLowerCase());
      if (aliased) return aliased.expr;
    }
    return g;
  });
  const groupCols = groupTerms.map((g) => {
    const { expr, collation } = splitCollate(g);
    const r = plain(expr, "GROUP BY");
    const ref = valueRef(r);
    push((at) => ({ kind: "value", column: at(ref) }));
    return { r, collation: scope.collation(expr, collation) };
  });

  const outputs: AggOutput[] = [];
  const names: string[] = [];
  /** The output of one aggregate call, adding the partial columns it needs. */
  const aggregateOutput = (e: Extract<Node, { type: "func_call" }>): AggOutput => {
    const name = funcName(e) ?? "";
    if (!JOIN_AGGREGATES.has(name)) throw unsupported("VD1076", `${name}() over ${note}`);
    if (e.filter) throw unsupported("VD1016", "FILTER on aggregates");
    const fa = e.args?.expr;
    const args = fa?.type === "func_args" ? (fa.args.items as Node[]) : [];
    const star = args.length === 0 || (args.length === 1 && args[0]?.type === "all_columns");
    if (star) {
      if (name !== "count") throw unsupported("VD1077", `${name}(*)`);
      return { kind: "agg", fn: "count", column: push(() => ({ kind: "one" })) };
    }
    const x = plain(args[0] as Node, `the argument of ${name}()`);
    const v = valueRef(x);
    if (fa?.type === "func_args" && fa.distinctKw) {
      if (name === "group_concat" || args.length !== 1) throw unsupported("VD1017", `${name}(DISTINCT …)`);
      const t = typeRef(x);
      const column = push((at) => ({ kind: "value", column: at(v) }));
      const typeColumn = push((at) => ({ kind: "type", column: at(t) }));
      return {
        kind: "agg",
        fn: "distinct",
        inner: name as "count" | "sum" | "total" | "avg" | "min" | "max",
        column,
        typeColumn,
        collation: scope.collation(args[0] as Node),
      };
    }
    if (args.length > 1 && name !== "group_concat") throw unsupported("VD1078", `${name}() with several arguments`);
    switch (name) {
      case "count":
        return { kind: "agg", fn: "count", column: push((at) => ({ kind: "notNull", column: at(v) })) };
      case "min":
      case "max":
        return { kind: "agg", fn: name, column: push((at) => ({ kind: "value", column: at(v) })), collation: scope.collation(args[0] as Node) };
      case "sum":
      case "total":
      case "avg": {
        // Each joined row is a one-value partial: an integer goes to the exact part, a REAL to the rest.
        const t = typeRef(x);
        const what = `${name}()`;
        const ints = [{ column: push((at) => ({ kind: "integer", column: at(v), typeColumn: at(t) })), shift: 0 }];
        const rest = push((at) => ({ kind: "nonInteger", column: at(v), typeColumn: at(t), what }));
        const restType = push((at) => ({ kind: "type", column: at(t) }));
        const count = push((at) => ({ kind: "notNull", column: at(v) }));
        return { kind: "agg", fn: name, parts: { ints, rest, restType, count } };
      }
      default: {
        const sep = args[1];
        const separator = sep === undefined ? "," : sep.type === "string_literal" ? sep.value : undefined;
        if (separator === undefined || args.length > 2) throw unsupported("VD1019", "group_concat with a separator other than a string literal");
        const t = typeRef(x);
        return { kind: "agg", fn: "group_concat", column: push((at) => ({ kind: "text", column: at(v), typeColumn: at(t) })), separator };
      }
    }
  };
  for (const item of items) {
    const e = item.expr;
    const r0 = scope.resolve(e);
    names.push(item.alias ?? (r0?.declared ? r0.column : undefined) ?? textOf(ps, e));
    if (!isAggregateCall(e) || e.type !== "func_call") {
      if (containsAggregate(e)) throw unsupported("VD1079", `an expression around an aggregate, over ${note}`);
      const r = plain(e, "a selected expression");
      const k = groupCols.findIndex((g) => g.r.table === r.table && g.r.column === r.column);
      if (k < 0) throw unsupported("VD1021", `a selected column that is not in GROUP BY (${textOf(ps, e)})`);
      outputs.push({ kind: "group", column: k });
      continue;
    }
    outputs.push(aggregateOutput(e));
  }
  const visible = outputs.length;

  // HAVING over the combined groups: comparisons of aggregates, grouped columns, literals and placeholders.
  const operand = (n: Node): HavingOperand => {
    const v = valueExprOf(ps, n);
    if (v) return v;
    if (isAggregateCall(n) && n.type === "func_call") {
      const same = items.findIndex((i) => exprKeyOf(i.expr) === exprKeyOf(n));
      if (same >= 0) return { column: same };
      outputs.push(aggregateOutput(n));
      return { column: outputs.length - 1 };
    }
    if (n.type === "identifier" && !scope.isColumn(n.name)) {
      const aliased = items.findIndex((i) => i.alias?.toLowerCase() === n.name.toLowerCase());
      if (aliased >= 0 && containsAggregate((items[aliased] as { expr: Node }).expr)) return { column: aliased };
    }
    const r = scope.resolve(n);
    const k = r?.declared ? groupCols.findIndex((g) => g.r.table === r.table && g.r.column === r.column) : -1;
    if (!r || k < 0) throw unsupported("VD1080", `HAVING on ${textOf(ps, n)} (only aggregates, grouped columns, literals and placeholders), over ${note}`);
    let column = outputs.findIndex((o, i) => i < visible && o.kind === "group" && o.column === k);
    if (column < 0) {
      outputs.push({ kind: "group", column: k });
      column = outputs.length - 1;
    }
    const affinity = scope.affinity(n);
    return { column, collation: scope.collation(n), ...(affinity ? { affinity } : {}) };
  };
  const havingClause = clauses.find((c) => c.type === "having_clause") as Extract<Node, { type: "having_clause" }> | undefined;
  const having = havingClause ? compileHaving(ps, havingClause.expr, operand, `, over ${note}`) : undefined;

  // ORDER BY over the output: positions, aliases, or an expression written as selected.
  const ob = clauses.find((c) => c.type === "order_by_clause") as Extract<Node, { type: "order_by_clause" }> | undefined;
  const order: SortKey[] = orderTerms(ob).map(({ expr: term, desc, nullsFirst, collation }) => {
    const pos = term.type === "number_literal" && /^\d+$/.test(term.text) ? Number(term.text) : undefined;
    let column = pos !== undefined ? pos - 1 : -1;
    if (pos === undefined) {
      // A result alias wins over a column of the same name.
      if (term.type === "identifier") column = items.findIndex((i) => i.alias?.toLowerCase() === term.name.toLowerCase());
      const wanted = exprKeyOf(term);
      if (column < 0) column = items.findIndex((i) => exprKeyOf(i.expr) === wanted);
    }
    if (column < 0 || column >= items.length) throw unsupported("VD1081", `ORDER BY an expression that is not selected, with aggregates over ${note}`);
    const item = items[column] as { expr: Node };
    return { column, desc, nullsFirst, collation: collation ?? scope.collation(item.expr) };
  });

  const { plan, offsets } = buildJoin();
  const at = ([g, c]: Ref): number => (offsets[g] ?? 0) + c;
  const fns = partials.map((f) => f(at));
  return new Aggregate(
    new Partials(plan, fns),
    groupCols.map((_, i) => i),
    groupCols.map((g) => g.collation),
    outputs,
    names,
    order,
    having,
    visible,
  );
}
