// Statements of the differential tests: writes (INSERT forms, UPDATE, DELETE) and queries (point,
// IN, scatter, aggregates), as data, with arbitraries over a schema and rendering to SQL.

import fc from "fast-check";
import type { Params } from "./fake-cursor.ts";
import {
  idValArb,
  isNumeric,
  isText,
  paramStyleArb,
  POOL_MAX,
  POOL_MIN,
  SqlWriter,
  valArb,
  type Column,
  type IdVal,
  type ParamStyle,
  type Schema,
  type Val,
} from "./sql-gen.ts";

// ---------------------------------------------------------------- WHERE

export type Pred =
  | { readonly k: "null"; readonly col: string; readonly not: boolean }
  | { readonly k: "cmp"; readonly col: string; readonly op: string; readonly val: Val }
  | { readonly k: "in"; readonly col: string; readonly vals: readonly Val[] }
  | { readonly k: "like"; readonly col: string; readonly pattern: string }
  | { readonly k: "idRange"; readonly op: string; readonly val: Val }
  | { readonly k: "or"; readonly a: Pred; readonly b: Pred }
  | SubPred;

/** An uncorrelated subquery over t: `col [NOT] IN (SELECT inner …)`, `[NOT] EXISTS (…)`, `col op (SELECT agg(inner) …)`. */
export interface SubPred {
  readonly k: "sub";
  readonly form: "in" | "notIn" | "exists" | "notExists" | "scalar";
  readonly col: string;
  readonly inner: string;
  readonly agg: "count" | "count*" | "min" | "max";
  readonly op: string;
  /** `FROM t AS s` in the subquery. */
  readonly alias: boolean;
  readonly preds: readonly Pred[];
}

/** How the WHERE routes: by `id = v`, by `id IN (…)`, or not by id (scatter). */
export interface Where {
  readonly route: "none" | "eq" | "in";
  readonly ids: readonly IdVal[];
  /** Write `v = id` instead of `id = v`. */
  readonly reversed: boolean;
  /** Where the routing conjunct goes among the others. */
  readonly at: number;
  readonly preds: readonly Pred[];
  /** The table's schema (for rendering subqueries). */
  readonly schema?: Schema;
}

/** Subqueries in WHERE (off to steer around open gate bugs). */
export const SUBQUERIES = true;

function predArb(s: Schema, sub = SUBQUERIES): fc.Arbitrary<Pred> {
  const col = fc.constantFrom(...s.columns);
  const leaf: fc.Arbitrary<Pred> = fc.oneof(
    fc.record({ k: fc.constant("null" as const), col: col.map((c) => c.name), not: fc.boolean() }),
    col.chain((c) =>
      fc.record({ k: fc.constant("cmp" as const), col: fc.constant(c.name), op: fc.constantFrom("=", "<", ">", "<=", ">=", "<>"), val: valArb(c.type, false) }),
    ),
    col.chain((c) => fc.record({ k: fc.constant("in" as const), col: fc.constant(c.name), vals: fc.array(valArb(c.type), { minLength: 1, maxLength: 3 }) })),
    fc.record({
      k: fc.constant("idRange" as const),
      op: fc.constantFrom("<", ">", "<=", ">="),
      val: fc.record({ v: fc.integer({ min: POOL_MIN, max: POOL_MAX }), param: fc.boolean() }),
    }),
  );
  const texts = s.columns.filter((c) => isText(c.type));
  const withLike =
    texts.length === 0
      ? leaf
      : fc.oneof(
          leaf,
          fc.record({
            k: fc.constant("like" as const),
            col: fc.constantFrom(...texts.map((c) => c.name)),
            pattern: fc.constantFrom("a%", "%B%", "_", "é%", "%"),
          }),
        );
  const plain = fc.oneof({ weight: 4, arbitrary: withLike }, { weight: 1, arbitrary: fc.record({ k: fc.constant("or" as const), a: withLike, b: withLike }) });
  if (!sub) return plain;
  const names = ["id", ...s.columns.map((c) => c.name)];
  const subArb: fc.Arbitrary<Pred> = fc.record({
    k: fc.constant("sub" as const),
    form: fc.constantFrom("in" as const, "notIn" as const, "exists" as const, "notExists" as const, "scalar" as const),
    col: fc.constantFrom(...names),
    inner: fc.constantFrom(...names),
    agg: fc.constantFrom("count" as const, "count*" as const, "min" as const, "max" as const),
    op: fc.constantFrom("=", "<", ">", "<>", ">="),
    alias: fc.boolean(),
    preds: fc.array(plain, { maxLength: 2 }),
  });
  return fc.oneof({ weight: 5, arbitrary: plain }, { weight: 1, arbitrary: subArb });
}

