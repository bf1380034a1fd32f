// Aggregate: combines per-shard partial aggregates (grouped by the same keys on every shard)
// into the result a single SQLite would give: COUNT adds up, SUM / TOTAL / AVG combine exact
// partials as SQLite sums (exact-sum.ts), MIN/MAX compare as SQLite does.

import { unsupportedError } from "../../topology/refusals.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import type { Bindings } from "../sql/template.ts";
import { compareRows, compareValues, type Collation, type SortKey } from "./compare.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { evaluate, type Condition } from "./condition.ts";
import { addValue, ExactSum } from "./exact-sum.ts";

export type AggFn = "count" | "sum" | "total" | "min" | "max" | "avg" | "group_concat" | "distinct";

/**
 * Where a sum / total / avg finds its partials: integer partial sums that are exact (each
 * `column` × 2^`shift`), the partial sum of the non-integer values with its typeof() ('integer'
 * when those were integer-looking text), and the count of non-NULL values.
 */
export interface SumParts {
  readonly ints: readonly { readonly column: number; readonly shift: number }[];
  readonly rest: number;
  readonly restType: number;
  readonly count: number;
}

/** Where an output column comes from, by column index of the shard rows. */
export type AggOutput =
  | { readonly kind: "group"; readonly column: number }
  | { readonly kind: "agg"; readonly fn: "count"; readonly column: number }
  | { readonly kind: "agg"; readonly fn: "min" | "max"; readonly column: number; readonly collation: Collation }
  /** Combined exactly as SQLite sums (exact-sum.ts). */
  | { readonly kind: "agg"; readonly fn: "sum" | "total" | "avg"; readonly parts: SumParts }
  /** group_concat: the shards' partial strings joined with the separator (element order is arbitrary in SQLite too). */
  | { readonly kind: "agg"; readonly fn: "group_concat"; readonly column: number; readonly separator: string }
  /**
   * count / sum / total / avg / min / max (DISTINCT x): shards group by x too, so each distinct x
   * arrives (once per shard holding it); the gate deduplicates as SQLite would and aggregates.
   */
  | {
      readonly kind: "agg";
      readonly fn: "distinct";
      readonly inner: "count" | "sum" | "total" | "avg" | "min" | "max";
      readonly column: number;
      readonly typeColumn: number;
      readonly collation: Collation;
    };

/** Equal keys for values that GROUP BY and DISTINCT treat as equal (NULLs together, 1 = 1.0, collations). */
export function groupKey(values: readonly SqlValue[], collations: readonly Collation[]): string {
  return values
    .map((v, i) => {
      if (v === null) return "n";
      if (typeof v === "bigint") return `i${v}`;
      if (typeof v === "number") return Number.isInteger(v) && Number.isFinite(v) ? `i${BigInt(v)}` : `r${v}`;
      if (typeof v === "string") {
        const c = collations[i] ?? "BINARY";
        const s = c === "NOCASE" ? v.replace(/[A-Z]/g, (x) => x.toLowerCase()) : c === "RTRIM" ? v.replace(/ +$/, "") : v;
        return `t${s.length}:${s}`;
      }
      return `b${Array.from(v, (x) => x.toString(16).padStart(2, "0")).join("")}`;
    })
    .join("\u0000");
}

class Acc {
  /** DISTINCT aggregates: each distinct value once, keyed as SQLite compares them. */
  distinct: Map<string, { value: SqlValue; real: boolean }> | null = null;
  text: string | null = null;
  count = 0;
  readonly sum = new ExactSum();
  seen = false;
  best: SqlValue = null;
}

function add(acc: Acc, o: Extract<AggOutput, { kind: "agg" }>, row: readonly SqlValue[]): void {
  switch (o.fn) {
    case "distinct": {
      const v = row[o.column] ?? null;
      if (v === null) return;
      acc.distinct ??= new Map();
      const k = groupKey([v], [o.collation]);
      if (!acc.distinct.has(k)) acc.distinct.set(k, { value: v, real: row[o.typeColumn] === "real" });
      return;
    }
    case "group_concat": {
      const v = row[o.column] ?? null;
      if (v === null) return;
      acc.text = acc.text === null ? String(v) : acc.text + o.separator + String(v);
      return;
    }
    case "count":
      acc.count += Number(row[o.column] ?? 0);
      return;
    case "min":
    case "max": {
      const v = row[o.column] ?? null;
      if (v !== null) keepExtreme(acc, o.fn, v, o.collation);
      return;
    }
    default: {
      const p = o.parts;
      acc.sum.count += Number(row[p.count] ?? 0);
      for (const { column, shift } of p.ints) {
        const v = row[column] ?? null;
        if (typeof v === "number" || typeof v === "bigint") acc.sum.addInteger(BigInt(v) << BigInt(shift));
      }
      const rest = row[p.rest] ?? null;
      const type = row[p.restType];
      if (type === "nan") acc.sum.addReal(Number.NaN);
      if (rest === null) return;
      if (type === "integer" && (typeof rest === "number" || typeof rest === "bigint")) acc.sum.addInteger(BigInt(rest));
      else acc.sum.addReal(Number(rest));
    }
  }
}

