// Queries of the differential tests: row SELECTs (point, IN, scatter; ORDER BY / LIMIT) and
// aggregates over shards (GROUP BY, ORDER BY over the grouped output, LIMIT), as data, with how
// each must be compared with the reference.

import fc from "fast-check";
import type { Collation } from "../../gate/engine/compare.ts";
import { isNumeric, isText, paramStyleArb, SqlWriter, valArb, type ColType, type ParamStyle, type Schema, type Val } from "./sql-gen.ts";
import { hasExists, renderWhere, whereArb, type Rendered, type Where } from "./statement-gen.ts";

export type Dir = "" | " ASC" | " DESC";
export type Nulls = "" | " NULLS FIRST" | " NULLS LAST";

export interface LimitSpec {
  readonly count: Val;
  readonly offset: Val | null;
  /** `LIMIT offset, count` instead of `LIMIT count OFFSET offset`. */
  readonly comma: boolean;
}

const smallInt = (min: number, max: number): fc.Arbitrary<Val> => fc.record({ v: fc.integer({ min, max }), param: fc.boolean() });

export const limitArb: fc.Arbitrary<LimitSpec> = fc.record({
  count: smallInt(-1, 8),
  offset: fc.option(smallInt(-1, 5), { nil: null }),
  comma: fc.boolean(),
});

function renderLimit(w: SqlWriter, l: LimitSpec | null): string {
  if (!l) return "";
  if (l.offset && l.comma) return ` LIMIT ${w.val(l.offset)}, ${w.val(l.count)}`;
  return ` LIMIT ${w.val(l.count)}${l.offset ? ` OFFSET ${w.val(l.offset)}` : ""}`;
}

/** How a query's result must match the reference's. */
export interface QueryCheck extends Rendered {
  /** ORDER BY fixes the order: arrays must be equal. */
  readonly ordered: boolean;
  /** Output columns of REAL sum / total / avg → the column they aggregate (compared with a tolerance). */
  readonly approx: ReadonlyMap<number, string>;
  /** Output columns compared folded by a collation (SQLite may return any of the equal texts). */
  readonly fold: ReadonlyMap<number, Collation>;
  /** Output columns of group_concat → their separator (the parts compared as multisets). */
  readonly split?: ReadonlyMap<number, string>;
  /** LIMIT without ORDER BY: any `n` rows of the unlimited result; this is that result's SQL. */
  readonly unlimited: Rendered | null;
}

function typeIn(s: Schema, col: string): ColType {
  return s.columns.find((c) => c.name === col)?.type ?? "INTEGER";
}

/** The declared collation of a column, if not BINARY. */
function declared(s: Schema, col: string): Collation | undefined {
  const t = typeIn(s, col);
  return t === "NOCASE" || t === "RTRIM" ? t : undefined;
}

// ---------------------------------------------------------------- row queries

export type ItemFn = "none" | "typeof" | "length" | "expr" | "sub";
export interface Item {
  readonly col: string;
  readonly fn: ItemFn;
  readonly alias: boolean;
}

export type OrderFn = "length" | "lower" | "abs" | "typeof" | "isnull" | "eqParam";
export type OrderRef =
  | { readonly k: "col"; readonly col: string }
  | { readonly k: "pos"; readonly i: number }
  | { readonly k: "alias"; readonly i: number }
  | { readonly k: "expr"; readonly col: string; readonly fn: OrderFn; readonly val: Val };

export interface OrderTerm {
  readonly ref: OrderRef;
  readonly dir: Dir;
  readonly nulls: Nulls;
  readonly nocase: boolean;
}

