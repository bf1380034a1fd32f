// InsertSelect: INSERT … SELECT across shards, the SELECT read in full and its rows inserted as an
// Insert of bound values.

import { VtError } from "../../contract/errors.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import type { Vindex } from "../../topology/vindex.ts";
import type { Bindings, Template } from "../sql/template.ts";
import { withFreshIds } from "./fresh-ids.ts";
import { Insert, type AutoIncrementSpec, type InsertRow } from "./insert.ts";
import type { UpsertSpec } from "./insert-upsert.ts";
import type { LookupTable } from "./lookup.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import type { Affinity } from "./values.ts";
import { realsOf, typedReads } from "./real-values.ts";

/** The Bindings slot holding an INSERT … SELECT's rows (no statement text can produce a negative id). */
export const INSERT_ROWS_SLOT = -2;

/**
 * INSERT … SELECT across shards: the SELECT runs first (planned like any read, whole), then its
 * rows are inserted as an Insert of bound values, each row on the shard of its vindex value. As
 * SQLite does, the SELECT is read in full before the first row is written.
 */
export class InsertSelect implements Primitive {
  readonly select: Primitive;
  readonly spec: {
    table: string;
    vindex: Vindex;
    prefix: Template;
    suffix: Template;
    affinity: Affinity;
    /** Columns the SELECT gives. */
    width: number;
    /** Position of the vindex column among the inserted columns (-1: it is the omitted auto-increment column). */
    vindexColumn: number;
    /** The auto-increment column, and where it is among the SELECT's columns (-1: omitted, so it goes first). */
    auto?: AutoIncrementSpec & { at: number };
    /** The vindex column's name. */
    vindexColumnName?: string;
    /** Per lookup: a taken value skips the row (OR IGNORE / DO NOTHING), see Insert.ignore. */
    ignore?: readonly boolean[];
    /** REPLACE / INSERT OR REPLACE, see Insert.replace and Insert.replacesByVindex. */
    replace?: boolean;
    replacesByVindex?: boolean;
    /**
     * TEXT columns that place the row (vindex, lookup), by position among the SELECT's columns,
     * with whether an integral number there is surely an INTEGER (planner/insert-select-values.ts).
     */
    textPlacing?: readonly { at: number; column: string; exact: boolean }[];
    /** ON CONFLICT DO UPDATE (see Insert.upsert); where each column of its local keys, or of ignoreLocal's, is among the SELECT's columns. */
    upsert?: UpsertSpec;
    /** Keys holding the vindex column whose taken values skip the row (OR IGNORE, DO NOTHING on them), see Insert.ignoreLocal. */
    ignoreLocal?: readonly (readonly string[])[];
    /** A NULL vindex value is SQLite's own NOT NULL failure or skip (see Insert.nullVindex). */
    nullVindex?: "constraint" | "skip";
    localAt?: readonly (readonly (number | "vindex")[])[];
    /** Lookups the table owns, and where each of their columns is among the SELECT's columns (-1: not given; "auto": the sequence's column). */
    lookups?: readonly { table: LookupTable; at: readonly (number | "auto")[] }[];
  };

