// The grammar of the differential tests: fast-check arbitraries for a table, rows and the
// statements the gate supports on a sharded keyspace today, and their rendering to SQL text with
// params. Statements are plain data so a counterexample prints readably and shrinks.

import fc from "fast-check";
import { sqlLiteral, type SqlValue } from "../../contract/sql-values.ts";
import type { Params } from "./fake-cursor.ts";

// ---------------------------------------------------------------- schema and values

/** Declared types; NOCASE and RTRIM are TEXT with that declared collation. */
export type ColType = "INTEGER" | "REAL" | "TEXT" | "NOCASE" | "RTRIM" | "BLOB";

export interface Column {
  readonly name: string;
  readonly type: ColType;
}

/** The table `t`: `id INTEGER PRIMARY KEY` (the xxhash vindex column) plus `columns`. */
export interface Schema {
  readonly columns: readonly Column[];
}

const DECL: Record<ColType, string> = {
  INTEGER: "INTEGER",
  REAL: "REAL",
  TEXT: "TEXT",
  NOCASE: "TEXT COLLATE NOCASE",
  RTRIM: "TEXT COLLATE RTRIM",
  BLOB: "BLOB",
};

export function createTableSql(s: Schema): string {
  return `CREATE TABLE t (id INTEGER PRIMARY KEY, ${s.columns.map((c) => `${c.name} ${DECL[c.type]}`).join(", ")})`;
}

export function isText(t: ColType): boolean {
  return t === "TEXT" || t === "NOCASE" || t === "RTRIM";
}

export function isNumeric(t: ColType): boolean {
  return t === "INTEGER" || t === "REAL";
}

export const schemaArb: fc.Arbitrary<Schema> = fc
  .array(fc.constantFrom<ColType>("INTEGER", "REAL", "TEXT", "NOCASE", "RTRIM", "BLOB"), { minLength: 2, maxLength: 4 })
  .map((types) => ({ columns: types.map((type, i) => ({ name: `c${i}`, type })) }));

function normInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Integers well inside int64 (sums of 60 of them cannot overflow), some beyond 2^53. */
const intArb: fc.Arbitrary<SqlValue> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -3, max: 3 }) },
  { weight: 3, arbitrary: fc.integer({ min: -1_000_000, max: 1_000_000 }) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 55n), max: 2n ** 55n }).map(normInt) },
);

const realArb: fc.Arbitrary<SqlValue> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0.5, -1.25, 2, 3.75, 1e-3, -0.1, 1e15 + 0.5, 5e15, -3e15, 2 ** 52, 1e17) },
  { weight: 2, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }) },
);

const CHARS = ["a", "A", "b", "B", "z", "Z", "0", "9", " ", "'", "_", "%", "é", "É", "ß", "ǅ", "日", "😀", "\u0301"];
const textArb: fc.Arbitrary<SqlValue> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "a",
      "A",
      "abc",
      "ABC",
      "Abc",
      "b",
      "B",
      "Z",
      "zed",
      "Bob",
      "é",
      "É",
      "",
      " x",
      "x",
      "x ",
      "x  ",
      "10",
      "9",
      "it's",
      "日本",
      "😀",
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 5 }) },
);

const blobArb: fc.Arbitrary<SqlValue> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(1, 2), Uint8Array.of(255)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4 }) },
);

export function valueArb(t: ColType, nulls = true): fc.Arbitrary<SqlValue> {
  const base = t === "INTEGER" ? intArb : t === "REAL" ? realArb : t === "BLOB" ? blobArb : textArb;
  return nulls ? fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 5, arbitrary: base }) : base;
}

/** A value written as a literal or passed as a placeholder. */
export interface Val {
  readonly v: SqlValue;
  readonly param: boolean;
}

export function valArb(t: ColType, nulls = true): fc.Arbitrary<Val> {
  return fc.record({ v: valueArb(t, nulls), param: fc.boolean() });
}

// ---------------------------------------------------------------- ids (the vindex column)

/** Ids that only plain INSERTs use (never in POOL), so a plain INSERT never conflicts. */
export const freshIdArb: fc.Arbitrary<number | bigint> = fc.oneof(
  fc.integer({ min: 100, max: 1_000_000_000 }),
  fc.integer({ min: -1_000_000_000, max: -100 }),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 62n }).map(normInt),
  fc.bigInt({ min: -(2n ** 62n), max: -(2n ** 53n) }).map(normInt),
  fc.constantFrom<number | bigint>(Number.MAX_SAFE_INTEGER, 2n ** 63n - 1n, -(2n ** 63n)),
);

/** Ids that upserts, REPLACE and OR IGNORE use, so they collide with each other. */
export const POOL_MIN = -5;
export const POOL_MAX = 30;