export interface RowsQuery {
  readonly k: "rows";
  readonly where: Where;
  readonly star: boolean;
  readonly items: readonly Item[];
  /** null: no ORDER BY. Otherwise the terms, then `, id` (the tie-break that makes the order total). */
  readonly order: readonly OrderTerm[] | null;
  readonly tieDesc: boolean;
  readonly limit: LimitSpec | null;
  /** `FROM t AS tt`, with columns qualified `tt.` in WHERE. */
  readonly tableAlias: boolean;
  /**
   * SELECT DISTINCT: ORDER BY may name only selected terms (others become positions) and the
   * tie-break is every output position; no LIMIT without ORDER BY.
   */
  readonly distinct: boolean;
  readonly style: ParamStyle;
}

const dirArb = fc.constantFrom<Dir>("", " ASC", " DESC");
const nullsArb = fc.constantFrom<Nulls>("", "", " NULLS FIRST", " NULLS LAST");

export function rowsQueryArb(s: Schema, routes?: readonly Where["route"][]): fc.Arbitrary<RowsQuery> {
  const cols = ["id", ...s.columns.map((c) => c.name)];
  const col = fc.constantFrom(...cols);
  const ref: fc.Arbitrary<OrderRef> = fc.oneof(
    { weight: 2, arbitrary: col.map((c) => ({ k: "col" as const, col: c })) },
    { weight: 2, arbitrary: fc.nat({ max: 5 }).map((i) => ({ k: "pos" as const, i })) },
    { weight: 2, arbitrary: fc.nat({ max: 5 }).map((i) => ({ k: "alias" as const, i })) },
    {
      weight: 1,
      arbitrary: fc.record({
        k: fc.constant("expr" as const),
        col,
        fn: fc.constantFrom<OrderFn>("length", "lower", "abs", "typeof", "isnull", "eqParam"),
        val: fc.record({ v: fc.integer({ min: -1, max: 3 }), param: fc.constant(true) }),
      }),
    },
  );
  return fc.record({
    k: fc.constant("rows" as const),
    where: whereArb(s, routes),
    star: fc.boolean(),
    items: fc.array(fc.record({ col, fn: fc.constantFrom<ItemFn>("none", "none", "none", "typeof", "length", "expr", "sub"), alias: fc.boolean() }), {
      minLength: 1,
      maxLength: 4,
    }),
    order: fc.option(fc.array(fc.record({ ref, dir: dirArb, nulls: nullsArb, nocase: fc.boolean() }), { maxLength: 3 }), { nil: null, freq: 4 }),
    tieDesc: fc.boolean(),
    limit: fc.option(limitArb, { nil: null }),
    tableAlias: fc.boolean(),
    distinct: fc.constantFrom(false, false, false, true),
    style: paramStyleArb,
  });
}

function itemSql(s: Schema, it: Item, i: number): string {
  const type = typeIn(s, it.col);
  let e = it.col;
  if (it.fn === "typeof") e = `typeof(${it.col})`;
  else if (it.fn === "length") e = `length(${it.col})`;
  // An uncorrelated scalar subquery: max() of a column without a declared collation, else count().
  else if (it.fn === "sub") e = declared(s, it.col) ? `(SELECT count(${it.col}) FROM t)` : `(SELECT max(${it.col}) FROM t WHERE ${it.col} IS NOT NULL)`;
  else if (it.fn === "expr") e = isNumeric(type) ? `${it.col} * 2` : isText(type) ? `${it.col} || '!'` : `hex(${it.col})`;
  // OPEN BUG (gate, gate/planner/subqueries.ts): an unaliased scalar subquery's column is named
  // "(?)" (the bound text), not its SQL text as SQLite names it: subqueries are always aliased.
  return it.alias || it.fn === "sub" ? `${e} AS x${i}` : e;
}

