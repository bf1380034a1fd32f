// The grammar of the join differential test (joins.differential.test.ts): four tables — t and v
// sharded by id, u sharded by t_id (same xxhash vindex, so t.id = u.t_id and t.id = v.id are
// co-located), r a reference table — small-range rows so joins match often, and SELECTs over
// joins of them as plain data (a counterexample prints readably and shrinks), rendered to SQL with
// params and with how each must be compared with the reference SQLite.
//
// Every query has a category:
//   "1"  co-located join with the features the gate must answer (never UNSUPPORTED);
//   "1x" co-located join with features beyond that list (self-joins, unqualified columns, ON
//        extras, OR / cross-table WHERE, ORDER BY expressions, r JOIN t): may be refused;
//   "2"  gate-side join (not co-located) of the core list: may be refused, never wrong; a share
//        of them must be answered;
//   "2x" gate-side joins beyond the core list (collation / affinity traps, reference LEFT JOIN
//        sharded, USING, comma joins, three tables, aggregates, cross-table expressions, filters
//        on the right table, ORDER BY what is not selected): may be refused, never wrong.

import fc from "fast-check";
import type { Collation } from "../../gate/engine/compare.ts";
import { sqlLiteral, type SqlValue } from "../../topology/sql-values.ts";
import type { QueryResult } from "../../tablet/types.ts";
import { toVtError } from "../../topology/errors.ts";
import { createCluster, type TableSpec } from "./fake-cursor.ts";
import { diffResults, diffSubset, show } from "./result-compare.ts";
import { paramStyleArb, SqlWriter, type ParamStyle } from "./sql-gen.ts";
import type { Rendered } from "./statement-gen.ts";

// ---------------------------------------------------------------- schema

export type TName = "t" | "u" | "v" | "r";
export const TABLES: readonly TName[] = ["t", "u", "v", "r"];

/** Which text columns are declared TEXT COLLATE NOCASE: none, t.b, v.b, or both. */
export type NocaseVariant = "none" | "t" | "v" | "both";

export interface JoinSchema {
  readonly nocase: NocaseVariant;
}

type CType = "INTEGER" | "REAL" | "TEXT";

interface ColDef {
  readonly name: string;
  readonly type: CType;
}

export const COLUMNS: Readonly<Record<TName, readonly ColDef[]>> = {
  t: [{ name: "id", type: "INTEGER" }, { name: "a", type: "INTEGER" }, { name: "b", type: "TEXT" }, { name: "c", type: "REAL" }],
  u: [{ name: "id", type: "INTEGER" }, { name: "t_id", type: "INTEGER" }, { name: "a", type: "INTEGER" }, { name: "b", type: "TEXT" }],
  v: [{ name: "id", type: "INTEGER" }, { name: "a", type: "INTEGER" }, { name: "b", type: "TEXT" }],
  r: [{ name: "k", type: "INTEGER" }, { name: "name", type: "TEXT" }, { name: "a", type: "INTEGER" }],
};

/** The primary key, and the vindex column of a sharded table. */
export const PK: Readonly<Record<TName, string>> = { t: "id", u: "id", v: "id", r: "k" };
export const VCOL: Readonly<Record<TName, string>> = { t: "id", u: "t_id", v: "id", r: "k" };

export function isNocase(s: JoinSchema, table: TName, col: string): boolean {
  if (col !== "b") return false;
  return (table === "t" && (s.nocase === "t" || s.nocase === "both")) || (table === "v" && (s.nocase === "v" || s.nocase === "both"));
}

function decl(s: JoinSchema, table: TName, c: ColDef): string {
  const pk = c.name === PK[table] ? " PRIMARY KEY" : "";
  return `${c.name} ${c.type}${pk}${isNocase(s, table, c.name) ? " COLLATE NOCASE" : ""}`;
}

export function createSql(s: JoinSchema, table: TName): string {
  return `CREATE TABLE ${table} (${COLUMNS[table].map((c) => decl(s, table, c)).join(", ")})`;
}

export function tableSpecs(s: JoinSchema): Record<string, TableSpec> {
  return {
    t: { create: createSql(s, "t"), column: "id" },
    u: { create: createSql(s, "u"), column: "t_id" },
    v: { create: createSql(s, "v"), column: "id" },
    r: { create: createSql(s, "r"), reference: true },
  };
}

export const schemaArb: fc.Arbitrary<JoinSchema> = fc.record({ nocase: fc.constantFrom<NocaseVariant>("none", "none", "t", "v", "both") });

// ---------------------------------------------------------------- data

/** Text values: case pairs (NOCASE), numeric-looking text (affinity), the empty string. */
export const TEXTS = ["x", "X", "y", "Y", "", "1", "01", "1.0", "2", "ab"];
export const REALS = [0.5, 1, 2.5, -1, 3];

/** `arb` with probability `p`, else null. */
export function sometimes<T>(arb: fc.Arbitrary<T>, p: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: Math.round(100 * (1 - p)), arbitrary: fc.constant(null) }, { weight: Math.round(100 * p), arbitrary: arb });
}

/**
 * Now and then a value of another type, kept or converted by the column's affinity: text that
 * stays text in an INTEGER column ('x'), a REAL there (2.5), numeric text that becomes a number
 * ('3', ' 2'), a number that becomes text in a TEXT column (1 → '1').
 */
const odd: fc.Arbitrary<SqlValue> = fc.constantFrom<SqlValue>("x", "1x", 2.5, "3", " 2", 1, 2.0, "", Uint8Array.of(0x31));
const mixed = (base: fc.Arbitrary<SqlValue>): fc.Arbitrary<SqlValue> => fc.oneof({ weight: 12, arbitrary: base }, { weight: 1, arbitrary: odd });
const small = mixed(fc.integer({ min: 0, max: 4 }));
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.option(a, { nil: null, freq: 5 });
const text = mixed(fc.constantFrom(...TEXTS));
const real = mixed(fc.constantFrom(...REALS));

export type Row = readonly SqlValue[];

export interface Data {
  readonly t: readonly Row[];
  readonly u: readonly Row[];
  readonly v: readonly Row[];
  readonly r: readonly Row[];
}

export const dataArb: fc.Arbitrary<Data> = fc.record({
  t: fc.uniqueArray(fc.record({ id: fc.integer({ min: 1, max: 12 }), a: opt(small), b: opt(text), c: opt(real) }), { minLength: 1, maxLength: 10, size: "max", selector: (x) => x.id }).map((rs) => rs.map((x) => [x.id, x.a, x.b, x.c])),
  // t_id is the vindex column: the gate refuses NULL there (no sequence).
  u: fc.uniqueArray(fc.record({ id: fc.integer({ min: 1, max: 40 }), t_id: fc.integer({ min: 1, max: 13 }), a: opt(small), b: opt(text) }), { minLength: 1, maxLength: 16, size: "max", selector: (x) => x.id }).map((rs) => rs.map((x) => [x.id, x.t_id, x.a, x.b])),
  v: fc.uniqueArray(fc.record({ id: fc.integer({ min: 1, max: 12 }), a: opt(small), b: opt(text) }), { minLength: 1, maxLength: 10, size: "max", selector: (x) => x.id }).map((rs) => rs.map((x) => [x.id, x.a, x.b])),
  r: fc.uniqueArray(fc.record({ k: fc.integer({ min: -1, max: 5 }), name: opt(text), a: opt(small) }), { maxLength: 6, size: "max", selector: (x) => x.k }).map((rs) => rs.map((x) => [x.k, x.name, x.a])),
});