  constructor(select: Primitive, spec: InsertSelect["spec"]) {
    this.select = select;
    this.spec = spec;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    // The SELECT's rows carry which integral numbers are REALs (real-values.ts), where the tablets answered them unchanged.
    const selected = (await this.select.execute(typedReads(vc), b)).rows;
    const { width, auto } = this.spec;
    for (const row of selected) if (row.length !== width) throw new VtError("INVALID_ARGUMENT", `the SELECT gives ${row.length} values for ${width} columns`);
    const realCols = selected.map((row) => realsOf(row));
    for (const p of this.spec.textPlacing ?? []) {
      for (const [r, row] of selected.entries()) {
        const v = row[p.at];
        const typed = realCols[r];
        // A REAL placing the row: SQLite stores its text ('1.0'), which the gate does not compute. A number known to be an INTEGER is placed by its digits.
        const maybeReal = typed ? typed.has(p.at) || !Number.isSafeInteger(v) : !p.exact || !Number.isSafeInteger(v);
        if (typeof v === "number" && maybeReal) {
          throw unsupportedError(
            "VD2603",
            `INSERT … SELECT into ${this.spec.table}: the number ${String(v)} as the value of TEXT column ${p.column}, which places the row, may be a REAL whose stored text the gate does not compute; CAST it AS TEXT in the SELECT`,
          );
        }
      }
    }
    let rows: SqlValue[][] = selected.map((r) => [...r]);
    let vindexColumn = this.spec.vindexColumn;
    const shifted = auto && auto.at < 0 ? 1 : 0;
    const reals = realCols.map((cols) => (cols && cols.size > 0 ? new Set([...cols].map((c) => c + shifted)) : undefined));
    if (!auto) return this.#insert(vc, b, rows, vindexColumn, reals);
    let at = auto.at;
    if (at < 0) {
      rows = rows.map((r) => [null, ...r]);
      at = 0;
      vindexColumn = vindexColumn < 0 ? 0 : vindexColumn + 1;
    }
    // A REAL given for the auto-increment column is SQLite's to convert (an INTEGER PRIMARY KEY takes 1.0 as 1).
    for (const s of reals) s?.delete(at);
    const need = rows.flatMap((r, i) => (r[at] === null ? [i] : []));
    if (need.length === 0) return this.#insert(vc, b, rows, vindexColumn, reals);
    const explicit = rows.flatMap((r) => (r[at] === null ? [] : [r[at] ?? null]));
    return withFreshIds(vc, { ...auto, table: this.spec.table }, need.length, explicit, (ids) => {
      need.forEach((i, k) => {
        (rows[i] as SqlValue[])[at] = ids[k] ?? null;
      });
      return this.#insert(vc, b, rows, vindexColumn, reals);
    });
  }

  /** Inserts the SELECT's rows (every auto-increment value known) as an Insert of bound values. */
  #insert(
    vc: VCursor,
    b: Bindings,
    rows: readonly SqlValue[][],
    vindexColumn: number,
    reals: readonly (ReadonlySet<number> | undefined)[],
  ): Promise<QueryResult> {
    const { width, auto } = this.spec;
    const w = rows[0]?.length ?? width;
    const shift = auto && auto.at < 0 ? 1 : 0;
    const lookups = this.spec.lookups ?? [];
    const inserts: InsertRow[] = rows.map((row, i) => ({
      parts: ["(", { values: (x: Bindings) => x.subquery(INSERT_ROWS_SLOT)[i] ?? [], empty: "NULL", size: w, ...(reals[i] ? { reals: reals[i] } : {}) }, ")"],
      vindexValue: { literal: row[vindexColumn] ?? null },
      lookupValues: lookups.map((l) =>
        l.at.map((at) => ({ literal: at === "auto" ? (row[auto && auto.at >= 0 ? auto.at : 0] ?? null) : at < 0 ? null : (row[at + shift] ?? null) })),
      ),
      ...(this.spec.localAt
        ? { localValues: this.spec.localAt.map((k) => k.map((at) => (at === "vindex" ? at : at < 0 ? undefined : { literal: row[at + shift] ?? null }))) }
        : {}),
    }));
    if (inserts.length === 0) return Promise.resolve({ columns: [], rows: [], rowsAffected: 0 });
    const insert = new Insert(
      this.spec.table,
      this.spec.vindex,
      this.spec.prefix,
      inserts,
      this.spec.suffix,
      this.spec.affinity,
      undefined,
      lookups.map((l) => l.table),
      this.spec.vindexColumnName,
      this.spec.ignore,
      this.spec.replace,
      this.spec.replacesByVindex,
      this.spec.upsert,
      this.spec.ignoreLocal,
      this.spec.nullVindex,
    );
    return insert.execute(vc, b.withSubqueries(new Map([[INSERT_ROWS_SLOT, rows]])));
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "InsertSelect", table: this.spec.table, vindex: this.spec.vindex.type, inputs: [this.select.describe(x)] };
  }
}