function orderExpr(w: SqlWriter, s: Schema, r: Extract<OrderRef, { k: "expr" }>): string {
  switch (r.fn) {
    case "lower":
      // lower() of a blob is text of its bytes, which need not be UTF-8: JS (and so the gate)
      // sees U+FFFD where SQLite compares the raw bytes. Blobs sort by hex() instead.
      return typeIn(s, r.col) === "BLOB" ? `hex(${r.col})` : `lower(${r.col})`;
    case "isnull":
      return `${r.col} IS NULL`;
    case "eqParam":
      return `(${r.col} = ${w.val(r.val)})`;
    case "abs":
      // abs() of the smallest int64 (a possible id) is an overflow error, which SQLite raises only
      // when it evaluates the term: with LIMIT 0 it does not, and the gate asks shards for more.
      return r.col === "id" ? "abs(id % 1000)" : `abs(${r.col})`;
    default:
      return `${r.fn}(${r.col})`;
  }
}

/** True when ORDER BY `col` names an output column (so SELECT DISTINCT may order by it). */
function selected(q: RowsQuery, col: string): boolean {
  return q.star || q.items.some((it) => it.fn === "none" && it.col === col);
}

function orderSql(w: SqlWriter, s: Schema, q: RowsQuery, width: number): string {
  if (!q.order) return "";
  const terms = q.order.map((t) => {
    const r = t.ref;
    let e: string;
    if (r.k === "col") e = !q.distinct || selected(q, r.col) ? r.col : "1";
    else if (r.k === "expr") e = q.distinct ? String(width) : orderExpr(w, s, r);
    else if (r.k === "alias" && !q.star && q.items[r.i % q.items.length]?.alias) e = `x${r.i % q.items.length}`;
    else e = String((r.i % width) + 1);
    return `${e}${t.nocase ? " COLLATE NOCASE" : ""}${t.dir}${t.nulls}`;
  });
  // The tie-break that makes the order total: id, or under DISTINCT every output column.
  const dir = q.tieDesc ? " DESC" : "";
  if (q.distinct) for (let i = 1; i <= width; i++) terms.push(`${i}${dir}`);
  else terms.push(`id${dir}`);
  return ` ORDER BY ${terms.join(", ")}`;
}

export function renderRowsQuery(s: Schema, q: RowsQuery, fresh: readonly (number | bigint)[]): QueryCheck {
  const width = q.star ? s.columns.length + 1 : q.items.length;
  const build = (withLimit: boolean): Rendered => {
    const w = new SqlWriter(q.style, fresh);
    const list = q.star ? "*" : q.items.map((it, i) => itemSql(s, it, i)).join(", ");
    const from = q.tableAlias ? "t AS tt" : "t";
    const where = renderWhere(w, q.where, q.tableAlias ? "tt." : "");
    // DISTINCT keeps any of several collation-equal rows: LIMIT only where ORDER BY makes it deterministic.
    const limit = withLimit && (ordered || !q.distinct) && !hasExists(q.where) ? renderLimit(w, q.limit) : "";
    return w.finish(`SELECT ${q.distinct ? "DISTINCT " : ""}${list} FROM ${from}${where}${orderSql(w, s, q, width)}${limit}`);
  };
  const ordered = q.order !== null;
  // Under DISTINCT, which of several NOCASE / RTRIM-equal texts a bare column shows is unspecified.
  const fold = new Map<number, Collation>();
  if (q.distinct) {
    const names = q.star ? ["id", ...s.columns.map((c) => c.name)] : q.items.map((it) => (it.fn === "none" ? it.col : ""));
    names.forEach((n, i) => {
      const coll = declared(s, n);
      if (coll && n !== "") fold.set(i, coll);
    });
  }
  return { ...build(true), ordered, approx: new Map(), fold, unlimited: !ordered && q.limit && !q.distinct && !hasExists(q.where) ? build(false) : null };
}

// ---------------------------------------------------------------- aggregates

export type AggFn = "count*" | "count" | "sum" | "total" | "min" | "max" | "avg" | "group_concat";

export interface AggItem {
  readonly fn: AggFn;
  readonly col: string;
  readonly alias: boolean;
  /** `fn(DISTINCT dcol)` (the query's one DISTINCT argument) instead of `fn(col)`. */
  readonly distinct?: boolean;
  /** group_concat's separator; null: the default ','. */
  readonly sep?: string | null;
}