function typeOf(s: Schema | undefined, col: string): string {
  return col === "id" ? "INTEGER" : (s?.columns.find((c) => c.name === col)?.type ?? "INTEGER");
}

function declaredColl(s: Schema | undefined, col: string): boolean {
  const t = typeOf(s, col);
  return t === "NOCASE" || t === "RTRIM";
}

/** A column with INTEGER or REAL affinity (id included). */
function numericCol(s: Schema | undefined, col: string): boolean {
  const t = typeOf(s, col);
  return t === "INTEGER" || t === "REAL";
}

export function whereArb(s: Schema, routes: readonly Where["route"][] = ["none", "eq", "in"], sub = SUBQUERIES): fc.Arbitrary<Where> {
  return fc.record({
    schema: fc.constant(s),
    route: fc.constantFrom(...routes),
    ids: fc.array(idValArb, { minLength: 1, maxLength: 4 }),
    reversed: fc.boolean(),
    at: fc.nat({ max: 3 }),
    preds: fc.array(predArb(s, sub), { maxLength: 2 }),
  });
}

function renderPred(w: SqlWriter, p: Pred, q: string, s?: Schema): string {
  switch (p.k) {
    case "null":
      return `${q}${p.col} IS ${p.not ? "NOT " : ""}NULL`;
    case "cmp":
      return `${q}${p.col} ${p.op} ${w.val(p.val)}`;
    case "in":
      return `${q}${p.col} IN (${p.vals.map((v) => w.val(v)).join(", ")})`;
    case "like":
      return `${q}${p.col} LIKE '${p.pattern}'`;
    case "idRange":
      return `${q}id ${p.op} ${w.val(p.val)}`;
    case "or":
      return `(${renderPred(w, p.a, q, s)} OR ${renderPred(w, p.b, q, s)})`;
    case "sub": {
      const inner = p.preds.map((x) => renderPred(w, x, p.alias ? "s." : "", s));
      const tail = `FROM t${p.alias ? " AS s" : ""}${inner.length ? ` WHERE ${inner.join(" AND ")}` : ""}`;
      // The IN list bound from the subquery's rows has no affinity, so the gate refuses (UNSUPPORTED)
      // an IN whose subquery column's affinity would convert the outer value: the generator keeps
      // to the forms it answers, a subquery selecting the outer column itself.
      const innerCol = p.form === "in" || p.form === "notIn" ? p.col : p.inner;
      const ic = `${p.alias ? "s." : ""}${innerCol}`;
      switch (p.form) {
        case "in":
        case "notIn":
          return `${q}${p.col} ${p.form === "notIn" ? "NOT " : ""}IN (SELECT ${ic} ${tail})`;
        case "exists":
        case "notExists":
          return `${p.form === "notExists" ? "NOT " : ""}EXISTS (SELECT ${p.inner === "id" ? "1" : ic} ${tail})`;
        case "scalar": {
          // min / max of a NOCASE / RTRIM column may be any of several equal texts: count instead.
          const agg = p.agg === "count*" ? "count(*)" : (p.agg === "min" || p.agg === "max") && declaredColl(s, p.inner) ? `count(${ic})` : `${p.agg}(${ic})`;
          // OPEN BUG (gate, gate/planner/subqueries.ts): a scalar subquery's integer result is bound
          // as CAST(? AS INTEGER), whose INTEGER affinity converts a TEXT / BLOB operand that SQLite
          // compares as text: such a column is compared through length() instead.
          const textResult = (p.agg === "min" || p.agg === "max") && typeOf(s, p.inner) === "TEXT";
          const lhs = numericCol(s, p.col) || textResult ? `${q}${p.col}` : `length(${q}${p.col})`;
          return `${lhs} ${p.op} (SELECT ${agg} ${tail})`;
        }
      }
    }
  }
}