/** MIN / MAX: keeps `v` when it is below (min) or above (max) the best so far, as SQLite compares. */
function keepExtreme(acc: Acc, fn: "min" | "max", v: SqlValue, collation: Collation): void {
  const c = acc.seen ? compareValues(v, acc.best, collation) : 0;
  if (!acc.seen || (fn === "min" ? c < 0 : c > 0)) acc.best = v;
  acc.seen = true;
}

function finishDistinct(acc: Acc, o: Extract<AggOutput, { fn: "distinct" }>): SqlValue {
  const values = [...(acc.distinct?.values() ?? [])];
  if (o.inner === "count") return values.length;
  if (o.inner === "min" || o.inner === "max") {
    const inner = new Acc();
    for (const { value } of values) keepExtreme(inner, o.inner, value, o.collation);
    return inner.best;
  }
  if (values.some(({ value }) => typeof value !== "number" && typeof value !== "bigint")) {
    throw unsupportedError("VD1096", `${o.inner}(DISTINCT …) over text or blob values across shards`);
  }
  const sum = new ExactSum();
  for (const { value, real } of values) addValue(sum, value, real);
  return o.inner === "sum" ? sum.sum() : o.inner === "total" ? sum.total() : sum.avg();
}

function finish(acc: Acc, o: Exclude<Extract<AggOutput, { kind: "agg" }>, { fn: "distinct" }>): SqlValue {
  switch (o.fn) {
    case "group_concat":
      return acc.text;
    case "count":
      return acc.count;
    case "min":
    case "max":
      return acc.best;
    case "total":
      return acc.sum.total();
    case "avg":
      return acc.sum.avg();
    case "sum":
      return acc.sum.sum();
  }
}

export class Aggregate implements Primitive {
  /** Partial rows: per shard (a Route), or one per joined row (a gate join's Partials). */
  readonly input: Primitive;
  readonly groupColumns: readonly number[];
  readonly groupCollations: readonly Collation[];
  readonly outputs: readonly AggOutput[];
  readonly columns: readonly string[];
  /** ORDER BY over the output columns, applied after combining. */
  readonly order: readonly SortKey[];
  /** HAVING over the combined rows (visible outputs first, then the hidden ones it needs). */
  readonly having: Condition | undefined;
  /** Outputs past this index exist only for HAVING and are dropped. */
  readonly visible: number;

  constructor(
    input: Primitive,
    groupColumns: readonly number[],
    groupCollations: readonly Collation[],
    outputs: readonly AggOutput[],
    columns: readonly string[],
    order: readonly SortKey[],
    having?: Condition,
    visible?: number,
  ) {
    this.having = having;
    this.visible = visible ?? outputs.length;
    this.input = input;
    this.groupColumns = groupColumns;
    this.groupCollations = groupCollations;
    this.outputs = outputs;
    this.columns = columns;
    this.order = order;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const partial = await this.input.execute(vc, b);
    const groups = new Map<string, { first: SqlValue[]; accs: Acc[] }>();
    for (const row of partial.rows) {
      const key = groupKey(
        this.groupColumns.map((c) => row[c] ?? null),
        this.groupCollations,
      );
      let g = groups.get(key);
      if (!g) {
        g = { first: row, accs: this.outputs.map(() => new Acc()) };
        groups.set(key, g);
      }
      this.outputs.forEach((o, i) => {
        const acc = g?.accs[i];
        if (o.kind === "agg" && acc) add(acc, o, row);
      });
    }
    if (groups.size === 0 && this.groupColumns.length === 0) {
      groups.set("", { first: [], accs: this.outputs.map(() => new Acc()) });
    }
    const rows: SqlValue[][] = [];
    for (const g of groups.values()) {
      const row = this.outputs.map((o, i) => {
        const acc = g.accs[i];
        if (o.kind === "group") return g.first[o.column] ?? null;
        if (!acc) return null;
        return o.fn === "distinct" ? finishDistinct(acc, o) : finish(acc, o);
      });
      if (this.having && evaluate(this.having, row, b) !== 1) continue;
      rows.push(row.length > this.visible ? row.slice(0, this.visible) : row);
    }
    if (this.order.length > 0) rows.sort((x, y) => compareRows(x, y, this.order));
    return { columns: [...this.columns], rows, rowsAffected: 0 };
  }

  describe(x?: Explain): PlanDescription {
    return {
      operator: "Aggregate",
      groupBy: this.groupColumns,
      outputs: this.outputs,
      ...(this.order.length > 0 ? { orderBy: this.order } : {}),
      ...(this.having ? { having: this.having } : {}),
      inputs: [this.input.describe(x)],
    };
  }
}