/** A GROUP BY key: a column or an expression over one. */
export interface GroupKey {
  readonly col: string;
  readonly fn: "none" | "length" | "typeof";
  /** How the GROUP BY term names it: by expression, by position, by alias (when selected so). */
  readonly ref: "expr" | "pos" | "alias";
  /** How the ORDER BY term names it. */
  readonly orderRef: "expr" | "pos" | "alias";
  readonly alias: boolean;
  readonly dir: Dir;
  readonly nocase: boolean;
}

export interface AggQuery {
  readonly k: "agg";
  readonly where: Where;
  readonly group: readonly GroupKey[];
  readonly groupFirst: boolean;
  readonly aggs: readonly AggItem[];
  /** null: no ORDER BY. Otherwise aggregate keys (by index into aggs), then every group key. */
  readonly order: readonly { readonly agg: number; readonly ref: "pos" | "alias" | "expr"; readonly dir: Dir; readonly nulls: Nulls }[] | null;
  readonly limit: LimitSpec | null;
  readonly having: Having | null;
  /** The column every DISTINCT aggregate takes (the gate allows one DISTINCT argument per query). */
  readonly dcol?: string;
  readonly style: ParamStyle;
}

/**
 * A HAVING condition the gate evaluates over combined groups: aggregates compared with values,
 * grouped columns compared with literals of their own type, AND / OR / NOT. Not over REAL sums
 * (the last bits may differ) nor min / max of NOCASE / RTRIM columns (any equal text may come back).
 */
export type Having =
  | {
      readonly k: "agg";
      readonly fn: "count*" | "count" | "sum" | "min" | "max";
      readonly col: string;
      readonly op: string;
      readonly val: Val;
      readonly n: number;
    }
  | { readonly k: "group"; readonly at: number; readonly op: string; readonly val: Val }
  | { readonly k: "and" | "or"; readonly a: Having; readonly b: Having }
  | { readonly k: "not"; readonly a: Having };

const cmpArb = fc.constantFrom("=", "<>", "<", "<=", ">", ">=", "IS", "IS NOT");

function havingArb(s: Schema): fc.Arbitrary<Having> {
  const col = fc.constantFrom(...s.columns);
  const atom: fc.Arbitrary<Having> = fc.oneof(
    {
      weight: 3,
      arbitrary: col.chain((c) =>
        fc.record({
          k: fc.constant("agg" as const),
          fn: fc.constantFrom("count*" as const, "count" as const, "sum" as const, "min" as const, "max" as const),
          col: fc.constant(c.name),
          op: cmpArb,
          val: valArb(c.type),
          n: fc.integer({ min: 0, max: 3 }),
        }),
      ),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        k: fc.constant("group" as const),
        at: fc.nat({ max: 1 }),
        op: cmpArb,
        val: fc.record({ v: fc.constant(null), param: fc.constant(false) }),
      }),
    },
  );
  return fc.oneof(
    { weight: 4, arbitrary: atom },
    { weight: 1, arbitrary: fc.record({ k: fc.constantFrom("and" as const, "or" as const), a: atom, b: atom }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("not" as const), a: atom }) },
  );
}

