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
// Besides joins, a scenario's steps are (categories without "-x": the README lists them as
// supported, so UNSUPPORTED is a failure; "-x": refused by the README, so refusal or a right answer):
//   "cte" / "cte-x"  non-recursive CTEs over t, u, r or a co-located join (column lists, aliases that
//        rename columns, CAST, COLLATE, col + 1), queried with the join grammar's SELECTs alone or
//        joined with t, u, r, v or itself; "-x" when the join is not co-located, plus CTEs that
//        aggregate, deduplicate, limit, window, read a CTE or a subquery, recurse, or a compound;
//   "sub" / "sub-x"  correlated EXISTS / NOT EXISTS / scalar subqueries co-located with the outer
//        row (vindex = vindex) or reading only r; "-x": other correlations, OR, nesting, outer r;
//   "win" / "win-x"  window functions partitioned by a vindex column (or on a single-shard route);
//        "-x": other partitions, the null-extended side of a LEFT JOIN, named WINDOWs, aggregates;
//   "dml" / "dml-x"  INSERT … SELECT between the tables, writes to r, co-located correlated
//        UPDATE / DELETE; after each write every shard is checked (r copies, rows on their shards).

import fc from "fast-check";
import type { Collation } from "../../gate/engine/compare.ts";
import { sqlLiteral, type SqlValue } from "../../contract/sql-values.ts";
import type { QueryResult } from "../../contract/tablet-rpc.ts";
import { toVtError } from "../../contract/errors.ts";
import type { Params, TableSpec } from "./fake-cursor.ts";
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
  t: [
    { name: "id", type: "INTEGER" },
    { name: "a", type: "INTEGER" },
    { name: "b", type: "TEXT" },
    { name: "c", type: "REAL" },
  ],
  u: [
    { name: "id", type: "INTEGER" },
    { name: "t_id", type: "INTEGER" },
    { name: "a", type: "INTEGER" },
    { name: "b", type: "TEXT" },
  ],
  v: [
    { name: "id", type: "INTEGER" },
    { name: "a", type: "INTEGER" },
    { name: "b", type: "TEXT" },
  ],
  r: [
    { name: "k", type: "INTEGER" },
    { name: "name", type: "TEXT" },
    { name: "a", type: "INTEGER" },
  ],
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
  t: fc
    .uniqueArray(fc.record({ id: fc.integer({ min: 1, max: 12 }), a: opt(small), b: opt(text), c: opt(real) }), {
      minLength: 1,
      maxLength: 10,
      size: "max",
      selector: (x) => x.id,
    })
    .map((rs) => rs.map((x) => [x.id, x.a, x.b, x.c])),
  // t_id is the vindex column: the gate refuses NULL there (no sequence).
  u: fc
    .uniqueArray(fc.record({ id: fc.integer({ min: 1, max: 40 }), t_id: fc.integer({ min: 1, max: 13 }), a: opt(small), b: opt(text) }), {
      minLength: 1,
      maxLength: 16,
      size: "max",
      selector: (x) => x.id,
    })
    .map((rs) => rs.map((x) => [x.id, x.t_id, x.a, x.b])),
  v: fc
    .uniqueArray(fc.record({ id: fc.integer({ min: 1, max: 12 }), a: opt(small), b: opt(text) }), {
      minLength: 1,
      maxLength: 10,
      size: "max",
      selector: (x) => x.id,
    })
    .map((rs) => rs.map((x) => [x.id, x.a, x.b])),
  r: fc
    .uniqueArray(fc.record({ k: fc.integer({ min: -1, max: 5 }), name: opt(text), a: opt(small) }), { maxLength: 6, size: "max", selector: (x) => x.k })
    .map((rs) => rs.map((x) => [x.k, x.name, x.a])),
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

export type Category = "1" | "1x" | "2" | "2x" | "cte" | "cte-x" | "sub" | "sub-x" | "win" | "win-x" | "dml" | "dml-x";
export const CATEGORIES: readonly Category[] = ["1", "1x", "2", "2x", "cte", "cte-x", "sub", "sub-x", "win", "win-x", "dml", "dml-x"];

/** Categories the gate must answer (the README lists them as supported): UNSUPPORTED is a failure. */
export function mustAnswer(c: Category): boolean {
  return c === "1" || c === "cte" || c === "sub" || c === "win" || c === "dml";
}

export type ShapeId =
  | "tu"
  | "ut"
  | "tr"
  | "ur"
  | "tur" // co-located, core
  | "rt"
  | "tru"
  | "tv_id"
  | "tt_id"
  | "rr"
  | "tuv_id"
  | "tvu_id" // co-located, beyond the core list
  | "tv_a"
  | "vt_a"
  | "tu_a"
  | "uv" // gate-side, core
  | "tv_b"
  | "tv_mix"
  | "rt_left"
  | "tt_a"
  | "tv_using"
  | "comma_tu"
  | "tvr"
  | "tuv"
  | "tu_expr" // gate-side, beyond
  | "tu_or"
  | "tv_cross"
  | "tv_comma_a"
  | "tv_real"
  | "tv_aid"
  | "tv_bid"
  | "tv_natural";

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
  tu: {
    cat: "1",
    tables: ["t", "u"],
    on: [
      [
        [0, "id"],
        [1, "t_id"],
      ],
    ],
    leftOk: [true],
  },
  ut: {
    cat: "1",
    tables: ["u", "t"],
    on: [
      [
        [0, "t_id"],
        [1, "id"],
      ],
    ],
    leftOk: [true],
  },
  tr: {
    cat: "1",
    tables: ["t", "r"],
    on: [
      [
        [0, "a"],
        [1, "k"],
      ],
    ],
    leftOk: [true],
  },
  ur: {
    cat: "1",
    tables: ["u", "r"],
    on: [
      [
        [0, "a"],
        [1, "k"],
      ],
    ],
    leftOk: [true],
  },
  tur: {
    cat: "1",
    tables: ["t", "u", "r"],
    on: [
      [
        [0, "id"],
        [1, "t_id"],
      ],
      [
        [1, "a"],
        [2, "k"],
      ],
    ],
    leftOk: [true, true],
  },
  rt: {
    cat: "1x",
    tables: ["r", "t"],
    on: [
      [
        [0, "k"],
        [1, "a"],
      ],
    ],
    leftOk: [false],
  },
  tru: {
    cat: "1x",
    tables: ["t", "r", "u"],
    on: [
      [
        [0, "a"],
        [1, "k"],
      ],
      [
        [2, "t_id"],
        [0, "id"],
      ],
    ],
    leftOk: [true, true],
  },
  tv_id: {
    cat: "1x",
    tables: ["t", "v"],
    on: [
      [
        [0, "id"],
        [1, "id"],
      ],
    ],
    leftOk: [true],
  },
  tuv_id: {
    cat: "1x",
    tables: ["t", "u", "v"],
    on: [
      [
        [0, "id"],
        [1, "t_id"],
      ],
      [
        [1, "t_id"],
        [2, "id"],
      ],
    ],
    leftOk: [true, true],
  },
  tvu_id: {
    cat: "1x",
    tables: ["t", "v", "u"],
    on: [
      [
        [0, "id"],
        [1, "id"],
      ],
      [
        [2, "t_id"],
        [1, "id"],
      ],
    ],
    leftOk: [true, true],
  },
  tt_id: {
    cat: "1x",
    tables: ["t", "t"],
    on: [
      [
        [0, "id"],
        [1, "id"],
      ],
    ],
    leftOk: [true],
  },
  rr: {
    cat: "1x",
    tables: ["r", "r"],
    on: [
      [
        [0, "a"],
        [1, "k"],
      ],
    ],
    leftOk: [true],
  },
  tv_a: {
    cat: "2",
    tables: ["t", "v"],
    on: [
      [
        [0, "a"],
        [1, "a"],
      ],
    ],
    leftOk: [true],
  },
  vt_a: {
    cat: "2",
    tables: ["v", "t"],
    on: [
      [
        [0, "a"],
        [1, "a"],
      ],
    ],
    leftOk: [true],
  },
  tu_a: {
    cat: "2",
    tables: ["t", "u"],
    on: [
      [
        [0, "a"],
        [1, "a"],
      ],
    ],
    leftOk: [true],
  },
  uv: {
    cat: "2",
    tables: ["u", "v"],
    on: [
      [
        [0, "t_id"],
        [1, "id"],
      ],
    ],
    leftOk: [true],
  },
  tv_b: {
    cat: "2x",
    tables: ["t", "v"],
    on: [
      [
        [0, "b"],
        [1, "b"],
      ],
    ],
    leftOk: [true],
  },
  tv_mix: {
    cat: "2x",
    tables: ["t", "v"],
    on: [
      [
        [0, "a"],
        [1, "b"],
      ],
    ],
    leftOk: [true],
  },
  rt_left: {
    cat: "2x",
    tables: ["r", "t"],
    on: [
      [
        [0, "k"],
        [1, "a"],
      ],
    ],
    leftOk: [true],
    forceLeft: [true],
  },
  tt_a: {
    cat: "2x",
    tables: ["t", "t"],
    on: [
      [
        [0, "a"],
        [1, "a"],
      ],
    ],
    leftOk: [true],
  },
  tv_using: { cat: "2x", tables: ["t", "v"], on: [], leftOk: [true], using: "a" },
  comma_tu: {
    cat: "2x",
    tables: ["t", "u"],
    on: [
      [
        [0, "id"],
        [1, "t_id"],
      ],
    ],
    leftOk: [false],
    comma: true,
  },
  tvr: {
    cat: "2x",
    tables: ["t", "v", "r"],
    on: [
      [
        [0, "a"],
        [1, "a"],
      ],
      [
        [1, "a"],
        [2, "k"],
      ],
    ],
    leftOk: [true, true],
  },
  tuv: {
    cat: "2x",
    tables: ["t", "u", "v"],
    on: [
      [
        [0, "id"],
        [1, "t_id"],
      ],
      [
        [1, "a"],
        [2, "a"],
      ],
    ],
    leftOk: [true, true],
  },
  tu_expr: {
    cat: "2x",
    tables: ["t", "u"],
    on: [
      [
        [0, "id"],
        [1, "t_id"],
      ],
    ],
    leftOk: [true],
    plusZero: true,
  },
  tu_or: {
    cat: "2x",
    tables: ["t", "u"],
    on: [
      [
        [0, "id"],
        [1, "t_id"],
      ],
    ],
    leftOk: [true],
    or: true,
  },
  tv_cross: { cat: "2x", tables: ["t", "v"], on: [], leftOk: [false], join: "cross" },
  tv_comma_a: {
    cat: "2x",
    tables: ["t", "v"],
    on: [
      [
        [0, "a"],
        [1, "a"],
      ],
    ],
    leftOk: [false],
    comma: true,
  },
  tv_real: {
    cat: "2x",
    tables: ["t", "v"],
    on: [
      [
        [0, "c"],
        [1, "a"],
      ],
    ],
    leftOk: [true],
  },
  tv_aid: {
    cat: "2x",
    tables: ["t", "v"],
    on: [
      [
        [0, "a"],
        [1, "id"],
      ],
    ],
    leftOk: [true],
  },
  tv_bid: {
    cat: "2x",
    tables: ["t", "v"],
    on: [
      [
        [0, "b"],
        [1, "id"],
      ],
    ],
    leftOk: [true],
  },
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
  extra: sometimes(
    fc.record({
      side: fc.constantFrom<OnExtra["side"]>("right", "right", "left"),
      kind: fc.constantFrom<OnExtra["kind"]>("gt", "notnull", "ne", "point"),
      n: fc.integer({ min: 0, max: 3 }),
    }),
    0.3,
  ),
});