/**
 * How a vindex value is written: a number literal, a placeholder, integer text ('42'), or text
 * SQLite converts to the same integer but the vindex would hash as text ('42.0', ' 42', '+42').
 */
export type IdForm = "lit" | "param" | "text" | "textParam" | "odd" | "oddParam";
export const idFormArb: fc.Arbitrary<IdForm> = fc.constantFrom("lit", "param", "text", "textParam", "odd", "oddParam");

/** Text an INTEGER column stores as `id`, written other than canonically. */
export function oddText(id: number | bigint, variant: number): string {
  const s = String(id);
  const forms = [`${s}.0`, ` ${s}`, `${s} `, id < 0 ? `-0${s.slice(1)}` : `+${s}`, id < 0 ? s : `0${s}`, `${s}e0`];
  return forms[variant % forms.length] ?? s;
}

/** An id of the pool, or the k-th fresh id of the scenario (so queries hit existing rows). */
export type IdRef = { readonly pool: number } | { readonly fresh: number };

export const idRefArb: fc.Arbitrary<IdRef> = fc.oneof(
  fc.integer({ min: POOL_MIN, max: POOL_MAX }).map((pool) => ({ pool })),
  fc.nat({ max: 59 }).map((fresh) => ({ fresh })),
);

export interface IdVal {
  readonly ref: IdRef;
  readonly form: IdForm;
  /** Which odd text (see oddText) an "odd" form uses. */
  readonly variant: number;
}

export const idValArb: fc.Arbitrary<IdVal> = fc.record({ ref: idRefArb, form: idFormArb, variant: fc.nat({ max: 5 }) });

// ---------------------------------------------------------------- rendering with params

export type ParamStyle = "?" | "?NNN" | "$N" | ":name" | "@name" | "$name";
export const paramStyleArb: fc.Arbitrary<ParamStyle> = fc.constantFrom("?", "?", "?NNN", "$N", ":name", "@name", "$name");

const MARK = "\u0001";

/** Collects placeholder values while a statement is written; `finish` numbers or names them. */
export class SqlWriter {
  readonly #style: ParamStyle;
  readonly #values: SqlValue[] = [];
  /** Resolves IdRef.fresh indexes. */
  readonly fresh: readonly (number | bigint)[];

  constructor(style: ParamStyle, fresh: readonly (number | bigint)[]) {
    this.#style = style;
    this.fresh = fresh;
  }

  val(x: Val): string {
    return x.param ? this.param(x.v) : sqlLiteral(x.v);
  }

  param(v: SqlValue): string {
    this.#values.push(v);
    return `${MARK}${this.#values.length - 1}${MARK}`;
  }

  id(ref: IdRef): number | bigint {
    if ("pool" in ref || this.fresh.length === 0) return "pool" in ref ? ref.pool : ref.fresh % (POOL_MAX + 1);
    return this.fresh[ref.fresh % this.fresh.length] ?? 0;
  }

  /** The id as the form says; `canonical` writes odd text as canonical text (INSERT refuses odd text). */
  idVal(x: IdVal, canonical = false): string {
    return this.idWith(this.id(x.ref), x, canonical);
  }

  idWith(id: number | bigint, x: IdVal, canonical = false): string {
    const form = canonical && x.form === "odd" ? "text" : canonical && x.form === "oddParam" ? "textParam" : x.form;
    switch (form) {
      case "lit":
        return sqlLiteral(id);
      case "param":
        return this.param(id);
      case "text":
        return sqlLiteral(String(id));
      case "textParam":
        return this.param(String(id));
      case "odd":
        return sqlLiteral(oddText(id, x.variant));
      case "oddParam":
        return this.param(oddText(id, x.variant));
    }
  }

  /** The SQL text and params; `?NNN` / `$N` are numbered from the last placeholder down, to exercise index mapping. */
  finish(text: string): { sql: string; params: Params | undefined } {
    const n = this.#values.length;
    const named = this.#style === ":name" || this.#style === "@name" || this.#style === "$name";
    const inTextOrder: SqlValue[] = [];
    const sql = text.replace(new RegExp(`${MARK}(\\d+)${MARK}`, "g"), (_, k: string) => {
      const i = Number(k);
      switch (this.#style) {
        case "?":
          inTextOrder.push(this.#values[i] ?? null);
          return "?";
        case "?NNN":
          return `?${n - i}`;
        case "$N":
          return `$${n - i}`;
        default:
          return `${this.#style[0] ?? ":"}p${i}`;
      }
    });
    if (n === 0) return { sql, params: undefined };
    if (named) return { sql, params: Object.fromEntries(this.#values.map((v, i) => [`p${i}`, v])) };
    if (this.#style === "?") return { sql, params: inTextOrder };
    return { sql, params: this.#values.map((_, j) => this.#values[n - 1 - j] ?? null) };
  }
}
