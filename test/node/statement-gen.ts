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
  | { readonly k: "or"; readonly a: Pred; readonly b: Pred };

/** How the WHERE routes: by `id = v`, by `id IN (…)`, or not by id (scatter). */
export interface Where {
  readonly route: "none" | "eq" | "in";
  readonly ids: readonly IdVal[];
  /** Write `v = id` instead of `id = v`. */
  readonly reversed: boolean;
  /** Where the routing conjunct goes among the others. */
  readonly at: number;
  readonly preds: readonly Pred[];
}

function predArb(s: Schema): fc.Arbitrary<Pred> {
  const col = fc.constantFrom(...s.columns);
  const leaf: fc.Arbitrary<Pred> = fc.oneof(
    fc.record({ k: fc.constant("null" as const), col: col.map((c) => c.name), not: fc.boolean() }),
    col.chain((c) => fc.record({ k: fc.constant("cmp" as const), col: fc.constant(c.name), op: fc.constantFrom("=", "<", ">", "<=", ">=", "<>"), val: valArb(c.type, false) })),
    col.chain((c) => fc.record({ k: fc.constant("in" as const), col: fc.constant(c.name), vals: fc.array(valArb(c.type), { minLength: 1, maxLength: 3 }) })),
    fc.record({ k: fc.constant("idRange" as const), op: fc.constantFrom("<", ">", "<=", ">="), val: fc.record({ v: fc.integer({ min: POOL_MIN, max: POOL_MAX }), param: fc.boolean() }) }),
  );
  const texts = s.columns.filter((c) => isText(c.type));
  const withLike = texts.length === 0 ? leaf : fc.oneof(leaf, fc.record({ k: fc.constant("like" as const), col: fc.constantFrom(...texts.map((c) => c.name)), pattern: fc.constantFrom("a%", "%B%", "_", "é%", "%") }));
  return fc.oneof({ weight: 4, arbitrary: withLike }, { weight: 1, arbitrary: fc.record({ k: fc.constant("or" as const), a: withLike, b: withLike }) });
}

export function whereArb(s: Schema, routes: readonly Where["route"][] = ["none", "eq", "in"]): fc.Arbitrary<Where> {
  return fc.record({
    route: fc.constantFrom(...routes),
    ids: fc.array(idValArb, { minLength: 1, maxLength: 4 }),
    reversed: fc.boolean(),
    at: fc.nat({ max: 3 }),
    preds: fc.array(predArb(s), { maxLength: 2 }),
  });
}

function renderPred(w: SqlWriter, p: Pred, q: string): string {
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
      return `(${renderPred(w, p.a, q)} OR ${renderPred(w, p.b, q)})`;
  }
}

/** ` WHERE …` or ""; `q` qualifies columns (e.g. "tt."). */
export function renderWhere(w: SqlWriter, where: Where, q = ""): string {
  const conj = where.preds.map((p) => renderPred(w, p, q));
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
      expr: c.type === "BLOB" ? valArb(c.type).map((val) => ({ k: "val" as const, val })) : fc.oneof(valArb(c.type).map((val) => ({ k: "val" as const, val })), fc.constant({ k: "fn" as const })),
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
  if (st.verb === "UPSERT") tail = cols.length === 0 ? " ON CONFLICT(id) DO NOTHING" : ` ON CONFLICT(id) DO UPDATE SET ${cols.map((c) => `${c.name} = excluded.${c.name}`).join(", ")}`;
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