/**
 * The WHERE has an uncorrelated [NOT] EXISTS. The reference SQLite (3.51.3) ignores OFFSET then:
 * `SELECT id FROM t WHERE EXISTS (SELECT 1 FROM t) LIMIT 2 OFFSET 1` over 2 rows answers both
 * (a SQLite bug, not the gate's): such queries get no LIMIT.
 */
export function hasExists(where: Where): boolean {
  const inPred = (p: Pred): boolean => (p.k === "sub" && (p.form === "exists" || p.form === "notExists")) || (p.k === "or" && (inPred(p.a) || inPred(p.b)));
  return where.preds.some(inPred);
}

/** ` WHERE …` or ""; `q` qualifies columns (e.g. "tt."). */
export function renderWhere(w: SqlWriter, where: Where, q = ""): string {
  const conj = where.preds.map((p) => renderPred(w, p, q, where.schema));
  const first = where.ids[0];
  if (where.route === "eq" && first) {
    const v = w.idVal(first);
    conj.splice(where.at % (conj.length + 1), 0, where.reversed ? `${v} = ${q}id` : `${q}id = ${v}`);
  } else if (where.route === "in") {
    conj.splice(where.at % (conj.length + 1), 0, `${q}id IN (${where.ids.map((i) => w.idVal(i)).join(", ")})`);
  }
  return conj.length === 0 ? "" : ` WHERE ${conj.join(" AND ")}`;
}

// ---------------------------------------------------------------- writes

export type InsertVerb = "INSERT" | "INSERT OR REPLACE" | "REPLACE" | "INSERT OR IGNORE" | "UPSERT" | "UPSERT NOTHING";

export interface InsertStmt {
  readonly k: "insert";
  readonly verb: InsertVerb;
  /** Which columns (besides id) are listed; all of them with `allColumns` (no column list). */
  readonly listed: readonly boolean[];
  readonly allColumns: boolean;
  readonly rows: readonly { readonly id: IdVal; readonly values: readonly Val[] }[];
  readonly returning: boolean;
  /** Every value as a placeholder (past 100 of them the gate inlines them all as literals). */
  readonly allParams: boolean;
  readonly style: ParamStyle;
}

export interface UpdateStmt {
  readonly k: "update";
  readonly set: readonly { readonly col: string; readonly expr: { readonly k: "val"; readonly val: Val } | { readonly k: "fn" } }[];
  readonly where: Where;
  readonly returning: boolean;
  readonly style: ParamStyle;
}

export interface DeleteStmt {
  readonly k: "delete";
  readonly where: Where;
  readonly returning: boolean;
  readonly style: ParamStyle;
}

export type WriteStmt = InsertStmt | UpdateStmt | DeleteStmt;

export function insertArb(s: Schema): fc.Arbitrary<InsertStmt> {
  const rowArb = fc.record({ id: idValArb, values: fc.tuple(...s.columns.map((c) => valArb(c.type))) });
  return fc.record({
    k: fc.constant("insert" as const),
    verb: fc.constantFrom<InsertVerb>("INSERT", "INSERT", "INSERT OR REPLACE", "REPLACE", "INSERT OR IGNORE", "UPSERT", "UPSERT NOTHING"),
    listed: fc.array(fc.boolean(), { minLength: s.columns.length, maxLength: s.columns.length }),
    allColumns: fc.boolean(),
    // Mostly a few rows; sometimes enough that all-params rows pass 100 placeholders (the gate then
    // inlines all but the REALs; at most 24 rows × 4 columns stay under its 100 bound REALs).
    rows: fc.oneof(
      { weight: 6, arbitrary: fc.array(rowArb, { minLength: 1, maxLength: 8 }) },
      { weight: 1, arbitrary: fc.array(rowArb, { minLength: 21, maxLength: 24 }) },
    ),
    returning: fc.boolean(),
    allParams: fc.boolean(),
    style: paramStyleArb,
  });
}

