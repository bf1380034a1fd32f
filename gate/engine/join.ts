// Joins the gate executes itself, for tables that do not live together on a shard: the left
// input runs first; its distinct join keys are then looked up on the right side in batches
// (`key IN (…)`, routed by the vindex when the key is the right table's vindex column), and the
// rows are paired by a hash on the key, compared as SQLite's `=` compares two columns of the
// same affinity and BINARY collation (the planner refuses any other pair).

import type { SqlValue } from "../../contract/sql-values.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import type { Bindings } from "../sql/template.ts";
import { groupKey } from "./aggregate.ts";
import { compareRows, type SortKey } from "./compare.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { concatResults, type Route } from "./route.ts";

/** Join keys per lookup query: few enough to stay well under a statement's size limit. */
export const LOOKUP_BATCH = 250;

/** The Bindings slot (a subquery id no statement text can produce) that carries the keys to look up. */
export const JOIN_KEYS_SLOT = -1;

export class GateJoin implements Primitive {
  readonly left: Primitive;
  /** The right side: its template's key list reads the JOIN_KEYS_SLOT rows. */
  readonly right: Route;
  /** Key columns, pairwise equal: the first is looked up on the right, all are compared here. */
  readonly leftKeys: readonly number[];
  readonly rightKeys: readonly number[];
  readonly outer: boolean;
  readonly rightWidth: number;

  constructor(spec: { left: Primitive; right: Route; leftKeys: readonly number[]; rightKeys: readonly number[]; outer: boolean; rightWidth: number }) {
    this.left = spec.left;
    this.right = spec.right;
    this.leftKeys = spec.leftKeys;
    this.rightKeys = spec.rightKeys;
    this.outer = spec.outer;
    this.rightWidth = spec.rightWidth;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const left = await this.left.execute(vc, b);
    const keys = new Map<string, SqlValue>();
    const lookupColumn = this.leftKeys[0] ?? 0;
    for (const row of left.rows) {
      const k = row[lookupColumn] ?? null;
      if (k !== null) keys.set(groupKey([k], ["BINARY"]), k);
    }
    const values = [...keys.values()];
    const batches: SqlValue[][] = [];
    for (let i = 0; i < values.length; i += LOOKUP_BATCH) batches.push(values.slice(i, i + LOOKUP_BATCH));
    const results = await Promise.all(batches.map((batch) => this.right.execute(vc, b.withSubqueries(new Map([[JOIN_KEYS_SLOT, batch.map((v) => [v])]])))));
    const right = concatResults(results);
    const byKey = new Map<string, SqlValue[][]>();
    for (const row of right.rows) {
      const key = keyOf(row, this.rightKeys);
      if (key === undefined) continue;
      const list = byKey.get(key);
      if (list) list.push(row);
      else byKey.set(key, [row]);
    }
    const nulls: SqlValue[] = Array.from({ length: this.rightWidth }, () => null);
    const rows: SqlValue[][] = [];
    for (const row of left.rows) {
      const key = keyOf(row, this.leftKeys);
      const matches = key === undefined ? undefined : byKey.get(key);
      if (matches) for (const m of matches) rows.push([...row, ...m]);
      else if (this.outer) rows.push([...row, ...nulls]);
    }
    return { columns: [...left.columns, ...(right.columns.length > 0 ? right.columns : nulls.map((_, i) => `_vtg_r${i}`))], rows, rowsAffected: 0 };
  }

  describe(x?: Explain): PlanDescription {
    return {
      operator: "Join",
      type: this.outer ? "left" : "inner",
      leftKeys: this.leftKeys,
      rightKeys: this.rightKeys,
      inputs: [this.left.describe(x), this.right.describe()],
    };
  }
}

/** The hash key of a row's key columns; undefined when one is NULL (NULL equals nothing). */
function keyOf(row: readonly SqlValue[], columns: readonly number[]): string | undefined {
  const values = columns.map((c) => row[c] ?? null);
  if (values.some((v) => v === null)) return undefined;
  return groupKey(
    values,
    values.map(() => "BINARY"),
  );
}

/** Picks and renames columns: `columns[i]` of the output is input column `from[i]`. */
export class Project implements Primitive {
  readonly input: Primitive;
  readonly from: readonly number[];
  readonly names: readonly string[];

