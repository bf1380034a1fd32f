// Applying a stream unit's row changes to a target tablet's tables. Every change is applied
// idempotently by PRIMARY KEY: the row `before` named is deleted (unless `after` keeps its key),
// the row `after` names is written whole (an upsert, so an existing row is updated in place and
// no ON DELETE action fires). With units applied in order this keeps the invariant the streams
// rest on: every row the target holds equals the source's row with the same key at the unit's
// end position. Values are written exactly and bound: integers as their text cast to INTEGER,
// REALs, text and BLOBs as they are.

import { VtError } from "../contract/errors.ts";
import { quoteIdent } from "../contract/sql-values.ts";
import type { RowChange, StreamValue } from "../contract/stream-rpc.ts";
import { fromSqliteError } from "./sqlite-errors.ts";

/** Durable Object SQLite binds at most this many parameters per statement. */
const MAX_PARAMS = 100;

interface TableShape {
  /** Columns a row can be written to (stored generated columns are computed, not written). */
  readonly writable: ReadonlySet<string>;
  /** The primary key's columns, in key order. */
  readonly pk: readonly string[];
}

/** A statement's text and bound values, built from exact stream values. */
class Sql {
  text = "";
  readonly params: (string | number | Uint8Array)[] = [];
  /** Integers are bound unless `values` would take more binds than a statement has. */
  readonly #bindIntegers: boolean;

  constructor(values: readonly StreamValue[]) {
    this.#bindIntegers = values.filter((v) => v !== null).length <= MAX_PARAMS;
  }

  value(v: StreamValue): this {
    if (v === null) this.text += "NULL";
    else if (typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v))) this.integer(v);
    else if (typeof v === "object" && !(v instanceof Uint8Array)) this.bind(v.real);
    else this.bind(v);
    return this;
  }

  /**
   * An INTEGER, exact: bound as its decimal text and cast (a JS number would bind as a REAL, a
   * bigint not at all), so every row of a table shares one statement text and SQLite prepares
   * it once, not once per row; written as a literal when the row's values need more binds than
   * a statement has (then text, REALs and BLOBs keep them).
   */
  integer(v: bigint | number): void {
    if (this.#bindIntegers) {
      this.params.push(String(v));
      this.text += "CAST(? AS INTEGER)";
    } else this.text += v < 0 ? `(${v})` : `${v}`;
  }

  bind(v: string | number | Uint8Array): void {
    if (this.params.length >= MAX_PARAMS) throw new VtError("INVALID_ARGUMENT", `a streamed row binds more than ${MAX_PARAMS} text, REAL or BLOB values`);
    this.params.push(v);
    this.text += "?";
  }
}