export interface FromRef {
  readonly table: TName;
  readonly q: string;
  /** Null-extended by a LEFT JOIN. */
  readonly outer: boolean;
  /** A unique column (the ORDER BY tie-break) and the column a point condition names. */
  readonly pk: string;
  readonly vcol: string;
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
  /** Compared with ids (1..13) rather than small values. */
  readonly idLike: boolean;
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
    return { table, q, outer: left, pk: PK[table], vcol: VCOL[table] };
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
      conds.push(
        e.kind === "gt"
          ? `${qual(at, "a")} > ${e.n}`
          : e.kind === "ne"
            ? `${qual(at, "a")} <> ${e.n}`
            : e.kind === "point"
              ? point
              : `${qual(at, textCol(table))} IS NOT NULL`,
      );
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
    COLUMNS[ref.table].map((c) => ({
      ref: i,
      table: ref.table,
      name: c.name,
      type: c.type,
      nocase: isNocase(s, ref.table, c.name),
      unique: counts.get(c.name) === 1,
      q: ref.q,
      idLike: c.name === "id" || c.name === "t_id",
    })),
  );
  const merged = def.using
    ? [def.using]
    : def.join === "natural"
      ? COLUMNS[def.tables[1] ?? "t"].map((c) => c.name).filter((n) => COLUMNS[def.tables[0] ?? "t"].some((c) => c.name === n))
      : [];
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
  spell: fc.oneof(
    { weight: 8, arbitrary: fc.constant("plain" as const) },
    { weight: 1, arbitrary: fc.constant("upper" as const) },
    { weight: 1, arbitrary: fc.constant("quoted" as const) },
  ),
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
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("fn" as const),
      fn: fc.constantFrom("typeof" as const, "length" as const, "coalesce" as const, "mul" as const, "concat" as const),
      col: colRefArb,
      alias: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("bin" as const),
      op: fc.constantFrom("+" as const, "||" as const, "=" as const),
      l: colRefArb,
      r: colRefArb,
      alias: fc.boolean(),
    }),
  },
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
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constant("cmp" as const), col: colRefArb, op: fc.constantFrom<CmpOp>("=", "<>", "<", ">=", "IS", "IS NOT"), val: valSpecArb }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("null" as const), col: colRefArb, not: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("in" as const), col: colRefArb, vals: fc.array(valSpecArb, { minLength: 1, maxLength: 3 }) }) },
);

const condArb: fc.Arbitrary<CondSpec> = fc.oneof(
  { weight: 6, arbitrary: simpleCondArb },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("point" as const),
      ref: fc.nat({ max: 2 }),
      ids: fc.array(
        fc.record({
          id: fc.integer({ min: 1, max: 13 }),
          param: fc.boolean(),
          form: fc.constantFrom<PointId["form"]>("int", "int", "int", "int", "int", "text", "real", "spaced"),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("or" as const), a: simpleCondArb, b: simpleCondArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("bin" as const), op: fc.constantFrom("=" as const, "<" as const, "<>" as const), l: colRefArb, r: colRefArb }),
  },
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
    {
      weight: 4,
      arbitrary: fc.record({ k: fc.constant("item" as const), i: fc.nat({ max: 4 }), how: fc.constantFrom("expr" as const, "pos" as const, "alias" as const) }),
    },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("col" as const), col: colRefArb }) },
    {
      weight: 1,
      arbitrary: fc.record({ k: fc.constant("expr" as const), col: colRefArb, fn: fc.constantFrom("abs" as const, "lower" as const, "typeof" as const) }),
    },
  ),
  dir: dirArb,
  nulls: nullsArb,
});

export interface LimitSpec {
  readonly count: number;
  readonly offset: number | null;
  readonly param: boolean;
}