/** The INSERTs that load `d` (literals, up to 4 rows a statement). */
export function insertStatements(d: Data): string[] {
  const out: string[] = [];
  for (const table of TABLES) {
    const rows = d[table];
    for (let i = 0; i < rows.length; i += 4) {
      const chunk = rows.slice(i, i + 4).map((r) => `(${r.map(sqlLiteral).join(", ")})`);
      out.push(`INSERT INTO ${table} VALUES ${chunk.join(", ")}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- FROM shapes

export type Category = "1" | "1x" | "2" | "2x";

export type ShapeId =
  | "tu" | "ut" | "tr" | "ur" | "tur" // co-located, core
  | "rt" | "tru" | "tv_id" | "tt_id" | "rr" | "tuv_id" | "tvu_id" // co-located, beyond the core list
  | "tv_a" | "vt_a" | "tu_a" | "uv" // gate-side, core
  | "tv_b" | "tv_mix" | "rt_left" | "tt_a" | "tv_using" | "comma_tu" | "tvr" | "tuv" | "tu_expr" // gate-side, beyond
  | "tu_or" | "tv_cross" | "tv_comma_a" | "tv_real" | "tv_aid" | "tv_bid" | "tv_natural";

interface ShapeDef {
  readonly cat: Category;
  readonly tables: readonly TName[];
  /** ON of the join bringing in tables[i + 1]: [left operand, right operand] as (ref index, column). */
  readonly on: readonly (readonly [readonly [number, string], readonly [number, string]])[];
  /** Which joins may be LEFT (else always INNER). */
  readonly leftOk: readonly boolean[];
  /** Joins forced LEFT. */
  readonly forceLeft?: readonly boolean[];
  readonly using?: string;
  /** NATURAL JOIN / CROSS JOIN (no ON). */
  readonly join?: "natural" | "cross";
  /** The ON equality is `(eq OR left.a = right.a)`: no longer an equality of the vindex columns. */
  readonly or?: boolean;
  readonly comma?: boolean;
  /** A right operand written `col + 0`. */
  readonly plusZero?: boolean;
}

const SHAPES: Readonly<Record<ShapeId, ShapeDef>> = {
  tu: { cat: "1", tables: ["t", "u"], on: [[[0, "id"], [1, "t_id"]]], leftOk: [true] },
  ut: { cat: "1", tables: ["u", "t"], on: [[[0, "t_id"], [1, "id"]]], leftOk: [true] },
  tr: { cat: "1", tables: ["t", "r"], on: [[[0, "a"], [1, "k"]]], leftOk: [true] },
  ur: { cat: "1", tables: ["u", "r"], on: [[[0, "a"], [1, "k"]]], leftOk: [true] },
  tur: { cat: "1", tables: ["t", "u", "r"], on: [[[0, "id"], [1, "t_id"]], [[1, "a"], [2, "k"]]], leftOk: [true, true] },
  rt: { cat: "1x", tables: ["r", "t"], on: [[[0, "k"], [1, "a"]]], leftOk: [false] },
  tru: { cat: "1x", tables: ["t", "r", "u"], on: [[[0, "a"], [1, "k"]], [[2, "t_id"], [0, "id"]]], leftOk: [true, true] },
  tv_id: { cat: "1x", tables: ["t", "v"], on: [[[0, "id"], [1, "id"]]], leftOk: [true] },
  tuv_id: { cat: "1x", tables: ["t", "u", "v"], on: [[[0, "id"], [1, "t_id"]], [[1, "t_id"], [2, "id"]]], leftOk: [true, true] },
  tvu_id: { cat: "1x", tables: ["t", "v", "u"], on: [[[0, "id"], [1, "id"]], [[2, "t_id"], [1, "id"]]], leftOk: [true, true] },
  tt_id: { cat: "1x", tables: ["t", "t"], on: [[[0, "id"], [1, "id"]]], leftOk: [true] },
  rr: { cat: "1x", tables: ["r", "r"], on: [[[0, "a"], [1, "k"]]], leftOk: [true] },
  tv_a: { cat: "2", tables: ["t", "v"], on: [[[0, "a"], [1, "a"]]], leftOk: [true] },
  vt_a: { cat: "2", tables: ["v", "t"], on: [[[0, "a"], [1, "a"]]], leftOk: [true] },
  tu_a: { cat: "2", tables: ["t", "u"], on: [[[0, "a"], [1, "a"]]], leftOk: [true] },
  uv: { cat: "2", tables: ["u", "v"], on: [[[0, "t_id"], [1, "id"]]], leftOk: [true] },
  tv_b: { cat: "2x", tables: ["t", "v"], on: [[[0, "b"], [1, "b"]]], leftOk: [true] },
  tv_mix: { cat: "2x", tables: ["t", "v"], on: [[[0, "a"], [1, "b"]]], leftOk: [true] },
  rt_left: { cat: "2x", tables: ["r", "t"], on: [[[0, "k"], [1, "a"]]], leftOk: [true], forceLeft: [true] },
  tt_a: { cat: "2x", tables: ["t", "t"], on: [[[0, "a"], [1, "a"]]], leftOk: [true] },
  tv_using: { cat: "2x", tables: ["t", "v"], on: [], leftOk: [true], using: "a" },
  comma_tu: { cat: "2x", tables: ["t", "u"], on: [[[0, "id"], [1, "t_id"]]], leftOk: [false], comma: true },
  tvr: { cat: "2x", tables: ["t", "v", "r"], on: [[[0, "a"], [1, "a"]], [[1, "a"], [2, "k"]]], leftOk: [true, true] },
  tuv: { cat: "2x", tables: ["t", "u", "v"], on: [[[0, "id"], [1, "t_id"]], [[1, "a"], [2, "a"]]], leftOk: [true, true] },
  tu_expr: { cat: "2x", tables: ["t", "u"], on: [[[0, "id"], [1, "t_id"]]], leftOk: [true], plusZero: true },
  tu_or: { cat: "2x", tables: ["t", "u"], on: [[[0, "id"], [1, "t_id"]]], leftOk: [true], or: true },
  tv_cross: { cat: "2x", tables: ["t", "v"], on: [], leftOk: [false], join: "cross" },
  tv_comma_a: { cat: "2x", tables: ["t", "v"], on: [[[0, "a"], [1, "a"]]], leftOk: [false], comma: true },
  tv_real: { cat: "2x", tables: ["t", "v"], on: [[[0, "c"], [1, "a"]]], leftOk: [true] },
  tv_aid: { cat: "2x", tables: ["t", "v"], on: [[[0, "a"], [1, "id"]]], leftOk: [true] },
  tv_bid: { cat: "2x", tables: ["t", "v"], on: [[[0, "b"], [1, "id"]]], leftOk: [true] },
  tv_natural: { cat: "2x", tables: ["t", "v"], on: [], leftOk: [true], join: "natural" },
};

export const SHAPE_IDS = Object.keys(SHAPES) as ShapeId[];

/** An extra ON conjunct of the last join, on the table it brings in ("right") or the first ("left"). */
export interface OnExtra {
  readonly side: "right" | "left";
  /** `point`: the table's vindex column = a value (a condition that must not route a LEFT JOIN). */
  readonly kind: "gt" | "notnull" | "ne" | "point";
  readonly n: number;
}

export interface ShapeSpec {
  readonly id: ShapeId;
  readonly left: readonly boolean[];
  /** Write each equality of ON operands swapped. */
  readonly flip: boolean;
  /** `swap`: two different tables aliased by each other's names (`t AS u JOIN u AS t`). */
  readonly alias: "none" | "as" | "bare" | "swap";
  /** `INNER JOIN` / `LEFT OUTER JOIN` instead of `JOIN` / `LEFT JOIN`. */
  readonly longWords: boolean;
  readonly extra: OnExtra | null;
}

const byCat = (cat: Category): ShapeId[] => SHAPE_IDS.filter((id) => SHAPES[id].cat === cat);

export const shapeArb: fc.Arbitrary<ShapeSpec> = fc.record({
  id: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...byCat("1")) },
    { weight: 4, arbitrary: fc.constantFrom(...byCat("2")) },
    { weight: 2, arbitrary: fc.constantFrom(...byCat("1x")) },
    { weight: 3, arbitrary: fc.constantFrom(...byCat("2x")) },
  ),
  left: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
  flip: fc.boolean(),
  alias: fc.constantFrom<ShapeSpec["alias"]>("none", "none", "as", "bare", "swap"),
  longWords: fc.boolean(),
  extra: sometimes(fc.record({ side: fc.constantFrom<OnExtra["side"]>("right", "right", "left"), kind: fc.constantFrom<OnExtra["kind"]>("gt", "notnull", "ne", "point"), n: fc.integer({ min: 0, max: 3 }) }), 0.3),
});

export interface FromRef {
  readonly table: TName;
  readonly q: string;
  /** Null-extended by a LEFT JOIN. */
  readonly outer: boolean;
}

export interface PoolCol {
  readonly ref: number;
  readonly table: TName;
  readonly name: string;
  readonly type: CType;
  readonly nocase: boolean;
  /** The name alone is unambiguous in this FROM. */
  readonly unique: boolean;
  readonly q: string;
}

export interface RenderedFrom {
  readonly cat: Category;
  readonly refs: readonly FromRef[];
  readonly pool: readonly PoolCol[];
  readonly sql: string;
  /** A conjunct the comma form moves into WHERE. */
  readonly whereJoin: string | null;
  /** Columns of the second table `SELECT *` leaves out (USING / NATURAL merge them). */
  readonly starMerged: readonly string[];
}

function textCol(table: TName): string {
  return table === "r" ? "name" : "b";
}

/** `core`: leave out what would take the query beyond its category's core list. */
export function renderFrom(s: JoinSchema, sp: ShapeSpec, core = false): RenderedFrom {
  const def = SHAPES[sp.id];
  const self = def.tables[0] === def.tables[1];
  let aliasing = self && (sp.alias === "none" || sp.alias === "swap") ? "as" : sp.alias;
  if (aliasing === "swap" && (def.tables.length !== 2 || core)) aliasing = "as";
  let cat = def.cat;
  const refs: FromRef[] = def.tables.map((table, i) => {
    const left = i > 0 && !def.comma && ((def.forceLeft?.[i - 1] ?? false) || ((def.leftOk[i - 1] ?? false) && (sp.left[i - 1] ?? false)));
    const q = aliasing === "none" ? table : aliasing === "swap" ? (def.tables[1 - i] ?? table) : `${table}${i}`;
    return { table, q, outer: left };
  });
  if (aliasing === "swap") cat = cat === "1" ? "1x" : cat === "2" ? "2x" : cat;
  // A LEFT JOIN null-extends the table it brings in; later ones joined to it stay as they are.
  const qual = (i: number, c: string): string => `${refs[i]?.q ?? "t"}.${c}`;
  const parts: string[] = [];
  refs.forEach((ref, i) => {
    const named = aliasing === "none" ? ref.table : `${ref.table}${aliasing === "bare" ? " " : " AS "}${ref.q}`;
    if (i === 0) {
      parts.push(named);
      return;
    }
    if (def.comma) {
      parts.push(`, ${named}`);
      return;
    }
    const word = ref.outer ? (sp.longWords ? "LEFT OUTER JOIN" : "LEFT JOIN") : sp.longWords ? "INNER JOIN" : "JOIN";
    if (def.join === "natural") {
      parts.push(` NATURAL ${word} ${named}`);
      return;
    }
    if (def.join === "cross") {
      parts.push(` ${sp.longWords ? "CROSS JOIN" : "JOIN"} ${named}`);
      return;
    }
    if (def.using) {
      parts.push(` ${word} ${named} USING (${def.using})`);
      return;
    }
    const on = def.on[i - 1];
    if (!on) throw new Error(`shape ${sp.id}: no ON for join ${i}`);
    const [[li, lc], [ri, rc]] = on;
    const l = qual(li, lc);
    const r = def.plusZero ? `${qual(ri, rc)} + 0` : qual(ri, rc);
    const eq = sp.flip ? `${r} = ${l}` : `${l} = ${r}`;
    const conds = [def.or ? `(${eq} OR ${qual(li, "a")} = ${qual(ri, "a")})` : eq];
    const extraOk = !core || (def.cat === "2" && sp.extra?.side === "right");
    if (sp.extra && extraOk && i === refs.length - 1) {
      const at = sp.extra.side === "right" ? i : 0;
      const table = refs[at]?.table ?? "t";
      const e = sp.extra;
      const point = `${qual(at, VCOL[table])} = ${table === "r" ? e.n : e.n + 1}`;
      conds.push(e.kind === "gt" ? `${qual(at, "a")} > ${e.n}` : e.kind === "ne" ? `${qual(at, "a")} <> ${e.n}` : e.kind === "point" ? point : `${qual(at, textCol(table))} IS NOT NULL`);
      if (cat === "1") cat = "1x";
      if (cat === "2" && e.side === "left") cat = "2x";
    }
    parts.push(` ${word} ${named} ON ${conds.join(" AND ")}`);
  });
  let whereJoin: string | null = null;
  if (def.comma) {
    const on = def.on[0];
    if (on) whereJoin = `${qual(on[0][0], on[0][1])} = ${qual(on[1][0], on[1][1])}`;
  }
  const counts = new Map<string, number>();
  for (const ref of refs) for (const c of COLUMNS[ref.table]) counts.set(c.name, (counts.get(c.name) ?? 0) + 1);
  const pool: PoolCol[] = refs.flatMap((ref, i) =>
    COLUMNS[ref.table].map((c) => ({ ref: i, table: ref.table, name: c.name, type: c.type, nocase: isNocase(s, ref.table, c.name), unique: counts.get(c.name) === 1, q: ref.q })),
  );
  const merged = def.using ? [def.using] : def.join === "natural" ? COLUMNS[def.tables[1] ?? "t"].map((c) => c.name).filter((n) => COLUMNS[def.tables[0] ?? "t"].some((c) => c.name === n)) : [];
  return { cat, refs, pool, sql: parts.join(""), whereJoin, starMerged: merged };
}

// ---------------------------------------------------------------- expressions

/** A column of the FROM, by index into its pool; `bare`: unqualified where the name is unambiguous. */
export interface ColRef {
  readonly c: number;
  readonly bare: boolean;
  /** Written in upper case, or quoted. */
  readonly spell: "plain" | "upper" | "quoted";
  /** Unqualified even where two tables have the column (SQLite: "ambiguous column name"). */
  readonly ambiguous: boolean;
}

const colRefArb: fc.Arbitrary<ColRef> = fc.record({
  c: fc.nat({ max: 11 }),
  bare: fc.constantFrom(false, false, false, true),
  spell: fc.oneof({ weight: 8, arbitrary: fc.constant("plain" as const) }, { weight: 1, arbitrary: fc.constant("upper" as const) }, { weight: 1, arbitrary: fc.constant("quoted" as const) }),
  ambiguous: fc.oneof({ weight: 30, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

export interface ValSpec {
  readonly small: number;
  readonly id: number;
  readonly text: number;
  readonly real: number;
  readonly param: boolean;
}

const valSpecArb: fc.Arbitrary<ValSpec> = fc.record({
  small: fc.integer({ min: -1, max: 5 }),
  id: fc.integer({ min: 1, max: 13 }),
  text: fc.nat({ max: TEXTS.length - 1 }),
  real: fc.nat({ max: REALS.length - 1 }),
  param: fc.boolean(),
});

export type ItemSpec =
  | { readonly k: "col"; readonly col: ColRef; readonly alias: boolean }
  | { readonly k: "star" }
  | { readonly k: "tstar"; readonly ref: number }
  | { readonly k: "fn"; readonly fn: "typeof" | "length" | "coalesce" | "mul" | "concat"; readonly col: ColRef; readonly alias: boolean }
  | { readonly k: "bin"; readonly op: "+" | "||" | "="; readonly l: ColRef; readonly r: ColRef; readonly alias: boolean };

const itemArb: fc.Arbitrary<ItemSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant("col" as const), col: colRefArb, alias: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ k: "star" as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("tstar" as const), ref: fc.nat({ max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("fn" as const), fn: fc.constantFrom("typeof" as const, "length" as const, "coalesce" as const, "mul" as const, "concat" as const), col: colRefArb, alias: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("bin" as const), op: fc.constantFrom("+" as const, "||" as const, "=" as const), l: colRefArb, r: colRefArb, alias: fc.boolean() }) },
);

export type CmpOp = "=" | "<>" | "<" | ">=" | "IS" | "IS NOT";

/** An id as a point condition writes it: an integer, or text / a REAL SQLite converts to it but the vindex cannot hash as such. */
export interface PointId {
  readonly id: number;
  readonly param: boolean;
  readonly form: "int" | "text" | "real" | "spaced";
}

export type CondSpec =
  | { readonly k: "cmp"; readonly col: ColRef; readonly op: CmpOp; readonly val: ValSpec }
  | { readonly k: "null"; readonly col: ColRef; readonly not: boolean }
  | { readonly k: "in"; readonly col: ColRef; readonly vals: readonly ValSpec[] }
  /** The vindex column of one table of the FROM equal to / IN ids: routes to one or a few shards. */
  | { readonly k: "point"; readonly ref: number; readonly ids: readonly PointId[] }
  | { readonly k: "or"; readonly a: CondSpec; readonly b: CondSpec }
  | { readonly k: "bin"; readonly op: "=" | "<" | "<>"; readonly l: ColRef; readonly r: ColRef };

const simpleCondArb: fc.Arbitrary<CondSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant("cmp" as const), col: colRefArb, op: fc.constantFrom<CmpOp>("=", "<>", "<", ">=", "IS", "IS NOT"), val: valSpecArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("null" as const), col: colRefArb, not: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("in" as const), col: colRefArb, vals: fc.array(valSpecArb, { minLength: 1, maxLength: 3 }) }) },
);

const condArb: fc.Arbitrary<CondSpec> = fc.oneof(
  { weight: 6, arbitrary: simpleCondArb },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("point" as const), ref: fc.nat({ max: 2 }), ids: fc.array(fc.record({ id: fc.integer({ min: 1, max: 13 }), param: fc.boolean(), form: fc.constantFrom<PointId["form"]>("int", "int", "int", "int", "int", "text", "real", "spaced") }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("or" as const), a: simpleCondArb, b: simpleCondArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("bin" as const), op: fc.constantFrom("=" as const, "<" as const, "<>" as const), l: colRefArb, r: colRefArb }) },
);

export type Dir = "" | " ASC" | " DESC";
export type Nulls = "" | " NULLS FIRST" | " NULLS LAST";
const dirArb = fc.constantFrom<Dir>("", " ASC", " DESC");
const nullsArb = fc.constantFrom<Nulls>("", "", " NULLS FIRST", " NULLS LAST");

export type OrderRef =
  | { readonly k: "item"; readonly i: number; readonly how: "expr" | "pos" | "alias" }
  | { readonly k: "col"; readonly col: ColRef }
  | { readonly k: "expr"; readonly col: ColRef; readonly fn: "abs" | "lower" | "typeof" };

export interface OrderSpec {
  readonly ref: OrderRef;
  readonly dir: Dir;
  readonly nulls: Nulls;
}

const orderArb: fc.Arbitrary<OrderSpec> = fc.record({
  ref: fc.oneof(
    { weight: 4, arbitrary: fc.record({ k: fc.constant("item" as const), i: fc.nat({ max: 4 }), how: fc.constantFrom("expr" as const, "pos" as const, "alias" as const) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("col" as const), col: colRefArb }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("expr" as const), col: colRefArb, fn: fc.constantFrom("abs" as const, "lower" as const, "typeof" as const) }) },
  ),
  dir: dirArb,
  nulls: nullsArb,
});

export interface LimitSpec {
  readonly count: number;
  readonly offset: number | null;
  readonly param: boolean;
}

const limitArb: fc.Arbitrary<LimitSpec> = fc.record({ count: fc.integer({ min: -1, max: 6 }), offset: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }), param: fc.boolean() });

export interface RowsQuery {
  readonly k: "rows";
  readonly items: readonly ItemSpec[];
  readonly where: readonly CondSpec[];
  readonly distinct: boolean;
  /** null: no ORDER BY; else these terms then a tie-break that makes the order total. */
  readonly order: readonly OrderSpec[] | null;
  readonly tieDesc: boolean;
  readonly limit: LimitSpec | null;
}

export type AggFn = "count*" | "count" | "countd" | "sum" | "min" | "max" | "avg";

export interface AggSpec {
  readonly fn: AggFn;
  readonly col: ColRef;
  readonly alias: boolean;
}

export interface GroupSpec {
  readonly col: ColRef;
  readonly alias: boolean;
  /** How GROUP BY / ORDER BY name it: its text, its position, or its alias. */
  readonly ref: "expr" | "pos" | "alias";
  readonly dir: Dir;
}

export interface AggQuery {
  readonly k: "agg";
  readonly group: readonly GroupSpec[];
  readonly aggs: readonly AggSpec[];
  readonly having: { readonly fn: "count*" | "count" | "sum" | "min" | "max"; readonly col: ColRef; readonly op: ">" | ">=" | "<" | "=" | "<>"; readonly n: number; readonly param: boolean } | null;
  readonly groupFirst: boolean;
  readonly where: readonly CondSpec[];
  /** null: no ORDER BY; else ORDER BY [an aggregate,] every group key. */
  readonly order: { readonly agg: number | null; readonly dir: Dir } | null;
  readonly limit: LimitSpec | null;
}

export interface JoinQuery {
  /** Render only the core form of each feature (see Ctx.core). */
  readonly core: boolean;
  readonly shape: ShapeSpec;
  readonly q: RowsQuery | AggQuery;
  readonly style: ParamStyle;
}

const rowsArb: fc.Arbitrary<RowsQuery> = fc.record({
  k: fc.constant("rows" as const),
  items: fc.array(itemArb, { minLength: 1, maxLength: 4 }),
  where: fc.array(condArb, { maxLength: 2 }),
  distinct: fc.constantFrom(false, false, false, true),
  order: sometimes(fc.array(orderArb, { maxLength: 3 }), 0.6),
  tieDesc: fc.boolean(),
  limit: sometimes(limitArb, 0.35),
});

const aggArb: fc.Arbitrary<AggQuery> = fc.record({
  k: fc.constant("agg" as const),
  group: fc.array(fc.record({ col: colRefArb, alias: fc.boolean(), ref: fc.constantFrom("expr" as const, "pos" as const, "alias" as const), dir: dirArb }), { maxLength: 2 }),
  aggs: fc.array(fc.record({ fn: fc.constantFrom<AggFn>("count*", "count", "countd", "sum", "min", "max", "avg"), col: colRefArb, alias: fc.boolean() }), { minLength: 1, maxLength: 3 }),
  having: sometimes(fc.record({ fn: fc.constantFrom("count*" as const, "count" as const, "sum" as const, "min" as const, "max" as const), col: colRefArb, op: fc.constantFrom(">" as const, ">=" as const, "<" as const, "=" as const, "<>" as const), n: fc.integer({ min: 0, max: 4 }), param: fc.boolean() }), 0.35),
  groupFirst: fc.boolean(),
  where: fc.array(condArb, { maxLength: 2 }),
  order: sometimes(fc.record({ agg: fc.option(fc.nat({ max: 2 }), { nil: null }), dir: dirArb }), 0.5),
  limit: sometimes(limitArb, 0.35),
});

export const joinQueryArb: fc.Arbitrary<JoinQuery> = fc.record({
  core: fc.boolean(),
  shape: shapeArb,
  q: fc.oneof({ weight: 3, arbitrary: rowsArb }, { weight: 2, arbitrary: aggArb }),
  style: paramStyleArb,
});

// ---------------------------------------------------------------- rendering

/** How a query's result must match the reference's. */
export interface JoinCheck extends Rendered {
  readonly cat: Category;
  /** ORDER BY fixes the order: arrays must be equal. */
  readonly ordered: boolean;
  /** Output columns of REAL sums / averages (compared with a tolerance). */
  readonly approx: ReadonlySet<number>;
  /** Output columns compared folded by a collation (SQLite may return any of the equal texts). */
  readonly fold: ReadonlyMap<number, Collation>;
  /** LIMIT without ORDER BY: any `n` rows of the unlimited result; this is that result's SQL. */
  readonly unlimited: Rendered | null;
}

/** One output column: the pool column it is (for star items and bare columns), else null. */
type Out = PoolCol | null;

class Ctx {
  readonly from: RenderedFrom;
  /** Render the core form of each feature (the query stays in its shape's category where it can). */
  readonly core: boolean;
  cat: Category;

  constructor(from: RenderedFrom, core: boolean) {
    this.from = from;
    this.core = core;
    this.cat = from.cat;
  }

  get gateSide(): boolean {
    return this.cat === "2" || this.cat === "2x";
  }

  /** A column of the same table as `r` (the `c` of `other` picks which). */
  sameTable(r: ColRef, other: ColRef): ColRef {
    const ref = this.col(r).ref;
    const cols = this.from.pool.map((p, c) => ({ p, c })).filter(({ p }) => p.ref === ref);
    const pick = cols[other.c % cols.length];
    return { c: pick?.c ?? r.c, bare: other.bare, spell: other.spell, ambiguous: other.ambiguous };
  }

  col(r: ColRef): PoolCol {
    const p = this.from.pool[r.c % this.from.pool.length];
    if (!p) throw new Error("empty pool");
    return p;
  }

  text(r: ColRef): string {
    const p = this.col(r);
    const spell = this.core ? "plain" : r.spell;
    const word = (w: string): string => (spell === "upper" ? w.toUpperCase() : spell === "quoted" ? `"${w}"` : w);
    if (spell !== "plain") this.beyond();
    if (((r.bare && p.unique) || r.ambiguous) && !this.core) {
      this.beyond();
      return word(p.name);
    }
    return `${word(p.q)}.${word(p.name)}`;
  }

  /** A feature beyond the core list of the category. */
  beyond(): void {
    if (this.cat === "1") this.cat = "1x";
    else if (this.cat === "2") this.cat = "2x";
  }

  /** A feature beyond the core list only for a gate-side join. */
  gateBeyond(): void {
    if (this.cat === "2") this.cat = "2x";
  }

  refsOf(...rs: ColRef[]): Set<number> {
    return new Set(rs.map((r) => this.col(r).ref));
  }
}

function value(w: SqlWriter, p: PoolCol, v: ValSpec): string {
  const raw: SqlValue = p.name === "id" || p.name === "t_id" ? v.id : p.type === "INTEGER" ? v.small : p.type === "REAL" ? (REALS[v.real] ?? 1) : (TEXTS[v.text] ?? "x");
  return v.param ? w.param(raw) : sqlLiteral(raw);
}

function condSql(w: SqlWriter, x: Ctx, c: CondSpec): { sql: string; refs: Set<number> } {
  switch (c.k) {
    case "cmp": {
      const p = x.col(c.col);
      return { sql: `${x.text(c.col)} ${c.op} ${value(w, p, c.val)}`, refs: x.refsOf(c.col) };
    }
    case "null":
      return { sql: `${x.text(c.col)} IS ${c.not ? "NOT " : ""}NULL`, refs: x.refsOf(c.col) };
    case "in": {
      const p = x.col(c.col);
      return { sql: `${x.text(c.col)} IN (${c.vals.map((v) => value(w, p, v)).join(", ")})`, refs: x.refsOf(c.col) };
    }
    case "point": {
      const i = x.core && x.gateSide ? 0 : c.ref % x.from.refs.length;
      const ref = x.from.refs[i];
      const target = `${ref?.q ?? "t"}.${VCOL[ref?.table ?? "t"]}`;
      const ids = c.ids.map((v) => {
        const form = x.core ? "int" : v.form;
        if (form !== "int") x.beyond();
        const raw: SqlValue = form === "text" ? String(v.id) : form === "real" ? v.id + 0.0 : form === "spaced" ? ` ${v.id}` : v.id;
        // A REAL with no fraction is a JS integer: as a literal it must be written 5.0.
        if (form === "real" && !v.param) return `${v.id}.0`;
        return v.param ? w.param(raw) : sqlLiteral(raw);
      });
      return { sql: ids.length === 1 ? `${target} = ${ids[0] ?? "1"}` : `${target} IN (${ids.join(", ")})`, refs: new Set([i]) };
    }
    case "or": {
      if (x.core) return condSql(w, x, c.a);
      x.beyond();
      const a = condSql(w, x, c.a);
      const b = condSql(w, x, c.b);
      return { sql: `(${a.sql} OR ${b.sql})`, refs: new Set([...a.refs, ...b.refs]) };
    }
    case "bin": {
      const r = x.core ? x.sameTable(c.l, c.r) : c.r;
      const refs = x.refsOf(c.l, r);
      if (refs.size > 1) x.beyond();
      return { sql: `${x.text(c.l)} ${c.op} ${x.text(r)}`, refs };
    }
  }
}

/** In core form a gate-side join filters only its first table: other conditions are left out. */
function coreCond(x: Ctx, c: CondSpec): boolean {
  if (!x.core || !x.gateSide) return true;
  const cols = (d: CondSpec): ColRef[] => (d.k === "point" ? [] : d.k === "or" ? cols(d.a) : d.k === "bin" ? [d.l] : [d.col]);
  return cols(c).every((r) => x.col(r).ref === 0);
}

function whereSql(w: SqlWriter, x: Ctx, conds: readonly CondSpec[]): string {
  const parts = conds.filter((c) => coreCond(x, c)).map((c) => {
    const r = condSql(w, x, c);
    // Gate-side joins: the core list filters the first (outer) table only.
    if ([...r.refs].some((i) => i !== 0)) x.gateBeyond();
    return r.sql;
  });
  if (x.from.whereJoin) parts.unshift(x.from.whereJoin);
  return parts.length > 0 ? ` WHERE ${parts.join(" AND ")}` : "";
}

function limitSql(w: SqlWriter, l: LimitSpec): string {
  const n = (v: number): string => (l.param ? w.param(v) : String(v));
  return ` LIMIT ${n(l.count)}${l.offset === null ? "" : ` OFFSET ${n(l.offset)}`}`;
}

interface RenderedItem {
  readonly sql: string;
  /** The expression as ORDER BY may repeat it (null for a star). */
  readonly expr: string | null;
  readonly alias: string | null;
  readonly outs: readonly Out[];
}

function itemSql(x: Ctx, it: ItemSpec, i: number): RenderedItem {
  const from = x.from;
  switch (it.k) {
    case "star": {
      // USING / NATURAL merge the right table's common columns into the left's.
      const outs = from.pool.filter((p) => !(p.ref > 0 && from.starMerged.includes(p.name)));
      return { sql: "*", expr: null, alias: null, outs };
    }
    case "tstar": {
      const ref = it.ref % from.refs.length;
      return { sql: `${from.refs[ref]?.q ?? "t"}.*`, expr: null, alias: null, outs: from.pool.filter((p) => p.ref === ref) };
    }
    case "col": {
      const e = x.text(it.col);
      const alias = it.alias ? `x${i}` : null;
      return { sql: alias ? `${e} AS ${alias}` : e, expr: e, alias, outs: [x.col(it.col)] };
    }
    case "fn": {
      const c = x.text(it.col);
      const e = it.fn === "typeof" ? `typeof(${c})` : it.fn === "length" ? `length(${c})` : it.fn === "coalesce" ? `coalesce(${c}, -1)` : it.fn === "mul" ? `${c} * 2` : `${c} || '!'`;
      const alias = it.alias ? `x${i}` : null;
      return { sql: alias ? `${e} AS ${alias}` : e, expr: e, alias, outs: [null] };
    }
    case "bin": {
      const r = x.core && x.gateSide ? x.sameTable(it.l, it.r) : it.r;
      if (x.refsOf(it.l, r).size > 1) x.gateBeyond();
      const e = `${x.text(it.l)} ${it.op} ${x.text(r)}`;
      const alias = it.alias ? `x${i}` : null;
      return { sql: alias ? `${e} AS ${alias}` : e, expr: e, alias, outs: [null] };
    }
  }
}

function foldOf(p: Out): Collation | undefined {
  return p?.nocase ? "NOCASE" : undefined;
}

function renderRows(s: JoinSchema, x: Ctx, q: RowsQuery, w: SqlWriter): JoinCheck {
  void s;
  const from = x.from;
  const gateSide = x.cat === "2" || x.cat === "2x";
  let items = q.items.map((it, i) => itemSql(x, it, i));
  const ordered = q.order !== null;
  // Gate-side joins order by selected columns: the primary keys are selected for the tie-break.
  const pkText = from.refs.map((ref) => `${ref.q}.${PK[ref.table]}`);
  if (ordered && gateSide && !q.distinct) {
    items = [...items, ...from.refs.map((ref, i) => ({ sql: pkText[i] ?? "1", expr: pkText[i] ?? "1", alias: null, outs: [from.pool.find((p) => p.ref === i && p.name === PK[ref.table]) ?? null] }))];
  }
  const starts: number[] = [];
  let width = 0;
  for (const it of items) {
    starts.push(width);
    width += it.outs.length;
  }
  const outs: Out[] = items.flatMap((it) => it.outs);
  const where = whereSql(w, x, q.where);
  let order = "";
  if (q.order) {
    const terms: string[] = [];
    for (const o of q.order) {
      const ref = o.ref;
      if (ref.k === "item") {
        // A star item cannot be named; the term names the next item that can.
        const named = items.map((it, at) => ({ it, at })).filter(({ it }) => it.expr !== null);
        const pick = named[ref.i % Math.max(1, named.length)];
        if (!pick) continue;
        const how = ref.how === "alias" && !pick.it.alias ? "expr" : ref.how;
        terms.push(`${how === "pos" ? String((starts[pick.at] ?? 0) + 1) : how === "alias" ? (pick.it.alias ?? "") : (pick.it.expr ?? "")}${o.dir}${o.nulls}`);
      } else if (!q.distinct && !(x.core && gateSide)) {
        // Terms that name no output column: not with DISTINCT (SQLite's order is then unspecified).
        x.gateBeyond();
        if (ref.k === "col" || x.core) terms.push(`${x.text(ref.col)}${o.dir}${o.nulls}`);
        else {
          x.beyond();
          terms.push(`${ref.fn}(${x.text(ref.col)})${o.dir}${o.nulls}`);
        }
      }
    }
    const tie = q.tieDesc ? " DESC" : "";
    if (q.distinct) for (let i = 1; i <= width; i++) terms.push(`${i}${tie}`);
    else for (const pk of pkText) terms.push(`${pk}${tie}`);
    order = ` ORDER BY ${terms.join(", ")}`;
  }
  const folded = q.distinct && outs.some((o) => o?.nocase);
  // LIMIT without ORDER BY: any rows of the result; not with DISTINCT over NOCASE (which of the equal texts is unspecified).
  const limit = q.limit && (ordered || !folded) && (ordered || !(x.core && gateSide)) ? limitSql(w, q.limit) : "";
  if (limit && !ordered) x.gateBeyond();
  const head = `SELECT ${q.distinct ? "DISTINCT " : ""}${items.map((it) => it.sql).join(", ")} FROM ${from.sql}${where}`;
  const r = w.finish(`${head}${order}${limit}`);
  const fold = new Map<number, Collation>();
  if (q.distinct) outs.forEach((o, i) => {
    const f = foldOf(o);
    if (f) fold.set(i, f);
  });
  let unlimited: Rendered | null = null;
  if (limit && !ordered) {
    // The same statement without LIMIT, with the same placeholders in the same order.
    const again = new SqlWriter("?", []);
    const x2 = new Ctx(from, x.core);
    const where2 = whereSql(again, x2, q.where);
    unlimited = again.finish(`SELECT ${q.distinct ? "DISTINCT " : ""}${items.map((it) => it.sql).join(", ")} FROM ${from.sql}${where2}`);
  }
  return { ...r, cat: x.cat, ordered, approx: new Set(), fold, unlimited };
}

function aggExpr(x: Ctx, a: AggSpec): string {
  if (a.fn === "count*") return "count(*)";
  const c = x.text(a.col);
  return a.fn === "countd" ? `count(DISTINCT ${c})` : `${a.fn}(${c})`;
}

function renderAgg(s: JoinSchema, x: Ctx, q: AggQuery, w: SqlWriter): JoinCheck {
  void s;
  x.gateBeyond();
  interface AggOut {
    readonly expr: string;
    readonly alias: string | null;
    readonly group: GroupSpec | null;
    readonly agg: AggSpec | null;
  }
  const groupOuts: AggOut[] = q.group.map((g, i) => ({ expr: x.text(g.col), alias: g.alias ? `g${i}` : null, group: g, agg: null }));
  // The gate takes one DISTINCT argument per query (as in one table): every count(DISTINCT …) counts the first one's column.
  const dcol = q.aggs.find((a) => a.fn === "countd")?.col;
  const aggs = q.aggs.map((a) => (a.fn === "countd" && dcol ? { ...a, col: dcol } : a));
  const aggOuts: AggOut[] = aggs.map((a, i) => ({ expr: aggExpr(x, a), alias: a.alias ? `a${i}` : null, group: null, agg: a }));
  const outs = q.groupFirst ? [...groupOuts, ...aggOuts] : [...aggOuts, ...groupOuts];
  const name = (at: number, how: "expr" | "pos" | "alias"): string => {
    const o = outs[at];
    if (how === "pos") return String(at + 1);
    return how === "alias" && o?.alias ? o.alias : (o?.expr ?? "NULL");
  };
  const list = outs.map((o) => (o.alias ? `${o.expr} AS ${o.alias}` : o.expr)).join(", ");
  const where = whereSql(w, x, q.where);
  const groupBy = q.group.length > 0 ? ` GROUP BY ${q.group.map((g) => name(outs.findIndex((o) => o.group === g), g.ref)).join(", ")}` : "";
  let having = "";
  if (q.having) {
    const h = q.having;
    const p = x.col(h.col);
    // Only numeric aggregates compared with an integer.
    const fn = (h.fn === "sum" || h.fn === "min" || h.fn === "max") && p.type !== "INTEGER" ? "count" : h.fn;
    const e = fn === "count*" ? "count(*)" : `${fn}(${x.text(h.col)})`;
    having = ` HAVING ${e} ${h.op} ${h.param ? w.param(h.n) : String(h.n)}`;
  }
  // Aggregates not ordered by: avg / sum of REAL differ in the last bits; min / max of NOCASE text are any of the equal texts.
  const orderable = (a: AggSpec): boolean => {
    const p = x.col(a.col);
    return !(a.fn === "avg" || (a.fn === "sum" && p.type !== "INTEGER") || ((a.fn === "min" || a.fn === "max") && p.nocase));
  };
  let order = "";
  if (q.order) {
    const terms: string[] = [];
    if (q.order.agg !== null && aggOuts.length > 0) {
      const target = aggOuts[q.order.agg % aggOuts.length];
      const at = outs.findIndex((o) => o === target);
      if (target?.agg && orderable(target.agg)) terms.push(`${name(at, "expr")}${q.order.dir}`);
    }
    for (const g of q.group) terms.push(`${name(outs.findIndex((o) => o.group === g), g.ref)}${g.dir}`);
    if (terms.length > 0) order = ` ORDER BY ${terms.join(", ")}`;
  }
  const ordered = order !== "" || q.group.length === 0;
  const limit = q.limit && ordered ? limitSql(w, q.limit) : "";
  const r = w.finish(`SELECT ${list} FROM ${x.from.sql}${where}${groupBy}${having}${order}${limit}`);
  const approx = new Set<number>();
  const fold = new Map<number, Collation>();
  outs.forEach((o, i) => {
    const a = o.agg;
    if (a && a.fn !== "count*") {
      const p = x.col(a.col);
      if (a.fn === "avg" || (a.fn === "sum" && p.type !== "INTEGER")) approx.add(i);
      if ((a.fn === "min" || a.fn === "max") && p.nocase) fold.set(i, "NOCASE");
    }
    if (o.group && x.col(o.group.col).nocase) fold.set(i, "NOCASE");
  });
  return { ...r, cat: x.cat, ordered, approx, fold, unlimited: null };
}

export function renderJoinQuery(s: JoinSchema, jq: JoinQuery): JoinCheck {
  const x = new Ctx(renderFrom(s, jq.shape, jq.core), jq.core);
  const w = new SqlWriter(jq.style, []);
  return jq.q.k === "rows" ? renderRows(s, x, jq.q, w) : renderAgg(s, x, jq.q, w);
}

// ---------------------------------------------------------------- scenarios and the runner

export interface Scenario {
  readonly schema: JoinSchema;
  readonly shards: number;
  readonly data: Data;
  readonly queries: readonly JoinQuery[];
}

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  schema: schemaArb,
  shards: fc.integer({ min: 1, max: 4 }),
  data: dataArb,
  queries: fc.array(joinQueryArb, { minLength: 1, maxLength: 6 }),
});

/** Per category: answered (and equal), refused with UNSUPPORTED, and failed on both sides. */
export interface Counts {
  answered: number;
  refused: number;
  bothFailed: number;
}

export interface JoinStats {
  readonly counts: Record<Category, Counts>;
  /** Refusal messages by category, with how often each was given (for the report). */
  readonly refusals: Record<Category, Map<string, number>>;
}

export function newStats(): JoinStats {
  const zero = (): Counts => ({ answered: 0, refused: 0, bothFailed: 0 });
  return {
    counts: { "1": zero(), "1x": zero(), "2": zero(), "2x": zero() },
    refusals: { "1": new Map(), "1x": new Map(), "2": new Map(), "2x": new Map() },
  };
}

/** Of the queries of category `k` SQLite answers, the share the gate answered. */
export function answeredShare(st: JoinStats, k: Category): number {
  const c = st.counts[k];
  const n = c.answered + c.refused;
  return n === 0 ? 0 : c.answered / n;
}

export function statsReport(st: JoinStats): string {
  return (Object.keys(st.counts) as Category[])
    .map((k) => {
      const s = st.counts[k];
      const top = [...st.refusals[k]].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env["JOIN_REFUSALS"] ?? 4)).map(([m, n]) => `${n}× ${m}`);
      return `  ${k.padEnd(2)}: answered ${s.answered}, refused ${s.refused}, both failed ${s.bothFailed} (answered ${(answeredShare(st, k) * 100).toFixed(0)}%)${top.length ? `\n        ${top.join("\n        ")}` : ""}`;
    })
    .join("\n");
}

/** The gate and the reference part on a query: the message names it and the statements so far. */
export class Mismatch extends Error {}

type Outcome = { ok: true; value: QueryResult } | { ok: false; code: string; error: string };

async function attempt(fn: () => QueryResult | Promise<QueryResult>): Promise<Outcome> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    const vt = toVtError(e);
    return { ok: false, code: vt.code, error: `${vt.code}: ${vt.message}` };
  }
}

function label(r: Rendered): string {
  return `${r.sql}${r.params === undefined ? "" : `  -- params ${show(r.params)}`}`;
}

/**
 * Runs a scenario: loads the rows through the gate and into the reference, then each query on
 * both; throws Mismatch naming the query where they part. `skip`: queries not to run (a hunt
 * past known bugs).
 */
export async function runScenario(sc: Scenario, st: JoinStats, skip?: (q: JoinCheck) => boolean): Promise<void> {
  const specs = tableSpecs(sc.schema);
  const c = createCluster({ shards: sc.shards, tables: specs });
  const log: string[] = [`-- ${sc.shards} shard(s)`, ...Object.values(specs).map((t) => `${t.create};${t.reference ? " -- reference" : ""}`)];
  const fail = (what: string): never => {
    throw new Mismatch(`${what}\n-- statements so far:\n${log.join("\n")}`);
  };

  async function query(q: JoinCheck): Promise<void> {
    log.push(`${label(q)};  -- category ${q.cat}`);
    const exp = await attempt(() => c.reference(q.sql, q.params));
    const act = await attempt(() => c.run(q.sql, q.params));
    const counts = st.counts[q.cat];
    if (!exp.ok && !act.ok) {
      counts.bothFailed++;
      return;
    }
    if (!exp.ok && act.ok) return fail(`gate answered ${show(act.value.rows)} where SQLite failed: ${exp.error}`);
    if (exp.ok && !act.ok) {
      if (act.code === "UNSUPPORTED" && q.cat !== "1") {
        counts.refused++;
        const m = st.refusals[q.cat];
        m.set(act.error, (m.get(act.error) ?? 0) + 1);
        return;
      }
      return fail(`category ${q.cat}: gate failed where SQLite answered ${show(exp.value.rows)}: ${act.error}`);
    }
    if (!exp.ok || !act.ok) return;
    counts.answered++;
    const approx = new Map([...q.approx].map((i) => [i, 1e-12] as const));
    if (!q.unlimited) {
      const d = diffResults(act.value, exp.value, { ordered: q.ordered, approx, fold: q.fold });
      if (d) fail(`category ${q.cat}: ${d}`);
      return;
    }
    // LIMIT without ORDER BY: as many rows as SQLite gives, each a row of the unlimited result.
    if (show(act.value.columns) !== show(exp.value.columns)) fail(`category ${q.cat}: columns ${show(act.value.columns)} != expected ${show(exp.value.columns)}`);
    if (act.value.rows.length !== exp.value.rows.length) fail(`category ${q.cat}: ${act.value.rows.length} rows != expected ${exp.value.rows.length}\n  got ${show(act.value.rows)}`);
    const s = diffSubset(act.value, c.reference(q.unlimited.sql, q.unlimited.params));
    if (s) fail(`category ${q.cat}: ${s}`);
  }

  try {
    for (const sql of insertStatements(sc.data)) {
      log.push(`${sql};`);
      const exp = await attempt(() => c.reference(sql));
      const act = await attempt(() => c.run(sql));
      if (!exp.ok || !act.ok) fail(`loading failed: gate ${act.ok ? "ok" : act.error}, SQLite ${exp.ok ? "ok" : exp.error}`);
    }
    for (const jq of sc.queries) {
      const q = renderJoinQuery(sc.schema, jq);
      if (!skip?.(q)) await query(q);
    }
  } finally {
    c.close();
  }
}
