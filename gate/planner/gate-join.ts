// The gate-side join of tables that are not co-located (join.ts decides that): the tables split
// into groups that are each co-located, each group becomes one query, and GateJoin pairs the
// groups' rows by a column equality, looking the right side up by the left side's keys.

import type { Node, SelectStmt } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { Collation, SortKey } from "../engine/compare.ts";
import { Distinct } from "../engine/distinct.ts";
import { GateJoin, JOIN_KEYS_SLOT, Project, Sort } from "../engine/join.ts";
import { Limit } from "../engine/limit.ts";
import type { Primitive } from "../engine/primitive.ts";
import { Route } from "../engine/route.ts";
import type { ValueExpr } from "../engine/values.ts";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate, type Part } from "../sql/template.ts";
import { containsAggregate, declaredCollation, hasWindow, limitValues, orderTerms, selectItems, textOf, unsupported, valueExprOf } from "./ast.ts";
import { vindexRouteFields } from "./routing.ts";
import type { ResolvedColumn, ScopeTable } from "./scope.ts";
import { scopedKey } from "./expr-key.ts";
import { parseOne } from "../sql/parse.ts";
import { affinityClass, colocated, colocatedRoute, columnEquality, columnSql, isVindexColumn, tablesOf, type JoinAnalysis, type JoinStep } from "./join.ts";
import { planGateAggregate } from "./gate-join-aggregate.ts";

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