const limitArb: fc.Arbitrary<LimitSpec> = fc.record({
  count: fc.integer({ min: -1, max: 6 }),
  offset: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }),
  param: fc.boolean(),
});

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
  readonly having: {
    readonly fn: "count*" | "count" | "sum" | "min" | "max";
    readonly col: ColRef;
    readonly op: ">" | ">=" | "<" | "=" | "<>";
    readonly n: number;
    readonly param: boolean;
  } | null;
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
  group: fc.array(fc.record({ col: colRefArb, alias: fc.boolean(), ref: fc.constantFrom("expr" as const, "pos" as const, "alias" as const), dir: dirArb }), {
    maxLength: 2,
  }),
  aggs: fc.array(fc.record({ fn: fc.constantFrom<AggFn>("count*", "count", "countd", "sum", "min", "max", "avg"), col: colRefArb, alias: fc.boolean() }), {
    minLength: 1,
    maxLength: 3,
  }),
  having: sometimes(
    fc.record({
      fn: fc.constantFrom("count*" as const, "count" as const, "sum" as const, "min" as const, "max" as const),
      col: colRefArb,
      op: fc.constantFrom(">" as const, ">=" as const, "<" as const, "=" as const, "<>" as const),
      n: fc.integer({ min: 0, max: 4 }),
      param: fc.boolean(),
    }),
    0.35,
  ),
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
  /** A `WITH … ` prefix (rendered with the statement's writer), for queries over CTEs. */
  readonly withSql: ((w: SqlWriter) => string) | null;

  constructor(from: RenderedFrom, core: boolean, withSql: ((w: SqlWriter) => string) | null = null) {
    this.from = from;
    this.core = core;
    this.cat = from.cat;
    this.withSql = withSql;
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
  const raw: SqlValue = p.idLike ? v.id : p.type === "INTEGER" ? v.small : p.type === "REAL" ? (REALS[v.real] ?? 1) : (TEXTS[v.text] ?? "x");
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
      const target = `${ref?.q ?? "t"}.${ref?.vcol ?? "id"}`;
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
  const parts = conds
    .filter((c) => coreCond(x, c))
    .map((c) => {
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
      const e =
        it.fn === "typeof"
          ? `typeof(${c})`
          : it.fn === "length"
            ? `length(${c})`
            : it.fn === "coalesce"
              ? `coalesce(${c}, -1)`
              : it.fn === "mul"
                ? `${c} * 2`
                : `${c} || '!'`;
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
  const pkText = from.refs.map((ref) => `${ref.q}.${ref.pk}`);
  if (ordered && gateSide && !q.distinct) {
    items = [
      ...items,
      ...from.refs.map((ref, i) => ({
        sql: pkText[i] ?? "1",
        expr: pkText[i] ?? "1",
        alias: null,
        outs: [from.pool.find((p) => p.ref === i && p.name === ref.pk) ?? null],
      })),
    ];
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
  const head = `${x.withSql?.(w) ?? ""}SELECT ${q.distinct ? "DISTINCT " : ""}${items.map((it) => it.sql).join(", ")} FROM ${from.sql}${where}`;
  const r = w.finish(`${head}${order}${limit}`);
  const fold = new Map<number, Collation>();
  if (q.distinct)
    outs.forEach((o, i) => {
      const f = foldOf(o);
      if (f) fold.set(i, f);
    });
  let unlimited: Rendered | null = null;
  if (limit && !ordered) {
    // The same statement without LIMIT, with the same placeholders in the same order.
    const again = new SqlWriter("?", []);
    const x2 = new Ctx(from, x.core, x.withSql);
    const with2 = x.withSql?.(again) ?? "";
    const where2 = whereSql(again, x2, q.where);
    unlimited = again.finish(`${with2}SELECT ${q.distinct ? "DISTINCT " : ""}${items.map((it) => it.sql).join(", ")} FROM ${from.sql}${where2}`);
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
  const groupBy =
    q.group.length > 0
      ? ` GROUP BY ${q.group
          .map((g) =>
            name(
              outs.findIndex((o) => o.group === g),
              g.ref,
            ),
          )
          .join(", ")}`
      : "";
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
      const at = target ? outs.indexOf(target) : -1;
      if (target?.agg && orderable(target.agg)) terms.push(`${name(at, "expr")}${q.order.dir}`);
    }
    for (const g of q.group)
      terms.push(
        `${name(
          outs.findIndex((o) => o.group === g),
          g.ref,
        )}${g.dir}`,
      );
    if (terms.length > 0) order = ` ORDER BY ${terms.join(", ")}`;
  }
  const ordered = order !== "" || q.group.length === 0;
  const limit = q.limit && ordered ? limitSql(w, q.limit) : "";
  const r = w.finish(`${x.withSql?.(w) ?? ""}SELECT ${list} FROM ${x.from.sql}${where}${groupBy}${having}${order}${limit}`);
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

// ---------------------------------------------------------------- CTEs over the tables

/** The FROM inside a CTE (co-located or reference only, as the gate plans CTEs) and its unique key. */
export type CteSrc = "t" | "u" | "r" | "tu" | "ut" | "tr";

const CTE_SRC: Readonly<Record<CteSrc, { readonly tables: readonly TName[]; readonly sql: string; readonly key: readonly [number, string] }>> = {
  t: { tables: ["t"], sql: "t", key: [0, "id"] },
  u: { tables: ["u"], sql: "u", key: [0, "id"] },
  r: { tables: ["r"], sql: "r", key: [0, "k"] },
  tu: { tables: ["t", "u"], sql: "t JOIN u ON t.id = u.t_id", key: [1, "id"] },
  ut: { tables: ["u", "t"], sql: "u JOIN t ON u.t_id = t.id", key: [0, "id"] },
  tr: { tables: ["t", "r"], sql: "t LEFT JOIN r ON t.a = r.k", key: [0, "id"] },
};

/** A RenderedFrom over plain tables named by themselves (for conditions rendered inside a CTE). */
function plainFrom(s: JoinSchema, tables: readonly TName[], sql: string, cat: Category = "1"): RenderedFrom {
  const refs: FromRef[] = tables.map((table, i) => ({ table, q: table, outer: sql.includes("LEFT") && i > 0, pk: PK[table], vcol: VCOL[table] }));
  const counts = new Map<string, number>();
  for (const ref of refs) for (const c of COLUMNS[ref.table]) counts.set(c.name, (counts.get(c.name) ?? 0) + 1);
  const pool: PoolCol[] = refs.flatMap((ref, i) =>
    COLUMNS[ref.table].map((c) => ({
      ref: i,
      table: ref.table,
      name: c.name,
      type: c.type,
      nocase: isNocase(s, ref.table, c.name),
      unique: counts.get(c.name) === 1,
      q: ref.q,
      idLike: c.name === "id" || c.name === "t_id",
    })),
  );
  return { cat, refs, pool, sql, whereJoin: null, starMerged: [] };
}

/** One more column of a CTE: a column of its FROM as is, CAST, with COLLATE NOCASE, or plus one. */
export interface CteColSpec {
  readonly c: number;
  readonly form: "plain" | "cast" | "collate" | "plus1";
  readonly to: "INTEGER" | "TEXT" | "REAL";
}

export type CteOuterId = "x" | "x_u" | "u_x" | "x_t" | "x_r" | "x_v_id" | "x_v_a" | "x_x";

export interface CteQuery {
  readonly src: CteSrc;
  readonly cols: readonly CteColSpec[];
  /** Output names (a permutation: the first n are used), so `id` may name another column. */
  readonly names: readonly string[];
  readonly keyAt: number;
  /** `WITH x(n1, n2) AS (…)` instead of `AS` aliases. */
  readonly colList: boolean;
  readonly where: readonly CondSpec[];
  readonly outer: CteOuterId;
  /** Which output column of x the outer join equates. */
  readonly j: number;
  readonly left: boolean;
  readonly core: boolean;
  readonly q: RowsQuery | AggQuery;
  readonly style: ParamStyle;
}

const CTE_NAMES = ["id", "a", "b", "c", "k", "t_id", "n", "m"];

const cteColArb: fc.Arbitrary<CteColSpec> = fc.record({
  c: fc.nat({ max: 7 }),
  form: fc.constantFrom<CteColSpec["form"]>("plain", "plain", "plain", "cast", "collate", "plus1"),
  to: fc.constantFrom<CteColSpec["to"]>("INTEGER", "TEXT", "REAL"),
});

export const cteQueryArb: fc.Arbitrary<CteQuery> = fc.record({
  src: fc.constantFrom<CteSrc>("t", "t", "u", "r", "tu", "ut", "tr"),
  cols: fc.array(cteColArb, { minLength: 1, maxLength: 4 }),
  names: fc.shuffledSubarray(CTE_NAMES, { minLength: CTE_NAMES.length, maxLength: CTE_NAMES.length }),
  keyAt: fc.nat({ max: 4 }),
  colList: fc.boolean(),
  where: fc.array(condArb, { maxLength: 2 }),
  outer: fc.constantFrom<CteOuterId>("x", "x", "x_u", "u_x", "x_t", "x_r", "x_v_id", "x_v_a", "x_x"),
  j: fc.nat({ max: 4 }),
  left: fc.boolean(),
  core: fc.boolean(),
  q: fc.oneof({ weight: 3, arbitrary: rowsArb }, { weight: 2, arbitrary: aggArb }),
  style: paramStyleArb,
});

interface XCol {
  readonly name: string;
  readonly expr: string;
  readonly type: CType;
  readonly nocase: boolean;
  readonly idLike: boolean;
  /** A sharded table's vindex column as is: x is sharded by it. */
  readonly vindex: boolean;
}

function cteCols(s: JoinSchema, cq: CteQuery): { src: RenderedFrom; cols: XCol[]; key: string } {
  const def = CTE_SRC[cq.src];
  const src = plainFrom(s, def.tables, def.sql);
  const keyCol = src.pool.find((p) => p.ref === def.key[0] && p.name === def.key[1]);
  if (!keyCol) throw new Error("no key");
  const specs: (CteColSpec | "key")[] = [...cq.cols];
  specs.splice(Math.min(cq.keyAt, specs.length), 0, "key");
  // biome-ignore lint/suspicious/useIterableCallbackReturn: the switch covers every form (tsc checks it)
  const cols = specs.map((sp, i): XCol => {
    const p = sp === "key" ? keyCol : (src.pool[sp.c % src.pool.length] ?? keyCol);
    const name = CTE_NAMES.length > i ? (cq.names[i] ?? `n${i}`) : `n${i}`;
    const base = `${p.q}.${p.name}`;
    const vindex = p.table !== "r" && p.name === VCOL[p.table];
    if (sp === "key" || sp.form === "plain") return { name, expr: base, type: p.type, nocase: p.nocase, idLike: p.idLike, vindex };
    switch (sp.form) {
      case "cast":
        return { name, expr: `CAST(${base} AS ${sp.to})`, type: sp.to, nocase: p.nocase, idLike: p.idLike, vindex: false };
      case "collate":
        return { name, expr: `${base} COLLATE NOCASE`, type: p.type, nocase: true, idLike: p.idLike, vindex: false };
      case "plus1":
        return { name, expr: `${base} + 1`, type: p.type === "INTEGER" ? "INTEGER" : "REAL", nocase: false, idLike: p.idLike, vindex: false };
    }
  });
  return { src, cols, key: cols[Math.min(cq.keyAt, cq.cols.length)]?.name ?? "id" };
}

const OUTER_TABLE: Partial<Record<CteOuterId, readonly [TName, string]>> = {
  x_u: ["u", "t_id"],
  u_x: ["u", "t_id"],
  x_t: ["t", "id"],
  x_r: ["r", "k"],
  x_v_id: ["v", "id"],
  x_v_a: ["v", "a"],
};

export function renderCteQuery(s: JoinSchema, cq: CteQuery): JoinCheck {
  const { src, cols, key } = cteCols(s, cq);
  const isRef = cq.src === "r";
  const jc = cols[cq.j % cols.length] ?? cols[0];
  if (!jc) throw new Error("empty CTE");
  const co = !isRef && jc.vindex;
  const vcol = cols.find((c) => c.vindex)?.name ?? key;
  const xRef = (q: string, outer: boolean): FromRef => ({ table: CTE_SRC[cq.src].tables[0] ?? "t", q, outer, pk: key, vcol });
  const xPool = (ref: number, q: string): PoolCol[] =>
    cols.map((c) => ({ ref, table: "t", name: c.name, type: c.type, nocase: c.nocase, unique: true, q, idLike: c.idLike }));
  const join = cq.left ? "LEFT JOIN" : "JOIN";
  let cat: Category;
  let refs: FromRef[];
  let pool: PoolCol[];
  let sql: string;
  const other = OUTER_TABLE[cq.outer];
  if (cq.outer === "x") {
    cat = "1";
    refs = [xRef("x", false)];
    pool = xPool(0, "x");
    sql = "x";
  } else if (cq.outer === "x_x") {
    cat = isRef || co ? "1x" : "2x";
    refs = [xRef("x1", false), xRef("x2", cq.left)];
    pool = [...xPool(0, "x1"), ...xPool(1, "x2")].map((p) => ({ ...p, unique: false }));
    sql = `x AS x1 ${join} x AS x2 ON x1.${jc.name} = x2.${jc.name}`;
  } else if (other) {
    const [table, col] = other;
    const tref: FromRef = { table, q: table, outer: cq.outer !== "u_x" && cq.left, pk: PK[table], vcol: VCOL[table] };
    const tcols = COLUMNS[table];
    const tpool = (ref: number): PoolCol[] =>
      tcols.map((c) => ({
        ref,
        table,
        name: c.name,
        type: c.type,
        nocase: isNocase(s, table, c.name),
        unique: !cols.some((x) => x.name === c.name),
        q: table,
        idLike: c.name === "id" || c.name === "t_id",
      }));
    const xp = (ref: number): PoolCol[] => xPool(ref, "x").map((p) => ({ ...p, unique: !tcols.some((c) => c.name === p.name) }));
    if (cq.outer === "u_x") {
      // A sharded table LEFT JOIN x: x on the right.
      cat = isRef || co ? "1" : "2x";
      refs = [tref, xRef("x", cq.left)];
      pool = [...tpool(0), ...xp(1)];
      sql = `u ${join} x ON u.t_id = x.${jc.name}`;
    } else {
      const sharded = table !== "r";
      if (!sharded) cat = isRef ? "1x" : "1";
      else if (isRef) cat = cq.left ? "2x" : "1x";
      else if (col === VCOL[table] && co) cat = "1";
      else cat = "2x";
      refs = [xRef("x", false), tref];
      pool = [...xp(0), ...tpool(1)];
      sql = `x ${join} ${table} ON x.${jc.name} = ${table}.${col}`;
    }
  } else throw new Error(`outer ${cq.outer}`);
  const from: RenderedFrom = { cat, refs, pool, sql, whereJoin: null, starMerged: [] };
  const withSql = (w: SqlWriter): string => {
    const cx = new Ctx(src, true);
    const conds = cq.where.map((c) => condSql(w, cx, c).sql);
    const where = conds.length > 0 ? ` WHERE ${conds.join(" AND ")}` : "";
    const head = cq.colList ? `x(${cols.map((c) => c.name).join(", ")})` : "x";
    const list = cols.map((c) => (cq.colList ? c.expr : `${c.expr} AS ${c.name}`)).join(", ");
    return `WITH ${head} AS (SELECT ${list} FROM ${src.sql}${where}) `;
  };
  const x = new Ctx(from, cq.core, withSql);
  const w = new SqlWriter(cq.style, []);
  const r = cq.q.k === "rows" ? renderRows(s, x, cq.q, w) : renderAgg(s, x, cq.q, w);
  return { ...r, cat: r.cat === "1" ? "cte" : "cte-x" };
}

/** CTEs the gate must refuse (or answer right): they aggregate, deduplicate, limit, window, read a CTE or a subquery, recurse. */
export interface BadCteSpec {
  readonly k: "agg" | "aggv" | "distinct" | "limit" | "window" | "nested" | "subq" | "recursive" | "compound";
  readonly src: "t" | "u";
  readonly outer: "alone" | "join_u" | "t_join" | "count";
  readonly n: number;
}

export const badCteArb: fc.Arbitrary<BadCteSpec> = fc.record({
  k: fc.constantFrom<BadCteSpec["k"]>("agg", "aggv", "distinct", "limit", "window", "nested", "subq", "recursive", "compound"),
  src: fc.constantFrom<BadCteSpec["src"]>("t", "u"),
  outer: fc.constantFrom<BadCteSpec["outer"]>("alone", "join_u", "t_join", "count"),
  n: fc.integer({ min: 0, max: 4 }),
});

export function renderBadCte(s: JoinSchema, b: BadCteSpec): JoinCheck {
  const t = b.src;
  const pk = `${t}.id`;
  const vc = `${t}.${VCOL[t]}`;
  let body: string;
  let prefix = "WITH ";
  let nocaseN = false;
  switch (b.k) {
    case "agg":
      body = `x AS (SELECT ${t}.a AS k, count(*) AS n FROM ${t} GROUP BY ${t}.a)`;
      break;
    case "aggv":
      body = `x AS (SELECT ${vc} AS k, count(*) AS n FROM ${t} GROUP BY ${vc})`;
      break;
    case "distinct":
      body = `x AS (SELECT DISTINCT ${t}.a AS k, ${t}.b AS n FROM ${t})`;
      nocaseN = isNocase(s, t, "b");
      break;
    case "limit":
      body = `x AS (SELECT ${vc} AS k, ${t}.a AS n FROM ${t} ORDER BY ${pk} LIMIT ${b.n + 1})`;
      break;
    case "window":
      body = `x AS (SELECT ${vc} AS k, row_number() OVER (ORDER BY ${pk}) AS n FROM ${t})`;
      break;
    case "nested":
      body = `y AS (SELECT ${vc} AS k, ${t}.a AS n FROM ${t}), x AS (SELECT y.k AS k, y.n AS n FROM y WHERE y.n >= ${b.n})`;
      break;
    case "subq":
      body = `x AS (SELECT ${vc} AS k, ${t}.a AS n FROM ${t} WHERE ${t}.a IN (SELECT v.a FROM v))`;
      break;
    case "recursive":
      prefix = "WITH RECURSIVE ";
      body = `x(k, n) AS (SELECT 1, 0 UNION ALL SELECT k + 1, n + 1 FROM x WHERE k < ${b.n + 3})`;
      break;
    case "compound":
      body = `x AS (SELECT ${vc} AS k, ${t}.a AS n FROM ${t})`;
      break;
  }
  let main: string;
  const approx = new Set<number>();
  const fold = new Map<number, Collation>();
  if (b.k === "compound") main = "SELECT x.k FROM x UNION SELECT v.id FROM v";
  else if (b.outer === "alone") {
    main = "SELECT x.k, x.n FROM x";
    if (nocaseN) fold.set(1, "NOCASE");
  } else if (b.outer === "join_u") {
    main = "SELECT x.k, x.n, u.id FROM x JOIN u ON x.k = u.t_id";
    if (nocaseN) fold.set(1, "NOCASE");
  } else if (b.outer === "t_join") main = "SELECT t.id, x.n FROM t JOIN x ON t.id = x.k";
  else {
    main = "SELECT count(*), count(x.n), sum(x.k) FROM x";
    approx.add(2);
  }
  return { sql: `${prefix}${body} ${main}`, params: undefined, cat: "cte-x", ordered: false, approx, fold, unlimited: null };
}

// ---------------------------------------------------------------- correlated subqueries

export type SubOuter = "t" | "u" | "tu" | "r";
export type SubInner = "u" | "t" | "v" | "r";
/** How the subquery is correlated with the outer row. */
export type SubCorr = "vindex" | "a" | "id" | "cross" | "or" | "shift" | "nested";

export interface SubSpec {
  readonly outer: SubOuter;
  /** For the outer t JOIN u: the table the subquery is correlated with (0: t, 1: u). */
  readonly anchor: number;
  readonly kind: "exists" | "notexists" | "scalar";
  readonly fn: "count" | "sum" | "max" | "min" | "col";
  readonly inner: SubInner;
  readonly corr: SubCorr;
  readonly flip: boolean;
  readonly extra: { readonly col: "a" | "b"; readonly op: ">" | "<>" | "notnull"; readonly n: number } | null;
  /** Where the subquery goes: the select list, WHERE, or both. */
  readonly place: "select" | "where" | "both";
  /** A scalar subquery in WHERE: compared with a number or with the outer row's a. */
  readonly cmp: { readonly op: ">" | "=" | "<" | ">="; readonly n: number; readonly outerA: boolean };
  readonly filter: { readonly op: ">" | "IS NOT" | "<"; readonly n: number } | null;
  readonly shape: "rows" | "count" | "group" | "sumsub";
  readonly order: "none" | "pk" | "sub";
  readonly desc: boolean;
  readonly limit: number | null;
  readonly orInWhere: boolean;
}

export const subArb: fc.Arbitrary<SubSpec> = fc.record({
  outer: fc.constantFrom<SubOuter>("t", "t", "t", "u", "tu", "r"),
  anchor: fc.nat({ max: 1 }),
  kind: fc.constantFrom<SubSpec["kind"]>("exists", "notexists", "scalar", "scalar"),
  fn: fc.constantFrom<SubSpec["fn"]>("count", "count", "sum", "max", "min", "col"),
  inner: fc.constantFrom<SubInner>("u", "u", "u", "t", "v", "r", "r"),
  corr: fc.oneof(
    { weight: 8, arbitrary: fc.constant<SubCorr>("vindex") },
    { weight: 4, arbitrary: fc.constantFrom<SubCorr>("a", "id", "cross", "or", "shift", "nested") },
  ),
  flip: fc.boolean(),
  extra: sometimes(
    fc.record({
      col: fc.constantFrom("a" as const, "b" as const),
      op: fc.constantFrom(">" as const, "<>" as const, "notnull" as const),
      n: fc.integer({ min: 0, max: 3 }),
    }),
    0.4,
  ),
  place: fc.constantFrom<SubSpec["place"]>("select", "where", "both"),
  cmp: fc.record({ op: fc.constantFrom(">" as const, "=" as const, "<" as const, ">=" as const), n: fc.integer({ min: 0, max: 3 }), outerA: fc.boolean() }),
  filter: sometimes(fc.record({ op: fc.constantFrom(">" as const, "IS NOT" as const, "<" as const), n: fc.integer({ min: 0, max: 3 }) }), 0.3),
  shape: fc.constantFrom<SubSpec["shape"]>("rows", "rows", "rows", "count", "group", "sumsub"),
  order: fc.constantFrom<SubSpec["order"]>("none", "pk", "pk", "sub"),
  desc: fc.boolean(),
  limit: sometimes(fc.integer({ min: 0, max: 4 }), 0.3),
  orInWhere: fc.constantFrom(false, false, false, true),
});

const OUTER_FROM: Readonly<Record<SubOuter, { readonly sql: string; readonly tables: readonly TName[]; readonly pk: readonly string[] }>> = {
  t: { sql: "t", tables: ["t"], pk: ["t.id"] },
  u: { sql: "u", tables: ["u"], pk: ["u.id"] },
  tu: { sql: "t JOIN u ON t.id = u.t_id", tables: ["t", "u"], pk: ["u.id"] },
  r: { sql: "r", tables: ["r"], pk: ["r.k"] },
};

const TEXT_COL: Readonly<Record<TName, string>> = { t: "b", u: "b", v: "b", r: "name" };

export function renderSub(s: JoinSchema, sp: SubSpec): JoinCheck {
  const of = OUTER_FROM[sp.outer];
  const anchor: TName = of.tables[sp.anchor % of.tables.length] ?? "t";
  const ia = "s";
  const inner = sp.inner;
  const ic = (c: string): string => `${ia}.${c}`;
  const oc = (c: string): string => `${anchor}.${c}`;
  const eq = (l: string, r: string): string => (sp.flip ? `${r} = ${l}` : `${l} = ${r}`);
  const innerV = ic(VCOL[inner]);
  const outerV = oc(VCOL[anchor]);
  const innerSharded = inner !== "r";
  const outerSharded = anchor !== "r";
  // Co-located: both sides' vindex columns equal (same vindex), or the subquery reads only r.
  let ok = !innerSharded;
  let corr: string;
  switch (sp.corr) {
    case "vindex":
      corr = inner === "r" ? eq(ic("k"), oc("a")) : eq(innerV, outerV);
      if (innerSharded && outerSharded) ok = true;
      break;
    case "a":
      corr = eq(ic("a"), oc("a"));
      break;
    case "id":
      corr = eq(ic(PK[inner]), oc(PK[anchor]));
      if (innerSharded && outerSharded && PK[inner] === VCOL[inner] && PK[anchor] === VCOL[anchor]) ok = true;
      break;
    case "cross":
      corr = eq(innerV, oc("a"));
      break;
    case "or":
      corr = `(${inner === "r" ? eq(ic("k"), oc("a")) : eq(innerV, outerV)} OR ${ic("a")} = ${oc("a")})`;
      break;
    case "shift":
      corr = eq(innerV, `${outerV} + 1`);
      break;
    case "nested":
      corr = `${inner === "r" ? eq(ic("k"), oc("a")) : eq(innerV, outerV)} AND EXISTS (SELECT 1 FROM v AS n WHERE n.id = ${innerV})`;
      ok = false;
      break;
  }
  const conds = [corr];
  if (sp.extra) {
    const col = sp.extra.col === "b" ? TEXT_COL[inner] : "a";
    conds.push(
      sp.extra.op === "notnull"
        ? `${ic(col)} IS NOT NULL`
        : `${ic(col)} ${sp.extra.op} ${sp.extra.col === "b" ? sqlLiteral(TEXTS[sp.extra.n] ?? "x") : sp.extra.n}`,
    );
  }
  const innerFrom = `${inner} AS ${ia} WHERE ${conds.join(" AND ")}`;
  const fold = new Map<number, Collation>();
  let scalarNocase = false;
  const scalarFn = (): string => {
    const fn = sp.fn === "col" && !(inner === "r" && sp.corr === "vindex") ? "max" : sp.fn;
    switch (fn) {
      case "count":
        return "count(*)";
      case "sum":
        return `sum(${ic("a")})`;
      case "min":
        return `min(${ic("a")})`;
      case "max":
        scalarNocase = isNocase(s, inner, TEXT_COL[inner]);
        return `max(${ic(TEXT_COL[inner])})`;
      case "col":
        return ic("name");
    }
  };
  const sub = sp.kind === "scalar" ? `(SELECT ${scalarFn()} FROM ${innerFrom})` : `${sp.kind === "notexists" ? "NOT " : ""}EXISTS (SELECT 1 FROM ${innerFrom})`;
  const whereSub = sp.kind === "scalar" ? `${sub} ${sp.cmp.op} ${sp.cmp.outerA ? oc("a") : String(sp.cmp.n)}` : sub;
  const where: string[] = [];
  const outer0 = of.tables[0] ?? "t";
  if (sp.filter) where.push(`${outer0}.a ${sp.filter.op} ${sp.filter.n}`);
  if (sp.place !== "select") {
    if (sp.orInWhere && where.length > 0) where[0] = `(${where[0] ?? ""} OR ${whereSub})`;
    else where.push(whereSub);
  }
  const whereText = where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "";
  const withSub = sp.place !== "where";
  let sql: string;
  let ordered = false;
  const approx = new Set<number>();
  switch (sp.shape) {
    case "rows": {
      const items = [...of.pk, `${outer0}.a`, ...(withSub ? [`${sub} AS sq`] : [])];
      if (withSub && scalarNocase && sp.kind === "scalar") fold.set(items.length - 1, "NOCASE");
      let order = "";
      const dir = sp.desc ? " DESC" : "";
      if (sp.order === "pk" || (sp.order === "sub" && !withSub)) order = ` ORDER BY ${of.pk.map((p) => `${p}${dir}`).join(", ")}`;
      else if (sp.order === "sub") order = ` ORDER BY sq${dir}, ${of.pk.join(", ")}`;
      // ORDER BY a NOCASE max: the order of equal texts follows whichever text SQLite kept.
      if (sp.order === "sub" && withSub && scalarNocase && sp.kind === "scalar") order = ` ORDER BY ${of.pk.join(", ")}`;
      ordered = order !== "";
      const limit = ordered && sp.limit !== null ? ` LIMIT ${sp.limit}` : "";
      sql = `SELECT ${items.join(", ")} FROM ${of.sql}${whereText}${order}${limit}`;
      break;
    }
    case "count":
      sql = `SELECT count(*) FROM ${of.sql}${whereText}`;
      ordered = true;
      break;
    case "group":
      sql = `SELECT ${outer0}.a, count(*) FROM ${of.sql}${whereText} GROUP BY ${outer0}.a ORDER BY 1`;
      ordered = true;
      break;
    case "sumsub": {
      const e = sp.kind === "scalar" ? sub : `(${sub})`;
      sql = `SELECT count(*), sum(${scalarNocase && sp.kind === "scalar" ? `length(${e})` : e}) FROM ${of.sql}${whereText}`;
      approx.add(1);
      ordered = true;
      break;
    }
  }
  return { sql, params: undefined, cat: ok ? "sub" : "sub-x", ordered, approx, fold, unlimited: null };
}

// ---------------------------------------------------------------- window functions

export type WinFrom = "t" | "u" | "tu" | "tlu" | "tr";

export interface WinSpec {
  readonly from: WinFrom;
  readonly fn: "row_number" | "rank" | "dense_rank" | "count" | "sum" | "max" | "lag";
  /** PARTITION BY: a vindex column, it and another column, another column only, nothing, the null-extended side's vindex column, an expression of the vindex column. */
  readonly part: "vindex" | "vindex2" | "other" | "none" | "right" | "expr";
  readonly side: number;
  readonly ord: "a" | "b" | "none";
  readonly dir: Dir;
  readonly frame: boolean;
  /** WHERE <vindex col> = point: a single-shard route (any window allowed). */
  readonly point: number | null;
  readonly filter: number | null;
  readonly outerOrder: "none" | "pk" | "w";
  readonly limit: number | null;
  readonly distinct: boolean;
  readonly named: boolean;
  readonly agg: boolean;
  readonly two: boolean;
}

export const winArb: fc.Arbitrary<WinSpec> = fc.record({
  from: fc.constantFrom<WinFrom>("t", "u", "u", "tu", "tlu", "tr"),
  fn: fc.constantFrom<WinSpec["fn"]>("row_number", "rank", "dense_rank", "count", "sum", "max", "lag"),
  part: fc.constantFrom<WinSpec["part"]>("vindex", "vindex", "vindex2", "vindex2", "other", "none", "right", "expr"),
  side: fc.nat({ max: 1 }),
  ord: fc.constantFrom<WinSpec["ord"]>("a", "a", "b", "none"),
  dir: dirArb,
  frame: fc.constantFrom(false, false, true),
  point: sometimes(fc.integer({ min: 1, max: 12 }), 0.2),
  filter: sometimes(fc.integer({ min: 0, max: 3 }), 0.25),
  outerOrder: fc.constantFrom<WinSpec["outerOrder"]>("none", "pk", "w"),
  limit: sometimes(fc.integer({ min: 0, max: 5 }), 0.3),
  distinct: fc.constantFrom(false, false, false, true),
  named: fc.constantFrom(false, false, false, false, true),
  agg: fc.constantFrom(false, false, false, false, false, true),
  two: fc.constantFrom(false, false, true),
});

const WIN_FROM: Readonly<
  Record<
    WinFrom,
    {
      readonly sql: string;
      readonly vcols: readonly string[];
      readonly right: string | null;
      readonly other: readonly string[];
      readonly pk: readonly string[];
      readonly a: string;
      readonly b: string;
      readonly bTable: TName;
    }
  >
> = {
  t: { sql: "t", vcols: ["t.id"], right: null, other: ["t.a", "t.b", "t.c"], pk: ["t.id"], a: "t.a", b: "t.b", bTable: "t" },
  u: { sql: "u", vcols: ["u.t_id"], right: null, other: ["u.a", "u.b"], pk: ["u.id"], a: "u.a", b: "u.b", bTable: "u" },
  tu: { sql: "t JOIN u ON t.id = u.t_id", vcols: ["t.id", "u.t_id"], right: null, other: ["t.a", "u.a", "u.b"], pk: ["u.id"], a: "u.a", b: "t.b", bTable: "t" },
  tlu: {
    sql: "t LEFT JOIN u ON t.id = u.t_id",
    vcols: ["t.id"],
    right: "u.t_id",
    other: ["t.a", "u.a", "u.b"],
    pk: ["t.id", "u.id"],
    a: "u.a",
    b: "t.b",
    bTable: "t",
  },
  tr: { sql: "t JOIN r ON t.a = r.k", vcols: ["t.id"], right: null, other: ["r.name", "r.a", "t.b"], pk: ["t.id"], a: "r.a", b: "r.name", bTable: "r" },
};

export function renderWin(s: JoinSchema, sp: WinSpec): JoinCheck {
  const f = WIN_FROM[sp.from];
  const vcol = f.vcols[sp.side % f.vcols.length] ?? "t.id";
  const other = f.other[(sp.side + (sp.dir === " DESC" ? 1 : 0)) % f.other.length] ?? "t.a";
  let ok: boolean;
  let part: string[];
  switch (sp.part) {
    case "vindex":
      part = [vcol];
      ok = true;
      break;
    case "vindex2":
      part = [other, vcol];
      ok = true;
      break;
    case "other":
      part = [other];
      ok = false;
      break;
    case "none":
      part = [];
      ok = false;
      break;
    case "right":
      part = [f.right ?? vcol];
      ok = f.right === null;
      break;
    case "expr":
      part = [`${vcol} + 0`];
      ok = false;
      break;
  }
  const bNocase = f.bTable !== "r" && isNocase(s, f.bTable, "b");
  const ordCol = sp.ord === "a" ? f.a : sp.ord === "b" ? f.b : null;
  const needTotal = sp.fn === "row_number" || sp.fn === "lag" || sp.frame || (ordCol === f.b && bNocase);
  const ordTerms = [...(ordCol ? [`${ordCol}${sp.dir}`] : []), ...(needTotal ? f.pk : [])];
  const fn =
    sp.fn === "count" ? "count(*)" : sp.fn === "sum" ? `sum(${f.a})` : sp.fn === "max" ? `max(${f.b})` : sp.fn === "lag" ? `lag(${f.a})` : `${sp.fn}()`;
  const frame = sp.frame && ordTerms.length > 0 && (sp.fn === "count" || sp.fn === "sum" || sp.fn === "max") ? " ROWS BETWEEN 1 PRECEDING AND CURRENT ROW" : "";
  const spec = `${part.length > 0 ? `PARTITION BY ${part.join(", ")}` : ""}${part.length > 0 && ordTerms.length > 0 ? " " : ""}${ordTerms.length > 0 ? `ORDER BY ${ordTerms.join(", ")}` : ""}${frame}`;
  const wexpr = sp.named ? `${fn} OVER w` : `${fn} OVER (${spec})`;
  const wtwo = `count(*) OVER (PARTITION BY ${f.vcols[0] ?? "t.id"})`;
  const approx = new Set<number>();
  const fold = new Map<number, Collation>();
  const conds: string[] = [];
  if (sp.point !== null) conds.push(`${f.vcols[0] ?? "t.id"} = ${sp.point}`);
  if (sp.filter !== null) conds.push(`${f.other[0] ?? "t.a"} <> ${sp.filter}`);
  const where = conds.length > 0 ? ` WHERE ${conds.join(" AND ")}` : "";
  if (sp.named) ok = false;
  if (sp.point !== null) ok = true;
  let sql: string;
  let ordered = false;
  if (sp.agg) {
    // Windows over groups: refused across shards.
    const g = f.vcols[0] ?? "t.id";
    sql = `SELECT ${g}, count(*), rank() OVER (ORDER BY count(*)) FROM ${f.sql}${where} GROUP BY ${g}`;
    if (sp.point === null) ok = false;
  } else {
    const items = sp.distinct ? [other, `${wexpr} AS w`] : [...f.pk, other, `${wexpr} AS w`, ...(sp.two ? [`${wtwo} AS w2`] : [])];
    const wAt = sp.distinct ? 1 : f.pk.length + 1;
    // A window sum is computed on one shard over its whole partition (small integers, 2.5, text as 0): exact.
    if (sp.fn === "max" && bNocase) fold.set(wAt, "NOCASE");
    const otherNocase = other.endsWith(".b") && isNocase(s, other.startsWith("t.") ? "t" : other.startsWith("u.") ? "u" : "v", "b");
    if (otherNocase) fold.set(sp.distinct ? 0 : f.pk.length, "NOCASE");
    let order = "";
    if (!sp.distinct && sp.outerOrder !== "none") {
      const pk = f.pk.join(", ");
      order = sp.outerOrder === "w" && !approx.has(wAt) && !fold.has(wAt) ? ` ORDER BY w${sp.dir}, ${pk}` : ` ORDER BY ${pk}`;
      ordered = true;
    }
    const limit = ordered && sp.limit !== null ? ` LIMIT ${sp.limit}` : "";
    const named = sp.named ? ` WINDOW w AS (${spec})` : "";
    sql = `SELECT ${sp.distinct ? "DISTINCT " : ""}${items.join(", ")} FROM ${f.sql}${where}${named}${order}${limit}`;
  }
  return { sql, params: undefined, cat: ok ? "win" : "win-x", ordered, approx, fold, unlimited: null };
}

// ---------------------------------------------------------------- writes

export type InselSrc = "t" | "u" | "tu" | "r" | "v";
export type InselTarget = "t" | "u" | "v" | "r";

export type WriteSpec =
  | {
      readonly k: "insel";
      readonly target: InselTarget;
      readonly src: InselSrc;
      /** `shift`: fresh keys (+K); `same`: the source keys with OR IGNORE / OR REPLACE; `text`: the key as text. */
      readonly form: "shift" | "ignore" | "replace" | "text" | "tida";
      readonly cond: { readonly op: ">" | "<>" | "IS NOT"; readonly n: number } | null;
      readonly limit: number | null;
    }
  | {
      readonly k: "rins";
      readonly form: "plain" | "replace" | "upsert" | "dup" | "returning" | "random" | "multi";
      readonly n: number;
      readonly name: number;
      readonly a: number;
    }
  | {
      readonly k: "rupd";
      readonly set: "inc" | "name" | "key" | "sub" | "corr";
      readonly where: { readonly col: "k" | "a" | "name"; readonly op: ">" | "=" | "IS"; readonly n: number } | null;
      readonly returning: boolean;
    }
  | {
      readonly k: "rdel";
      readonly where: { readonly col: "k" | "a" | "name"; readonly op: ">" | "=" | "<" | "IS"; readonly n: number } | null;
      readonly returning: boolean;
    }
  | {
      readonly k: "scorr";
      readonly form: "upd_count" | "upd_ref" | "upd_t_b" | "del_orphans" | "del_v" | "upd_nonco" | "del_nonco" | "with_del";
      readonly n: number;
    };

const rWhereArb = sometimes(
  fc.record({
    col: fc.constantFrom("k" as const, "a" as const, "name" as const),
    op: fc.constantFrom(">" as const, "=" as const, "IS" as const),
    n: fc.integer({ min: -1, max: 5 }),
  }),
  0.8,
);

export const writeArb: fc.Arbitrary<WriteSpec> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("insel" as const),
      target: fc.constantFrom<InselTarget>("v", "v", "u", "t", "r"),
      src: fc.constantFrom<InselSrc>("t", "t", "u", "tu", "r", "v"),
      form: fc.constantFrom("shift" as const, "shift" as const, "shift" as const, "ignore" as const, "replace" as const, "text" as const, "tida" as const),
      cond: sometimes(fc.record({ op: fc.constantFrom(">" as const, "<>" as const, "IS NOT" as const), n: fc.integer({ min: 0, max: 3 }) }), 0.6),
      limit: sometimes(fc.integer({ min: 0, max: 4 }), 0.2),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("rins" as const),
      form: fc.constantFrom("plain" as const, "replace" as const, "upsert" as const, "dup" as const, "returning" as const, "random" as const, "multi" as const),
      n: fc.integer({ min: -1, max: 5 }),
      name: fc.nat({ max: TEXTS.length - 1 }),
      a: fc.integer({ min: 0, max: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("rupd" as const),
      set: fc.constantFrom("inc" as const, "name" as const, "key" as const, "sub" as const, "corr" as const),
      where: rWhereArb,
      returning: fc.constantFrom(false, false, true),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("rdel" as const),
      where: sometimes(
        fc.record({
          col: fc.constantFrom("k" as const, "a" as const, "name" as const),
          op: fc.constantFrom(">" as const, "=" as const, "<" as const, "IS" as const),
          n: fc.integer({ min: -1, max: 5 }),
        }),
        0.85,
      ),
      returning: fc.constantFrom(false, false, true),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("scorr" as const),
      form: fc.constantFrom(
        "upd_count" as const,
        "upd_ref" as const,
        "upd_t_b" as const,
        "del_orphans" as const,
        "del_v" as const,
        "upd_nonco" as const,
        "del_nonco" as const,
        "with_del" as const,
      ),
      n: fc.integer({ min: 0, max: 3 }),
    }),
  },
);

/** A write and how to check it: rowsAffected (and RETURNING rows, unordered) equal, then every copy equal. */
export interface WriteCheck extends Rendered {
  readonly cat: Category;
  readonly write: true;
  readonly returning: boolean;
}

/** Source expressions for (key, a, text, vindex-ish) of INSERT … SELECT. */
const INSEL_SRC: Readonly<
  Record<InselSrc, { readonly from: string; readonly key: string; readonly a: string; readonly b: string; readonly tid: string; readonly real: string }>
> = {
  t: { from: "t", key: "t.id", a: "t.a", b: "t.b", tid: "t.id", real: "t.c" },
  u: { from: "u", key: "u.id", a: "u.a", b: "u.b", tid: "u.t_id", real: "NULL" },
  tu: { from: "t JOIN u ON t.id = u.t_id", key: "u.id", a: "u.a", b: "t.b", tid: "t.id", real: "t.c" },
  r: { from: "r", key: "r.k", a: "r.a", b: "r.name", tid: "r.k + 1", real: "NULL" },
  v: { from: "v", key: "v.id", a: "v.a", b: "v.b", tid: "v.id", real: "NULL" },
};

function rCond(w: { col: "k" | "a" | "name"; op: string; n: number } | null): string {
  if (!w) return "";
  const v = w.col === "name" ? (w.op === "IS" ? "NULL" : sqlLiteral(TEXTS[Math.max(0, w.n)] ?? "x")) : w.op === "IS" && w.n < 0 ? "NULL" : String(w.n);
  return ` WHERE ${w.col} ${w.op} ${v}`;
}

/** `i`: the step's index, for keys no other write takes. */
export function renderWrite(s: JoinSchema, ws: WriteSpec, i: number): WriteCheck {
  void s;
  // Offsets of distinct powers of two (times 1000) keep every chain of copies on distinct keys.
  const K = 1000 * 2 ** i;
  const done = (sql: string, cat: Category, returning = false): WriteCheck => ({ sql, params: undefined, cat, write: true, returning });
  switch (ws.k) {
    case "insel": {
      const src = INSEL_SRC[ws.src];
      // Keys kept as they are (OR IGNORE / OR REPLACE): not into u from elsewhere, where a row of that id may live on another shard.
      const same = (ws.form === "ignore" || ws.form === "replace") && (ws.target !== "u" || ws.src === "u");
      const key = same ? src.key : ws.form === "text" ? `CAST(${src.key} + ${K} AS TEXT)` : `${src.key} + ${K}`;
      const verb = same ? (ws.form === "ignore" ? "INSERT OR IGNORE" : "INSERT OR REPLACE") : "INSERT";
      let cols: string;
      let exprs: string[];
      switch (ws.target) {
        case "t":
          cols = "id, a, b, c";
          exprs = [key, src.a, src.b, src.real];
          break;
        case "u":
          cols = "id, t_id, a, b";
          exprs = [key, ws.form === "tida" ? src.a : same ? src.tid : `${src.tid}`, src.a, src.b];
          break;
        case "v":
          cols = "id, a, b";
          exprs = [key, src.a, src.b];
          break;
        case "r":
          cols = "k, name, a";
          exprs = [key, src.b, src.a];
          break;
      }
      const where = ws.cond ? ` WHERE ${src.a} ${ws.cond.op} ${ws.cond.op === "IS NOT" ? "NULL" : ws.cond.n}` : "";
      const limit = ws.limit !== null ? ` ORDER BY ${src.key} LIMIT ${ws.limit}` : "";
      // Refusal allowed: into the reference table (a statement reading tables), a text key, a vindex value that may be NULL or odd.
      const x = ws.target === "r" || ws.form === "text" || (ws.form === "tida" && ws.target === "u");
      return done(`${verb} INTO ${ws.target} (${cols}) SELECT ${exprs.join(", ")} FROM ${src.from}${where}${limit}`, x ? "dml-x" : "dml");
    }
    case "rins": {
      const name = sqlLiteral(TEXTS[ws.name] ?? "x");
      const fresh = 100 + i;
      switch (ws.form) {
        case "plain":
          return done(`INSERT INTO r (k, name, a) VALUES (${fresh}, ${name}, ${ws.a})`, "dml");
        case "multi":
          return done(`INSERT INTO r VALUES (${fresh}, ${name}, ${ws.a}), (${fresh + 50}, NULL, NULL)`, "dml");
        case "replace":
          return done(`INSERT OR REPLACE INTO r VALUES (${ws.n}, ${name}, ${ws.a})`, "dml");
        case "upsert":
          return done(
            `INSERT INTO r VALUES (${ws.n}, ${name}, ${ws.a}) ON CONFLICT (k) DO UPDATE SET a = excluded.a, name = coalesce(r.name, '') || '!'`,
            "dml",
          );
        case "dup":
          return done(`INSERT INTO r (k, name, a) VALUES (${ws.n}, ${name}, ${ws.a})`, "dml");
        case "returning":
          return done(`INSERT INTO r (k, name, a) VALUES (${fresh}, ${name}, ${ws.a}) RETURNING k, name, a`, "dml", true);
        case "random":
          return done(`INSERT INTO r (k, name, a) VALUES (${fresh}, ${name}, random())`, "dml-x");
      }
      break;
    }
    case "rupd": {
      const where = rCond(ws.where);
      const ret = ws.returning ? " RETURNING k, name, a" : "";
      switch (ws.set) {
        case "inc":
          return done(`UPDATE r SET a = coalesce(a, 0) + 1${where}${ret}`, "dml", ws.returning);
        case "name":
          return done(`UPDATE r SET name = 'y'${where}${ret}`, "dml", ws.returning);
        case "key":
          return done(`UPDATE r SET k = k + 10${where}${ret}`, "dml", ws.returning);
        case "sub":
          return done(`UPDATE r SET a = (SELECT count(*) FROM t)${where}${ret}`, "dml-x", ws.returning);
        case "corr":
          return done(`UPDATE r SET a = (SELECT max(t.a) FROM t WHERE t.a = r.k)${where}${ret}`, "dml-x", ws.returning);
      }
      break;
    }
    case "rdel": {
      const ret = ws.returning ? " RETURNING k, name" : "";
      return done(`DELETE FROM r${rCond(ws.where)}${ret}`, "dml", ws.returning);
    }
    case "scorr": {
      const n = ws.n;
      switch (ws.form) {
        case "upd_count":
          return done(`UPDATE t SET a = (SELECT count(*) FROM u WHERE u.t_id = t.id) WHERE t.id > ${n}`, "dml");
        case "upd_ref":
          return done(`UPDATE t SET c = (SELECT r.a FROM r WHERE r.k = t.a)`, "dml");
        case "upd_t_b":
          return done(`UPDATE u SET b = (SELECT t.b FROM t WHERE t.id = u.t_id) WHERE u.a IS NOT ${n}`, "dml");
        case "del_orphans":
          return done(`DELETE FROM u WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = u.t_id)`, "dml");
        case "del_v":
          return done(`DELETE FROM v WHERE EXISTS (SELECT 1 FROM t WHERE t.id = v.id AND t.a > ${n})`, "dml");
        case "upd_nonco":
          return done(`UPDATE t SET a = (SELECT count(*) FROM u WHERE u.a = t.a)`, "dml-x");
        case "del_nonco":
          return done(`DELETE FROM u WHERE EXISTS (SELECT 1 FROM t WHERE t.a = u.a AND t.id <> u.t_id)`, "dml-x");
        case "with_del":
          return done(`WITH x AS (SELECT t.id FROM t WHERE t.a > ${n}) DELETE FROM v WHERE v.id IN (SELECT x.id FROM x)`, "dml-x");
      }
    }
  }
  throw new Error("unreachable");
}

// ---------------------------------------------------------------- steps

export type Step =
  | { readonly s: "join"; readonly q: JoinQuery }
  | { readonly s: "cte"; readonly q: CteQuery }
  | { readonly s: "badcte"; readonly q: BadCteSpec }
  | { readonly s: "sub"; readonly q: SubSpec }
  | { readonly s: "win"; readonly q: WinSpec }
  | { readonly s: "write"; readonly q: WriteSpec };

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: joinQueryArb.map((q) => ({ s: "join" as const, q })) },
  { weight: 3, arbitrary: cteQueryArb.map((q) => ({ s: "cte" as const, q })) },
  { weight: 1, arbitrary: badCteArb.map((q) => ({ s: "badcte" as const, q })) },
  { weight: 3, arbitrary: subArb.map((q) => ({ s: "sub" as const, q })) },
  { weight: 3, arbitrary: winArb.map((q) => ({ s: "win" as const, q })) },
  { weight: 3, arbitrary: writeArb.map((q) => ({ s: "write" as const, q })) },
);

