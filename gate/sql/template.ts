// SQL sent to tablets is the user's own text with small edits: placeholders become `?`
// (bound positionally at execution), and planners splice in or cut out clauses. A template is
// that text as parts; rendering it with the request's params yields one BoundQuery.

import { VtError } from "../../contract/errors.ts";
import { checkShardSql } from "../../topology/shard-sql-guard.ts";
import { sqlLiteral, type SqlValue } from "../../contract/sql-values.ts";
import { systemObjectKind } from "../../topology/system-names.ts";
import type { ParamRef, ParsedStatement } from "./parse.ts";

export type Part =
  | string
  | { readonly param: ParamRef }
  | { readonly compute: (b: Bindings) => string }
  /**
   * Values known only at execution (a subquery's result), rendered as `?, ?, …`, or `empty` when
   * there are none. `size`, when the count is known in advance, counts toward paramCount.
   */
  | {
      readonly values: (b: Bindings) => readonly SqlValue[];
      readonly empty: string;
      readonly size?: number;
      /** Positions among the values holding a REAL whose value is integral (JS reads 1.0 as 1): bound as REALs, never as INTEGERs. */
      readonly reals?: ReadonlySet<number>;
    };
export type Template = readonly Part[];

export interface Edit {
  readonly start: number;
  readonly end: number;
  readonly parts: Template;
}

/** The request's parameters, resolved by placeholder. */
export class Bindings {
  readonly #positional: readonly SqlValue[] | null;
  readonly #named: ReadonlyMap<string, SqlValue> | null;

  readonly #params: readonly SqlValue[] | Readonly<Record<string, SqlValue>> | undefined;
  readonly #subqueries: ReadonlyMap<number, readonly (readonly SqlValue[])[]>;

  constructor(
    params: readonly SqlValue[] | Readonly<Record<string, SqlValue>> | undefined,
    subqueries: ReadonlyMap<number, readonly (readonly SqlValue[])[]> = new Map(),
  ) {
    this.#params = params;
    this.#subqueries = subqueries;
    if (params === undefined || Array.isArray(params)) {
      this.#positional = (params as readonly SqlValue[] | undefined) ?? [];
      this.#named = null;
    } else {
      this.#positional = null;
      this.#named = new Map(Object.entries(params as Record<string, SqlValue>));
    }
  }