export function aggQueryArb(s: Schema, routes?: readonly Where["route"][]): fc.Arbitrary<AggQuery> {
  const col = fc.constantFrom(...s.columns.map((c) => c.name));
  const ref = fc.constantFrom("expr" as const, "pos" as const, "alias" as const);
  const key: fc.Arbitrary<GroupKey> = fc.record({
    col: fc.oneof({ weight: 8, arbitrary: col }, { weight: 1, arbitrary: fc.constant("id") }),
    fn: fc.constantFrom("none" as const, "none" as const, "none" as const, "length" as const, "typeof" as const),
    ref,
    orderRef: ref,
    alias: fc.boolean(),
    dir: dirArb,
    nocase: fc.boolean(),
  });
  return fc.record({
    k: fc.constant("agg" as const),
    where: whereArb(s, routes),
    group: fc.uniqueArray(key, { maxLength: 2, selector: (g) => `${g.fn}(${g.col})` }),
    groupFirst: fc.boolean(),
    aggs: fc.array(
      fc.record({
        fn: fc.constantFrom<AggFn>("count*", "count", "sum", "total", "min", "max", "avg", "count", "group_concat"),
        col,
        alias: fc.boolean(),
        distinct: fc.constantFrom(false, false, false, true),
        sep: fc.constantFrom(null, "|", ";"),
      }),
      { maxLength: 4 },
    ),
    order: fc.option(
      fc.array(fc.record({ agg: fc.nat({ max: 3 }), ref: fc.constantFrom("pos" as const, "alias" as const, "expr" as const), dir: dirArb, nulls: nullsArb }), {
        maxLength: 2,
      }),
      { nil: null },
    ),
    limit: fc.option(limitArb, { nil: null }),
    having: fc.option(havingArb(s), { nil: null, freq: 3 }),
    dcol: col,
    style: paramStyleArb,
  });
}

interface AggOut {
  readonly expr: string;
  readonly alias: string | null;
  readonly group: GroupKey | null;
  readonly agg: AggItem | null;
}

function aggExpr(a: AggItem): string {
  if (a.fn === "count*") return "count(*)";
  if (a.fn === "group_concat") return `group_concat(${a.col}${a.sep ? `, '${a.sep}'` : ""})`;
  return `${a.fn}(${a.distinct ? "DISTINCT " : ""}${a.col})`;
}

/**
 * An aggregate as rendered: DISTINCT ones take the query's dcol (sum / total / avg only of numeric
 * columns: the gate refuses them over text); group_concat not of blobs (bytes need not be UTF-8).
 */
function normAgg(s: Schema, q: AggQuery, a: AggItem): AggItem {
  if (a.fn === "group_concat") return typeIn(s, a.col) === "BLOB" ? { ...a, fn: "count", distinct: false } : { ...a, distinct: false };
  if (!a.distinct || a.fn === "count*" || !q.dcol) return { ...a, distinct: false };
  const numeric = isNumeric(typeIn(s, q.dcol));
  return { ...a, col: q.dcol, fn: (a.fn === "sum" || a.fn === "total" || a.fn === "avg") && !numeric ? "count" : a.fn };
}

function groupExpr(g: GroupKey): string {
  return g.fn === "none" ? g.col : `${g.fn}(${g.col})`;
}

function renderHaving(w: SqlWriter, s: Schema, q: AggQuery, h: Having): string {
  switch (h.k) {
    case "and":
    case "or":
      return `(${renderHaving(w, s, q, h.a)} ${h.k.toUpperCase()} ${renderHaving(w, s, q, h.b)})`;
    case "not":
      return `NOT (${renderHaving(w, s, q, h.a)})`;
    case "group": {
      const g = q.group[h.at % Math.max(1, q.group.length)];
      // A grouped column compares only with a literal of its own type (the gate refuses values
      // SQLite's affinity would convert, and placeholders); one of its own values when it has one.
      if (!g) return `count(*) ${h.op} 1`;
      const type = g.fn === "none" ? typeIn(s, g.col) : "INTEGER";
      const lit =
        g.fn === "none" ? (type === "INTEGER" ? "1" : type === "REAL" ? "0.5" : type === "BLOB" ? "X'01'" : "'a'") : g.fn === "length" ? "2" : "'text'";
      return `${groupExpr(g)} ${h.op} ${h.op.startsWith("IS") ? "NULL" : lit}`;
    }
    case "agg": {
      const type = typeIn(s, h.col);
      const fn = (h.fn === "sum" && type !== "INTEGER") || ((h.fn === "min" || h.fn === "max") && declared(s, h.col)) ? "count" : h.fn;
      const e = fn === "count*" ? "count(*)" : `${fn}(${h.col})`;
      const v = fn === "count" || fn === "count*" || fn === "sum" ? w.val({ v: h.n, param: h.val.param }) : w.val(h.val);
      return `${e} ${h.op} ${v}`;
    }
  }
}