export function renderStep(s: JoinSchema, st: Step, i: number): JoinCheck | WriteCheck {
  switch (st.s) {
    case "join":
      return renderJoinQuery(s, st.q);
    case "cte":
      return renderCteQuery(s, st.q);
    case "badcte":
      return renderBadCte(s, st.q);
    case "sub":
      return renderSub(s, st.q);
    case "win":
      return renderWin(s, st.q);
    case "write":
      return renderWrite(s, st.q, i);
  }
}

// ---------------------------------------------------------------- scenarios and the runner

export interface Scenario {
  readonly schema: JoinSchema;
  readonly shards: number;
  readonly data: Data;
  readonly steps: readonly Step[];
}

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  schema: schemaArb,
  shards: fc.integer({ min: 1, max: 4 }),
  data: dataArb,
  steps: fc.array(stepArb, { minLength: 1, maxLength: 8 }),
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
  const counts = {} as Record<Category, Counts>;
  const refusals = {} as Record<Category, Map<string, number>>;
  for (const k of CATEGORIES) {
    counts[k] = { answered: 0, refused: 0, bothFailed: 0 };
    refusals[k] = new Map();
  }
  return { counts, refusals };
}

/** Of the queries of category `k` SQLite answers, the share the gate answered. */
export function answeredShare(st: JoinStats, k: Category): number {
  const c = st.counts[k];
  const n = c.answered + c.refused;
  return n === 0 ? 0 : c.answered / n;
}