export function updateArb(s: Schema): fc.Arbitrary<UpdateStmt> {
  const assign = fc.constantFrom(...s.columns).chain((c) =>
    fc.record({
      col: fc.constant(c.name),
      expr:
        c.type === "BLOB"
          ? valArb(c.type).map((val) => ({ k: "val" as const, val }))
          : fc.oneof(
              valArb(c.type).map((val) => ({ k: "val" as const, val })),
              fc.constant({ k: "fn" as const }),
            ),
    }),
  );
  return fc.record({
    k: fc.constant("update" as const),
    set: fc.uniqueArray(assign, { minLength: 1, maxLength: 2, selector: (a) => a.col }),
    where: whereArb(s),
    returning: fc.boolean(),
    style: paramStyleArb,
  });
}

export function deleteArb(s: Schema): fc.Arbitrary<DeleteStmt> {
  return fc.record({ k: fc.constant("delete" as const), where: whereArb(s), returning: fc.boolean(), style: paramStyleArb });
}

export interface Rendered {
  readonly sql: string;
  readonly params: Params | undefined;
}

/** Renders an INSERT; `nextFresh` gives plain INSERT rows ids no other row has, so they never conflict. */
export function renderInsert(s: Schema, st: InsertStmt, fresh: readonly (number | bigint)[], nextFresh: () => number | bigint): Rendered {
  const w = new SqlWriter(st.style, fresh);
  const cols = st.allColumns ? s.columns : s.columns.filter((_, i) => st.listed[i]);
  const plain = st.verb === "INSERT";
  const rows = st.rows.map((r) => {
    const id = st.allParams ? { ...r.id, form: r.id.form === "text" || r.id.form === "odd" ? ("textParam" as const) : ("param" as const) } : r.id;
    const idSql = plain ? w.idWith(nextFresh(), id, true) : w.idVal(id, true);
    const vals = s.columns.flatMap((c, i) => {
      const v = r.values[i] ?? { v: null, param: false };
      return cols.includes(c) ? [w.val(st.allParams ? { ...v, param: true } : v)] : [];
    });
    return `(${[idSql, ...vals].join(", ")})`;
  });
  const head = st.verb === "UPSERT" || st.verb === "UPSERT NOTHING" ? "INSERT" : st.verb;
  const list = st.allColumns ? "" : ` (id${cols.map((c) => `, ${c.name}`).join("")})`;
  let tail = "";
  if (st.verb === "UPSERT")
    tail = cols.length === 0 ? " ON CONFLICT(id) DO NOTHING" : ` ON CONFLICT(id) DO UPDATE SET ${cols.map((c) => `${c.name} = excluded.${c.name}`).join(", ")}`;
  if (st.verb === "UPSERT NOTHING") tail = " ON CONFLICT DO NOTHING";
  if (st.returning) tail += " RETURNING *";
  return w.finish(`${head} INTO t${list} VALUES ${rows.join(", ")}${tail}`);
}

function fnOf(c: Column): string {
  if (isNumeric(c.type)) return `${c.name} + 1`;
  if (isText(c.type)) return `upper(${c.name})`;
  return c.name;
}

export function renderUpdate(s: Schema, st: UpdateStmt, fresh: readonly (number | bigint)[]): Rendered {
  const w = new SqlWriter(st.style, fresh);
  const set = st.set.map((a) => {
    const c = s.columns.find((x) => x.name === a.col);
    return `${a.col} = ${a.expr.k === "val" ? w.val(a.expr.val) : c ? fnOf(c) : "NULL"}`;
  });
  return w.finish(`UPDATE t SET ${set.join(", ")}${renderWhere(w, st.where)}${st.returning ? " RETURNING *" : ""}`);
}

export function renderDelete(st: DeleteStmt, fresh: readonly (number | bigint)[]): Rendered {
  const w = new SqlWriter(st.style, fresh);
  return w.finish(`DELETE FROM t${renderWhere(w, st.where)}${st.returning ? " RETURNING *" : ""}`);
}