export function renderAggQuery(s: Schema, q: AggQuery, fresh: readonly (number | bigint)[]): QueryCheck {
  // Aggregates not ordered by: avg / total / sum of non-INTEGER differ in the last bits; which
  // of several collation-equal texts min / max return is unspecified.
  const orderable = (a: AggItem): boolean =>
    !(
      a.fn === "group_concat" ||
      a.fn === "avg" ||
      a.fn === "total" ||
      (a.fn === "sum" && typeIn(s, a.col) !== "INTEGER") ||
      ((a.fn === "min" || a.fn === "max") && declared(s, a.col))
    );
  const aggs = q.aggs.length === 0 && q.group.length === 0 ? [{ fn: "count*" as const, col: "id", alias: false }] : q.aggs.map((a) => normAgg(s, q, a));
  const groupOuts: AggOut[] = q.group.map((g, i) => ({ expr: groupExpr(g), alias: g.alias ? `g${i}` : null, group: g, agg: null }));
  const aggOuts: AggOut[] = aggs.map((a, i) => ({ expr: aggExpr(a), alias: a.alias ? `a${i}` : null, group: null, agg: a }));
  const outs = q.groupFirst ? [...groupOuts, ...aggOuts] : [...aggOuts, ...groupOuts];
  const name = (at: number, how: "expr" | "pos" | "alias"): string => {
    const o = outs[at];
    if (how === "pos") return String(at + 1);
    return how === "alias" && o?.alias ? o.alias : (o?.expr ?? "NULL");
  };
  const w = new SqlWriter(q.style, fresh);
  const list = outs.map((o) => (o.alias ? `${o.expr} AS ${o.alias}` : o.expr)).join(", ");
  const where = renderWhere(w, q.where);
  const groupBy = q.group.map((g) =>
    name(
      outs.findIndex((o) => o.group === g),
      g.ref,
    ),
  );
  let order = "";
  if (q.order) {
    const terms: string[] = [];
    for (const o of q.order) {
      const target = aggOuts[o.agg % Math.max(1, aggOuts.length)];
      const at = target ? outs.indexOf(target) : -1;
      const a = outs[at]?.agg;
      if (a && orderable(a)) terms.push(`${name(at, o.ref)}${o.dir}${o.nulls}`);
    }
    for (const g of q.group) {
      const at = outs.findIndex((o) => o.group === g);
      // COLLATE NOCASE ties distinct groups ('a', 'A'): the same key without it breaks the tie.
      if (g.nocase && isText(typeIn(s, g.col)) && g.fn === "none") terms.push(`${name(at, g.orderRef)} COLLATE NOCASE${g.dir}`);
      terms.push(`${name(at, g.orderRef)}${g.dir}`);
    }
    if (terms.length > 0) order = ` ORDER BY ${terms.join(", ")}`;
  }
  // LIMIT only where the order is total: one group, or ORDER BY over every group key.
  const limit = (q.group.length === 0 || order !== "") && !hasExists(q.where) ? renderLimit(w, q.limit) : "";
  const having = q.having ? ` HAVING ${renderHaving(w, s, q, q.having)}` : "";
  const r = w.finish(`SELECT ${list} FROM t${where}${q.group.length > 0 ? ` GROUP BY ${groupBy.join(", ")}` : ""}${having}${order}${limit}`);
  const approx = new Map<number, string>();
  const fold = new Map<number, Collation>();
  const split = new Map<number, string>();
  outs.forEach((o, i) => {
    const a = o.agg;
    if (a?.fn === "group_concat") split.set(i, a.sep ?? ",");
    if (a && (a.fn === "avg" || a.fn === "total" || (a.fn === "sum" && typeIn(s, a.col) !== "INTEGER"))) approx.set(i, a.col);
    const coll = a && (a.fn === "min" || a.fn === "max") ? declared(s, a.col) : o.group?.fn === "none" ? declared(s, o.group.col) : undefined;
    if (coll) fold.set(i, coll);
  });
  return { ...r, ordered: order !== "" || q.group.length === 0, approx, fold, split, unlimited: null };
}