/** `top`: how many refusal messages to list per category. */
export function statsReport(st: JoinStats, top = 4): string {
  return CATEGORIES.map((k) => {
    const s = st.counts[k];
    const msgs = [...st.refusals[k]]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([m, n]) => `${n}× ${m.length > 240 ? `${m.slice(0, 240)}…` : m}`);
    return `  ${k.padEnd(5)}: answered ${s.answered}, refused ${s.refused}, both failed ${s.bothFailed} (answered ${(answeredShare(st, k) * 100).toFixed(0)}%)${msgs.length ? `\n        ${msgs.join("\n        ")}` : ""}`;
  }).join("\n");
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

/** Where a scenario runs: the gate over shards, one SQLite holding every row, and a check of every copy. */
export interface JoinTarget {
  /** Lines that start the log (shards, CREATE TABLEs). */
  readonly header: readonly string[];
  run(sql: string, params?: Params): Promise<QueryResult>;
  reference(sql: string, params?: Params): Promise<QueryResult>;
  /** Undefined when every shard holds what the reference holds (each shard's copy of r, the sharded rows on their shards), else what differs. */
  verify(): Promise<string | undefined>;
}

/**
 * Runs a scenario: loads the rows through the gate and into the reference, then each step on
 * both; throws Mismatch naming the statement where they part. `skip`: statements not to run (a
 * hunt past known bugs).
 */