  constructor(input: Primitive, from: readonly number[], names: readonly string[]) {
    this.input = input;
    this.from = from;
    this.names = names;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const r = await this.input.execute(vc, b);
    return { columns: [...this.names], rows: r.rows.map((row) => this.from.map((i) => row[i] ?? null)), rowsAffected: 0 };
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "Project", columns: this.names, from: this.from, inputs: [this.input.describe(x)] };
  }
}

/** Sorts all rows at the gate (stable), then drops `hidden` trailing sort-only columns. */
export class Sort implements Primitive {
  readonly input: Primitive;
  readonly keys: readonly SortKey[];
  readonly hidden: number;

  constructor(input: Primitive, keys: readonly SortKey[], hidden: number) {
    this.input = input;
    this.keys = keys;
    this.hidden = hidden;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const r = await this.input.execute(vc, b);
    const rows = this.keys.length > 0 ? [...r.rows].sort((x, y) => compareRows(x, y, this.keys)) : r.rows;
    if (this.hidden === 0) return { ...r, rows };
    return { ...r, columns: r.columns.slice(0, r.columns.length - this.hidden), rows: rows.map((row) => row.slice(0, row.length - this.hidden)) };
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "Sort", keys: this.keys, ...(this.hidden ? { hidden: this.hidden } : {}), inputs: [this.input.describe(x)] };
  }
}

/** How one partial column of a joined row is computed (see Partials). */
export type PartialFn =
  | { readonly kind: "value"; readonly column: number }
  | { readonly kind: "one" }
  | { readonly kind: "notNull"; readonly column: number }
  /** A sum/avg/total argument when it is an INTEGER, else NULL. */
  | { readonly kind: "integer"; readonly column: number; readonly typeColumn: number }
  /** A sum/avg/total argument when it is a REAL, NULL when INTEGER or NULL; text and blobs are refused at execution. */
  | { readonly kind: "nonInteger"; readonly column: number; readonly typeColumn: number; readonly what: string }
  /** typeof() of a value, from the typeof column the group's query added (its JS form loses REAL for 2.0). */
  | { readonly kind: "type"; readonly column: number }
  /** A group_concat argument: text and integers only (SQLite's text of a REAL is not reproduced here). */
  | { readonly kind: "text"; readonly column: number; readonly typeColumn: number };

/**
 * Turns each joined row into the partial row Aggregate combines, as if every row were a shard's
 * partial of one row: count 1 or 0, sum the value with its type, and so on.
 */
export class Partials implements Primitive {
  readonly input: Primitive;
  readonly fns: readonly PartialFn[];

  constructor(input: Primitive, fns: readonly PartialFn[]) {
    this.input = input;
    this.fns = fns;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const r = await this.input.execute(vc, b);
    const rows = r.rows.map((row) =>
      // biome-ignore lint/suspicious/useIterableCallbackReturn: the switch covers every kind (tsc checks it)
      this.fns.map((f): SqlValue => {
        switch (f.kind) {
          case "value":
            return row[f.column] ?? null;
          case "one":
            return 1;
          case "notNull":
            return (row[f.column] ?? null) === null ? 0 : 1;
          case "integer":
            return row[f.typeColumn] === "integer" ? (row[f.column] ?? null) : null;
          case "nonInteger": {
            const v = row[f.column] ?? null;
            const t = row[f.typeColumn];
            if (v === null || t === "integer") return null;
            if (t !== "real") throw unsupportedError("VD1097", `${f.what} over a text or blob value, across tables joined at the gate, is not supported yet`);
            return v;
          }
          case "type":
            return row[f.column] ?? "null";
          case "text": {
            const v = row[f.column] ?? null;
            const t = row[f.typeColumn];
            if (v !== null && t !== "text" && t !== "integer") {
              throw unsupportedError("VD1098", "group_concat over a REAL or blob value, across tables joined at the gate, is not supported yet");
            }
            return v;
          }
        }
      }),
    );
    return { columns: this.fns.map((_, i) => `_vtg_p${i}`), rows, rowsAffected: 0 };
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "Partials", fns: this.fns, inputs: [this.input.describe(x)] };
  }
}
