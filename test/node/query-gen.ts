// Queries of the differential tests: row SELECTs (point, IN, scatter; ORDER BY / LIMIT) and
// aggregates over shards (GROUP BY, ORDER BY over the grouped output, LIMIT), as data, with how
// each must be compared with the reference.

import fc from "fast-check";
import { isNumeric, isText, paramStyleArb, SqlWriter, type ParamStyle, type Schema, type Val } from "./sql-gen.ts";
import { renderWhere, whereArb, type Rendered, type Where } from "./statement-gen.ts";


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

// ---------------------------------------------------------------- row queries

export type ItemFn = "none" | "typeof" | "length" | "expr";
export interface Item {
  readonly col: string;
  readonly fn: ItemFn;
  readonly alias: boolean;
}

export type OrderRef =
  | { readonly k: "col"; readonly col: string }
  | { readonly k: "pos"; readonly i: number }
  | { readonly k: "alias"; readonly i: number }
  | { readonly k: "expr"; readonly col: string; readonly fn: "length" | "lower" | "abs" | "typeof" | "isnull" };

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
  readonly style: ParamStyle;
}

const dirArb = fc.constantFrom<Dir>("", " ASC", " DESC");
const nullsArb = fc.constantFrom<Nulls>("", "", " NULLS FIRST", " NULLS LAST");

export function rowsQueryArb(s: Schema, routes?: readonly Where["route"][]): fc.Arbitrary<RowsQuery> {
  const cols = ["id", ...s.columns.map((c) => c.name)];
  const col = fc.constantFrom(...cols);
  const ref: fc.Arbitrary<OrderRef> = fc.oneof(
    col.map((c) => ({ k: "col" as const, col: c })),
    fc.nat({ max: 5 }).map((i) => ({ k: "pos" as const, i })),
    fc.nat({ max: 5 }).map((i) => ({ k: "alias" as const, i })),
    fc.record({ k: fc.constant("expr" as const), col, fn: fc.constantFrom("length", "lower", "abs", "typeof", "isnull") }),
  );
  return fc.record({
    k: fc.constant("rows" as const),
    where: whereArb(s, routes),
    star: fc.boolean(),
    items: fc.array(fc.record({ col, fn: fc.constantFrom<ItemFn>("none", "none", "typeof", "length", "expr"), alias: fc.boolean() }), { minLength: 1, maxLength: 4 }),
    order: fc.option(fc.array(fc.record({ ref, dir: dirArb, nulls: nullsArb, nocase: fc.boolean() }), { maxLength: 3 }), { nil: null, freq: 4 }),
    tieDesc: fc.boolean(),
    limit: fc.option(limitArb, { nil: null }),
    tableAlias: fc.boolean(),
    style: paramStyleArb,
  });
}

/** How a query's result must match the reference's. */
export interface QueryCheck extends Rendered {
  /** ORDER BY fixes the order: arrays must be equal. */
  readonly ordered: boolean;
  /** Output columns compared with a relative tolerance (REAL from sum / total / avg). */
  readonly approx: ReadonlySet<number>;
  /** Output columns whose text is compared case-insensitively (which of several NOCASE-equal values SQLite keeps is unspecified). */
  readonly nocase: ReadonlySet<number>;
  /** LIMIT without ORDER BY: any `n` rows of the unlimited result; this is that result's SQL. */
  readonly unlimited: Rendered | null;
}

function itemSql(s: Schema, it: Item, i: number): string {
  const type = s.columns.find((c) => c.name === it.col)?.type ?? "INTEGER";
  const e =
    it.fn === "typeof"
      ? `typeof(${it.col})`
      : it.fn === "length"
        ? `length(${it.col})`
        : it.fn === "expr"
          ? isNumeric(type)
            ? `${it.col} * 2`
            : isText(type)
              ? `${it.col} || '!'`
              : `hex(${it.col})`
          : it.col;
  return it.alias ? `${e} AS x${i}` : e;
}