export async function runSteps(sc: Scenario, t: JoinTarget, st: JoinStats, skip?: (q: JoinCheck | WriteCheck) => boolean): Promise<void> {
  const log: string[] = [...t.header];
  const fail = (what: string): never => {
    throw new Mismatch(`${what}\n-- statements so far:\n${log.join("\n")}`);
  };

  function refused(cat: Category, error: string): void {
    st.counts[cat].refused++;
    const m = st.refusals[cat];
    m.set(error, (m.get(error) ?? 0) + 1);
  }

  async function query(q: JoinCheck): Promise<void> {
    log.push(`${label(q)};  -- category ${q.cat}`);
    const exp = await attempt(() => t.reference(q.sql, q.params));
    const act = await attempt(() => t.run(q.sql, q.params));
    const counts = st.counts[q.cat];
    if (!exp.ok && !act.ok) {
      counts.bothFailed++;
      return;
    }
    if (!exp.ok && act.ok) return fail(`gate answered ${show(act.value.rows)} where SQLite failed: ${exp.error}`);
    if (exp.ok && !act.ok) {
      if (act.code === "UNSUPPORTED" && !mustAnswer(q.cat)) return refused(q.cat, act.error);
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
    if (show(act.value.columns) !== show(exp.value.columns))
      fail(`category ${q.cat}: columns ${show(act.value.columns)} != expected ${show(exp.value.columns)}`);
    if (act.value.rows.length !== exp.value.rows.length)
      fail(`category ${q.cat}: ${act.value.rows.length} rows != expected ${exp.value.rows.length}\n  got ${show(act.value.rows)}`);
    const s = diffSubset(act.value, await t.reference(q.unlimited.sql, q.unlimited.params));
    if (s) fail(`category ${q.cat}: ${s}`);
  }

  async function write(q: WriteCheck): Promise<void> {
    log.push(`${label(q)};  -- write, category ${q.cat}`);
    // The gate first: a write it refuses must change nothing, and then the reference skips it.
    const act = await attempt(() => t.run(q.sql, q.params));
    const verify = async (what: string): Promise<void> => {
      const v = await t.verify();
      if (v) fail(`category ${q.cat}: ${what}; then the shards and the reference differ: ${v}`);
    };
    if (!act.ok && (act.code === "UNSUPPORTED" || (act.code === "INVALID_ARGUMENT" && q.cat === "dml-x"))) {
      if (mustAnswer(q.cat)) fail(`category ${q.cat}: gate refused the write: ${act.error}`);
      refused(q.cat, act.error);
      return verify(`gate refused the write (${act.error})`);
    }
    const exp = await attempt(() => t.reference(q.sql, q.params));
    if (!exp.ok && !act.ok) {
      st.counts[q.cat].bothFailed++;
      return verify(`both failed (gate ${act.error}; SQLite ${exp.error})`);
    }
    if (!exp.ok && act.ok) return fail(`gate wrote (rowsAffected ${act.value.rowsAffected}) where SQLite failed: ${exp.error}`);
    if (exp.ok && !act.ok) return fail(`category ${q.cat}: gate failed where SQLite wrote (rowsAffected ${exp.value.rowsAffected}): ${act.error}`);
    if (!exp.ok || !act.ok) return;
    st.counts[q.cat].answered++;
    if (act.value.rowsAffected !== exp.value.rowsAffected)
      fail(`category ${q.cat}: rowsAffected ${act.value.rowsAffected} != expected ${exp.value.rowsAffected}`);
    if (q.returning) {
      const d = diffResults(act.value, exp.value, { ordered: false });
      if (d) fail(`category ${q.cat}: RETURNING ${d}`);
    }
    await verify("after the write");
  }

  for (const sql of insertStatements(sc.data)) {
    log.push(`${sql};`);
    const exp = await attempt(() => t.reference(sql));
    const act = await attempt(() => t.run(sql));
    if (!exp.ok || !act.ok) fail(`loading failed: gate ${act.ok ? "ok" : act.error}, SQLite ${exp.ok ? "ok" : exp.error}`);
  }
  for (const [i, step] of sc.steps.entries()) {
    const q = renderStep(sc.schema, step, i);
    if (skip?.(q)) continue;
    if ("write" in q) await write(q);
    else await query(q);
  }
}

/**
 * Open gate bugs the property found (each pinned as a failing example at the end of
 * joins.differential.test.ts):
 * statements matching them are not run by the property, so it keeps hunting for others. Remove
 * an entry when its bug is fixed. JOIN_KNOWN=0 runs them too.
 */
export const KNOWN_OPEN_BUGS: readonly (readonly [string, (q: JoinCheck | WriteCheck) => boolean])[] = [];

/** The name of the known open bug `q` would hit, if any. */
export function knownOpenBug(q: JoinCheck | WriteCheck): string | undefined {
  return KNOWN_OPEN_BUGS.find(([, m]) => m(q))?.[0];
}

/** A table's rows as a shard or the reference holds them, to compare as multisets. */
export const DUMP_SQL: Readonly<Record<TName, string>> = {
  t: "SELECT * FROM t ORDER BY id",
  u: "SELECT * FROM u ORDER BY id",
  v: "SELECT * FROM v ORDER BY id",
  r: "SELECT * FROM r ORDER BY k",
};