export class UnitApplier {
  readonly #sql: SqlStorage;
  readonly #shapes = new Map<string, TableShape>();
  /** A multi-row upsert's text before and after its VALUES tuples, by table and columns. */
  readonly #heads = new Map<string, [string, string]>();

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  #shape(table: string): TableShape {
    let s = this.#shapes.get(table);
    if (s) return s;
    const cols = this.#sql.exec<{ name: string; pk: number; hidden: number }>("SELECT name, pk, hidden FROM pragma_table_xinfo(?)", table).toArray();
    if (cols.length === 0) throw new VtError("INVALID_ARGUMENT", `streamed table ${table} does not exist on the target`);
    const pk = cols
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    if (pk.length === 0) throw new VtError("INVALID_ARGUMENT", `streamed table ${table} has no PRIMARY KEY on the target`);
    s = { writable: new Set(cols.filter((c) => c.hidden === 0).map((c) => c.name)), pk };
    this.#shapes.set(table, s);
    return s;
  }

  #run(q: Sql): void {
    try {
      this.#sql.exec(q.text, ...q.params);
    } catch (e) {
      throw fromSqliteError(e);
    }
  }

  /** The image's values of the key columns, in key order. */
  #key(shape: TableShape, columns: readonly string[], image: readonly StreamValue[], table: string): StreamValue[] {
    return shape.pk.map((k) => {
      const i = columns.indexOf(k);
      if (i < 0) throw new VtError("INVALID_ARGUMENT", `a streamed row of ${table} lacks its key column ${k}`);
      return image[i] ?? null;
    });
  }

  apply(c: RowChange): void {
    const shape = this.#shape(c.table);
    const t = quoteIdent(c.table);
    const oldKey = c.before ? this.#key(shape, c.columns, c.before, c.table) : null;
    const newKey = c.after ? this.#key(shape, c.columns, c.after, c.table) : null;
    if (oldKey && !(newKey && sameKey(oldKey, newKey))) {
      const q = new Sql(oldKey);
      q.text = `DELETE FROM ${t} WHERE `;
      shape.pk.forEach((k, i) => {
        if (i > 0) q.text += " AND ";
        q.text += `${quoteIdent(k)} = `;
        q.value(oldKey[i] ?? null);
      });
      this.#run(q);
    }
    if (!c.after) return;
    const cols = c.columns.map((name, i) => ({ name, i })).filter((x) => shape.writable.has(x.name));
    const q = new Sql(cols.map((x) => c.after?.[x.i] ?? null));
    q.text = `INSERT INTO ${t} (${cols.map((x) => quoteIdent(x.name)).join(", ")}) VALUES (`;
    cols.forEach((x, n) => {
      if (n > 0) q.text += ", ";
      q.value(c.after?.[x.i] ?? null);
    });
    const rest = cols.filter((x) => !shape.pk.includes(x.name));
    q.text += `) ON CONFLICT (${shape.pk.map(quoteIdent).join(", ")}) DO `;
    q.text += rest.length === 0 ? "NOTHING" : `UPDATE SET ${rest.map((x) => `${quoteIdent(x.name)} = excluded.${quoteIdent(x.name)}`).join(", ")}`;
    this.#run(q);
  }

  /**
   * Applies `rows` in order, as apply() would one by one. Runs of whole new images of one table
   * (what a copy page holds) are upserted several rows to a statement, whose text is the same for
   * every run of the same shape, so SQLite prepares it once and the target spends its time on the
   * rows, not on statements.
   */
  applyAll(rows: readonly RowChange[]): void {
    let i = 0;
    while (i < rows.length) {
      const first = rows[i];
      if (!first) break;
      if (first.before !== null || first.after === null) {
        this.apply(first);
        i++;
        continue;
      }
      const shape = this.#shape(first.table);
      const cols = first.columns.map((name, at) => ({ name, at })).filter((x) => shape.writable.has(x.name));
      const per = cols.length === 0 ? 0 : Math.floor(MAX_PARAMS / cols.length);
      if (per < 1) {
        this.apply(first);
        i++;
        continue;
      }
      let j = i;
      const run: (readonly StreamValue[])[] = [];
      for (; j < rows.length && run.length < per; j++) {
        const r = rows[j];
        if (!r || r.before !== null || r.after === null || r.table !== first.table || !sameColumns(r.columns, first.columns)) break;
        run.push(r.after);
      }
      this.#upsertRun(first.table, shape, cols, run);
      i = j;
    }
  }

  /** One multi-row upsert of whole images (every value bound: integers as their text cast, see Sql.integer). */
  #upsertRun(table: string, shape: TableShape, cols: readonly { name: string; at: number }[], images: readonly (readonly StreamValue[])[]): void {
    const params: (string | number | Uint8Array | null)[] = [];
    let tuples = "";
    for (const image of images) {
      tuples += tuples === "" ? "(" : ", (";
      cols.forEach((x, n) => {
        const v = image[x.at] ?? null;
        if (n > 0) tuples += ", ";
        if (typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v))) {
          params.push(String(v));
          tuples += "CAST(? AS INTEGER)";
        } else {
          params.push(v !== null && typeof v === "object" && !(v instanceof Uint8Array) ? v.real : v);
          tuples += "?";
        }
      });
      tuples += ")";
    }
    const key = `${table}\u0000${cols.map((x) => x.name).join("\u0000")}`;
    let head = this.#heads.get(key);
    if (head === undefined) {
      const rest = cols.filter((x) => !shape.pk.includes(x.name));
      head = [
        `INSERT INTO ${quoteIdent(table)} (${cols.map((x) => quoteIdent(x.name)).join(", ")}) VALUES `,
        ` ON CONFLICT (${shape.pk.map(quoteIdent).join(", ")}) DO ${
          rest.length === 0 ? "NOTHING" : `UPDATE SET ${rest.map((x) => `${quoteIdent(x.name)} = excluded.${quoteIdent(x.name)}`).join(", ")}`
        }`,
      ];
      this.#heads.set(key, head);
    }
    try {
      this.#sql.exec(head[0] + tuples + head[1], ...params);
    } catch (e) {
      throw fromSqliteError(e);
    }
  }
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((c, i) => c === b[i]));
}

function sameValue(a: StreamValue, b: StreamValue): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (typeof a === "object" && a !== null && !(a instanceof Uint8Array))
    return typeof b === "object" && b !== null && !(b instanceof Uint8Array) && a.real === b.real;
  return a === b;
}

function sameKey(a: readonly StreamValue[], b: readonly StreamValue[]): boolean {
  return a.length === b.length && a.every((v, i) => sameValue(v, b[i] ?? null));
}