  /** The same params plus the rows of the subqueries run before the statement, by id. */
  withSubqueries(results: ReadonlyMap<number, readonly (readonly SqlValue[])[]>): Bindings {
    return new Bindings(this.#params, new Map([...this.#subqueries, ...results]));
  }

  subquery(id: number): readonly (readonly SqlValue[])[] {
    const rows = this.#subqueries.get(id);
    if (!rows) throw new VtError("INTERNAL", `subquery ${id} has not run`);
    return rows;
  }

  get(ref: ParamRef): SqlValue {
    if (ref.kind === "index") {
      if (this.#positional === null) {
        throw new VtError("INVALID_ARGUMENT", `positional placeholder ${ref.index + 1} needs params as an array`);
      }
      if (ref.index >= this.#positional.length) {
        throw new VtError("INVALID_ARGUMENT", `placeholder ${ref.index + 1} has no value (${this.#positional.length} params given)`);
      }
      return this.#positional[ref.index] ?? null;
    }
    const written = `${ref.sigil}${ref.name}`;
    if (this.#named === null) {
      throw new VtError("INVALID_ARGUMENT", `named placeholder ${written} needs params as an object`);
    }
    // A key with its sigil binds exactly that placeholder; a bare key binds :n, @n and $n alike.
    const exact = this.#named.has(written);
    if (exact && this.#named.has(ref.name)) {
      throw new VtError("INVALID_ARGUMENT", `param "${ref.name}" matches no placeholder: "${written}" is given for ${written}`);
    }
    const key = exact ? written : ref.name;
    if (!this.#named.has(key)) throw new VtError("INVALID_ARGUMENT", `placeholder ${written} has no value`);
    return this.#named.get(key) ?? null;
  }

  /** Checks that the statement's placeholders and the params match one to one. */
  check(refs: Iterable<ParamRef>): void {
    let maxIndex = 0;
    const names = new Set<string>();
    for (const r of refs) {
      this.get(r);
      if (r.kind === "index") maxIndex = Math.max(maxIndex, r.index + 1);
      else {
        names.add(`${r.sigil}${r.name}`);
        names.add(r.name);
      }
    }
    if (this.#positional !== null && this.#positional.length > maxIndex) {
      throw new VtError("INVALID_ARGUMENT", `${this.#positional.length} params given but the statement has ${maxIndex} placeholders`);
    }
    if (this.#named !== null) {
      for (const k of this.#named.keys()) {
        if (!names.has(k)) throw new VtError("INVALID_ARGUMENT", `param "${k}" matches no placeholder`);
      }
    }
  }
}

/**
 * The parts of `text[start, end)` with `edits` applied and every placeholder inside turned into
 * a param part. Edits must not overlap; placeholders inside an edit are the edit's business.
 */
export function sliceTemplate(ps: ParsedStatement, start: number, end: number, edits: readonly Edit[] = []): Part[] {
  const all: Edit[] = [...edits];
  for (const r of [...(ps.replacements ?? []), ...(ps.additions ?? [])] as readonly Edit[]) {
    if (r.start >= start && r.end <= end && !edits.some((e) => e.start < r.end && r.start < e.end)) all.push(r);
  }
  for (const [pos, ref] of ps.params) {
    if (pos < start || pos >= end) continue;
    if (all.some((e) => pos >= e.start && pos < e.end)) continue;
    const len = paramLength(ps.text, pos);
    all.push({ start: pos, end: pos + len, parts: [{ param: ref }] });
  }
  all.sort((a, b) => a.start - b.start);
  const out: Part[] = [];
  let at = start;
  for (const e of all) {
    if (e.start < at) throw new VtError("INTERNAL", "overlapping template edits");
    if (e.start > at) out.push(ps.text.slice(at, e.start));
    out.push(...e.parts);
    at = e.end;
  }
  if (end > at) out.push(ps.text.slice(at, end));
  return out;
}

function paramLength(text: string, pos: number): number {
  const m = /^(\?\d*|[:@$][A-Za-z0-9_]+)/.exec(text.slice(pos, pos + 64));
  return m?.[0].length ?? 1;
}

/** Durable Object SQLite binds at most this many parameters per statement. */
export const MAX_BOUND_PARAMS = 100;
/** ... and takes statements of at most this many bytes. */
export const MAX_STATEMENT_BYTES = 100_000;

/**
 * Renders parts to SQL with `?` placeholders (integers as `(? + 0)`, see below). Integers beyond 2^53 are exact too (the tablet's
 * SQLite binding cannot take them). Past the Durable Object's 100 bound parameters the smallest
 * values are inlined, never REALs: integer, text, blob and NULL literals read back exactly, but
 * SQLite's decimal-to-double conversion is not exact for every REAL, so REALs keep bound slots.
 */
export function paramCount(parts: Template): number {
  let n = 0;
  for (const p of parts) if (typeof p !== "string") n += "param" in p ? 1 : "values" in p ? (p.size ?? 0) : 0;
  return n;
}

export function render(parts: Template, b: Bindings): { sql: string; params: SqlValue[] } {
  const out = renderText(parts, b);
  // What the tablet runs is exactly this text: one statement, nothing of the system's named.
  checkShardSql(out.sql, out.params.length);
  return out;
}

/** render() without the shard guard, for text that goes elsewhere and is checked there (the Catalog's). */
export function renderText(parts: Template, b: Bindings): { sql: string; params: SqlValue[] } {
  const values: SqlValue[] = [];
  const lists: (readonly SqlValue[])[] = [];
  /** Positions among `values` of integral REALs (see Part). */
  const realAt = new Set<number>();
  for (const p of parts) {
    if (typeof p === "string") continue;
    if ("param" in p) values.push(b.get(p.param));
    else if ("values" in p) {
      const list = p.values(b);
      lists.push(list);
      for (const k of p.reals ?? []) if (k < list.length && typeof list[k] === "number") realAt.add(values.length + k);
      values.push(...list);
    }
  }
  const inlined = toInline(values, realAt);
  let sql = "";
  const params: SqlValue[] = [];
  let at = 0;
  const one = (v: SqlValue): string => {
    const here = at++;
    if (inlined.has(here)) return inlineLiteral(v);
    // An integral REAL: the Durable Object binds a JS number as REAL; `+ 0.0` keeps it one for a binding that would not.
    if (realAt.has(here)) {
      params.push(v);
      return "(? + 0.0)";
    }
    // Durable Object SQLite binds every JS number as REAL and refuses bigints: an integer goes as
    // its decimal text plus 0, which SQLite turns back into the exact INTEGER. Unlike CAST, an
    // arithmetic result has no affinity, so comparisons behave as with a bound integer.
    if (typeof v === "bigint" || (typeof v === "number" && Number.isSafeInteger(v))) {
      params.push(v.toString());
      return "(? + 0)";
    }
    params.push(v);
    return "?";
  };
  let i = 0;
  let li = 0;
  for (const p of parts) {
    if (typeof p === "string") sql += p;
    else if ("param" in p) sql += one(values[i++] ?? null);
    else if ("values" in p) {
      const list = lists[li++] ?? [];
      i += list.length;
      sql += list.length === 0 ? p.empty : list.map(one).join(", ");
    } else sql += p.compute(b);
  }
  if (sql.length > MAX_STATEMENT_BYTES / 3 && new TextEncoder().encode(sql).length > MAX_STATEMENT_BYTES) {
    const advice =
      inlined.size > 0
        ? `its ${values.length} values are more than the ${MAX_BOUND_PARAMS} a statement binds, and the ${inlined.size} smallest, written into the text, do not fit; send fewer values per statement`
        : "send fewer rows per INSERT or bind large values as params";
    throw new VtError(
      "INVALID_ARGUMENT",
      `a statement for one shard would be ${new TextEncoder().encode(sql).length} bytes, over the 100 KB a Durable Object accepts; ${advice}`,
    );
  }
  return { sql, params };
}

const isFraction = (v: SqlValue): boolean => typeof v === "number" && !Number.isInteger(v);

/** About how many bytes a value takes written into the text. */
function inlineSize(v: SqlValue): number {
  if (typeof v === "string") return v.length;
  if (v instanceof Uint8Array) return 2 * v.byteLength;
  return 8;
}

/**
 * Which values (by position) are written into the text: none when all fit the bound slots; past
 * them the smallest non-REAL values, so the largest stay bound and the text stays short.
 */
function toInline(values: readonly SqlValue[], realAt: ReadonlySet<number>): Set<number> {
  const out = new Set<number>();
  if (values.length <= MAX_BOUND_PARAMS) return out;
  const isReal = (v: SqlValue, i: number): boolean => realAt.has(i) || isFraction(v);
  const reals = values.filter(isReal).length;
  if (reals > MAX_BOUND_PARAMS) {
    throw new VtError(
      "INVALID_ARGUMENT",
      `a statement for one shard would bind ${reals} REAL values; at most ${MAX_BOUND_PARAMS} fit (send fewer rows per statement)`,
    );
  }
  const others = values.flatMap((v, i) => (isReal(v, i) ? [] : [i]));
  others.sort((a, b) => inlineSize(values[a] ?? null) - inlineSize(values[b] ?? null) || a - b);
  for (const i of others.slice(0, values.length - MAX_BOUND_PARAMS)) out.add(i);
  return out;
}

/**
 * A value written into the SQL text. It is parenthesized, so it never joins the text around it
 * into another token (`1-` and `-5` would make `1--5`, a comment). A text holding NUL (which
 * ends SQLite's reading of a statement) or spelling a system object's name (which the final
 * guard refuses in a string, as SQLite may read a string as a name) is written as the same
 * UTF-8 bytes, as a blob cast to text by `||`: still TEXT without affinity, like the literal.
 */
export function inlineLiteral(v: SqlValue): string {
  if (typeof v === "string" && (v.includes("\0") || systemObjectKind(v) !== undefined)) {
    let hex = "";
    for (const b of new TextEncoder().encode(v)) hex += b.toString(16).padStart(2, "0");
    return `(X'${hex}' || '')`;
  }
  return `(${sqlLiteral(v)})`;
}