function orderSql(q: RowsQuery, width: number): string {
  if (!q.order) return "";
  const terms = q.order.map((t) => {
    const r = t.ref;
    let e: string;
    if (r.k === "col") e = r.col;
    else if (r.k === "pos") e = String((r.i % width) + 1);
    else if (r.k === "alias") {
      const i = r.i % q.items.length;
      e = !q.star && q.items[i]?.alias ? `x${i}` : String((i % width) + 1);
    } else e = r.fn === "isnull" ? `${r.col} IS NULL` : `${r.fn}(${r.col})`;
    return `${e}${t.nocase ? " COLLATE NOCASE" : ""}${t.dir}${t.nulls}`;
  });
  terms.push(q.tieDesc ? "id DESC" : "id");
  return ` ORDER BY ${terms.join(", ")}`;
}

export function renderRowsQuery(s: Schema, q: RowsQuery, fresh: readonly (number | bigint)[]): QueryCheck {
  const width = q.star ? s.columns.length + 1 : q.items.length;
  const build = (withLimit: boolean): Rendered => {
    const w = new SqlWriter(q.style, fresh);
    const list = q.star ? "*" : q.items.map((it, i) => itemSql(s, it, i)).join(", ");
    const from = q.tableAlias ? "t AS tt" : "t";
    const where = renderWhere(w, q.where, q.tableAlias ? "tt." : "", true);
    return w.finish(`SELECT ${list} FROM ${from}${where}${orderSql(q, width)}${withLimit ? renderLimit(w, q.limit) : ""}`);
  };
  const r = build(true);
  const ordered = q.order !== null;
  return { ...r, ordered, approx: new Set(), nocase: new Set(), unlimited: !ordered && q.limit ? build(false) : null };
}

// ---------------------------------------------------------------- aggregates

export type AggFn = "count*" | "count" | "sum" | "total" | "min" | "max" | "avg";

export interface AggItem {
  readonly fn: AggFn;
  readonly col: string;
  readonly alias: boolean;
}

export interface AggQuery {
  readonly k: "agg";
  readonly where: Where;
  /** GROUP BY columns (0–2). */
  readonly group: readonly string[];
  /** How each GROUP BY term names its column: by name, by position, by alias (when selected so). */
  readonly groupRef: readonly ("name" | "pos" | "alias")[];
  readonly groupAlias: readonly boolean[];
  readonly groupFirst: boolean;
  readonly aggs: readonly AggItem[];
  /** null: no ORDER BY. Otherwise aggregate keys (by index into aggs), then every group column. */
  readonly order: readonly { readonly agg: number; readonly ref: "pos" | "alias" | "expr"; readonly dir: Dir; readonly nulls: Nulls }[] | null;
  readonly groupDir: readonly Dir[];
  readonly limit: LimitSpec | null;
  readonly style: ParamStyle;
}

export function aggQueryArb(s: Schema, routes?: readonly Where["route"][]): fc.Arbitrary<AggQuery> {
  const names = s.columns.map((c) => c.name);
  const col = fc.constantFrom(...names);
  return fc.record({
    k: fc.constant("agg" as const),
    where: whereArb(s, routes),
    group: fc.uniqueArray(fc.oneof({ weight: 6, arbitrary: col }, { weight: 1, arbitrary: fc.constant("id") }), { maxLength: 2 }),
    groupRef: fc.array(fc.constantFrom("name" as const, "pos" as const, "alias" as const), { minLength: 2, maxLength: 2 }),
    groupAlias: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
    groupFirst: fc.boolean(),
    aggs: fc.array(fc.record({ fn: fc.constantFrom<AggFn>("count*", "count", "sum", "total", "min", "max", "avg"), col, alias: fc.boolean() }), { maxLength: 4 }),
    order: fc.option(fc.array(fc.record({ agg: fc.nat({ max: 3 }), ref: fc.constantFrom("pos" as const, "alias" as const, "expr" as const), dir: dirArb, nulls: nullsArb }), { maxLength: 2 }), { nil: null }),
    groupDir: fc.array(dirArb, { minLength: 2, maxLength: 2 }),
    limit: fc.option(limitArb, { nil: null }),
    style: paramStyleArb,
  });
}