// ---------------------------------------------------------------- compound SELECTs

export type SetOp = "UNION ALL" | "UNION" | "INTERSECT" | "EXCEPT";

export interface Branch {
  /** Output columns (the first `width` are used); an aggregate branch selects count() of each. */
  readonly cols: readonly string[];
  readonly agg: boolean;
  readonly where: Where;
}

export interface CompoundQuery {
  readonly k: "compound";
  readonly width: number;
  readonly branches: readonly Branch[];
  readonly ops: readonly SetOp[];
  /** null: no ORDER BY; else a direction per output position (ORDER BY every position: a total order). */
  readonly order: readonly { readonly dir: Dir; readonly nulls: Nulls }[] | null;
  /** The first ORDER BY term names the first branch's column instead of its position. */
  readonly byName: boolean;
  readonly limit: LimitSpec | null;
  readonly style: ParamStyle;
}

export function compoundQueryArb(s: Schema): fc.Arbitrary<CompoundQuery> {
  const col = fc.constantFrom("id", ...s.columns.map((c) => c.name));
  return fc.record({
    k: fc.constant("compound" as const),
    width: fc.integer({ min: 1, max: 2 }),
    branches: fc.array(
      fc.record({ cols: fc.array(col, { minLength: 2, maxLength: 2 }), agg: fc.constantFrom(false, false, false, true), where: whereArb(s) }),
      { minLength: 2, maxLength: 3 },
    ),
    ops: fc.array(fc.constantFrom<SetOp>("UNION ALL", "UNION", "INTERSECT", "EXCEPT"), { minLength: 2, maxLength: 2 }),
    order: fc.option(fc.array(fc.record({ dir: dirArb, nulls: nullsArb }), { minLength: 2, maxLength: 2 }), { nil: null, freq: 3 }),
    byName: fc.boolean(),
    limit: fc.option(limitArb, { nil: null }),
    style: paramStyleArb,
  });
}

/**
 * A compound SELECT. The gate refuses set operators other than UNION ALL, and ORDER BY, over a
 * table with declared COLLATE columns: there only UNION ALL without ORDER BY / LIMIT is generated.
 * LIMIT only under ORDER BY (every position: the order is total).
 */
export function renderCompound(s: Schema, q: CompoundQuery, fresh: readonly (number | bigint)[]): QueryCheck {
  const collated = s.columns.some((c) => declared(s, c.name) !== undefined);
  const w = new SqlWriter(q.style, fresh);
  const parts = q.branches.map((b, i) => {
    const cols = b.cols.slice(0, q.width);
    const list = b.agg ? cols.map((c) => `count(${c})`) : cols;
    const op = i === 0 ? "" : ` ${collated ? "UNION ALL" : (q.ops[i - 1] ?? "UNION ALL")} `;
    return `${op}SELECT ${list.join(", ")} FROM t${renderWhere(w, b.where)}`;
  });
  const order = q.order && !collated ? q.order.slice(0, q.width) : null;
  const first = q.branches[0];
  let tail = "";
  if (order) {
    const terms = order.map((t, i) => `${i === 0 && q.byName && first && !first.agg ? (first.cols[0] ?? "1") : String(i + 1)}${t.dir}${t.nulls}`);
    tail = ` ORDER BY ${terms.join(", ")}${renderLimit(w, q.limit)}`;
  }
  return { ...w.finish(parts.join("") + tail), ordered: order !== null, approx: new Map(), fold: new Map(), unlimited: null };
}