function aggExpr(a: AggItem): string {
  return a.fn === "count*" ? "count(*)" : `${a.fn}(${a.col})`;
}

export function renderAggQuery(s: Schema, q: AggQuery, fresh: readonly (number | bigint)[]): QueryCheck {
  const typeOf = (c: string) => s.columns.find((x) => x.name === c)?.type ?? "INTEGER";
  // Aggregates that are not ordered by: avg / total / sum of REAL differ in the last bits; which
  // of NOCASE-equal texts min / max return is unspecified.
  const orderable = (a: AggItem): boolean =>
    !(a.fn === "avg" || a.fn === "total" || (a.fn === "sum" && typeOf(a.col) !== "INTEGER") || ((a.fn === "min" || a.fn === "max") && typeOf(a.col) === "NOCASE"));
  const aggs = q.aggs.length === 0 && q.group.length === 0 ? [{ fn: "count*" as const, col: "id", alias: false }] : q.aggs;
  const items: { sql: string; expr: string; alias: string | null; group: string | null; agg: AggItem | null }[] = [];
  const groupItems = q.group.map((g, i) => ({ sql: "", expr: g, alias: q.groupAlias[i] ? `g${i}` : null, group: g, agg: null }));
  const aggItems = aggs.map((a, i) => ({ sql: "", expr: aggExpr(a), alias: a.alias ? `a${i}` : null, group: null, agg: a }));
  items.push(...(q.groupFirst ? [...groupItems, ...aggItems] : [...aggItems, ...groupItems]));
  const w = new SqlWriter(q.style, fresh);
  const list = items.map((it) => (it.alias ? `${it.expr} AS ${it.alias}` : it.expr)).join(", ");
  const where = renderWhere(w, q.where, "", true);
  const groupBy = q.group.map((g, i) => {
    const at = items.findIndex((it) => it.group === g);
    const how = q.groupRef[i] ?? "name";
    if (how === "pos") return String(at + 1);
    if (how === "alias" && items[at]?.alias) return items[at]?.alias ?? g;
    return g;
  });
  let order = "";
  if (q.order) {
    const terms: string[] = [];
    for (const o of q.order) {
      const at = items.findIndex((it) => it.agg === aggItems[o.agg % aggItems.length]?.agg);
      const it = items[at];
      if (!it?.agg || !orderable(it.agg)) continue;
      const e = o.ref === "pos" ? String(at + 1) : o.ref === "alias" && it.alias ? it.alias : it.expr;
      terms.push(`${e}${o.dir}${o.nulls}`);
    }
    q.group.forEach((g, i) => {
      const at = items.findIndex((it) => it.group === g);
      const it = items[at];
      const how = q.groupRef[(i + 1) % 2] ?? "name";
      const e = how === "pos" ? String(at + 1) : how === "alias" && it?.alias ? it.alias : g;
      terms.push(`${e}${q.groupDir[i] ?? ""}`);
    });
    if (terms.length > 0) order = ` ORDER BY ${terms.join(", ")}`;
  }
  // LIMIT only where the order is total: one group, or ORDER BY over every group column.
  const limit = q.group.length === 0 || order !== "" ? renderLimit(w, q.limit) : "";
  const r = w.finish(`SELECT ${list} FROM t${where}${q.group.length > 0 ? ` GROUP BY ${groupBy.join(", ")}` : ""}${order}${limit}`);
  const approx = new Set<number>();
  const nocase = new Set<number>();
  items.forEach((it, i) => {
    const a = it.agg;
    if (a && (a.fn === "avg" || a.fn === "total" || (a.fn === "sum" && typeOf(a.col) !== "INTEGER"))) approx.add(i);
    if (a && (a.fn === "min" || a.fn === "max") && typeOf(a.col) === "NOCASE") nocase.add(i);
    if (it.group !== null && typeOf(it.group) === "NOCASE" && it.group !== "id") nocase.add(i);
  });
  return { ...r, ordered: order !== "" || q.group.length === 0, approx, nocase, unlimited: null };
}
