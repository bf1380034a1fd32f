// Aggregate: combines per-shard partial aggregates (grouped by the same keys on every shard)
// into the result a single SQLite would give: COUNT adds up, SUM stays an exact integer while
// every partial is one, TOTAL is always REAL, MIN/MAX compare as SQLite does, AVG = SUM/COUNT.

import { VtError } from "../../topology/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import type { SqlValue } from "../../topology/sql-values.ts";
import type { Bindings } from "../sql/template.ts";
import { compareRows, compareValues, type Collation, type SortKey } from "./compare.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { evaluate, type Condition } from "./condition.ts";

export type AggFn = "count" | "sum" | "total" | "min" | "max" | "avg" | "group_concat" | "distinct";

/** Where an output column comes from, by column index of the shard rows. */
export type AggOutput =
  | { readonly kind: "group"; readonly column: number }
  | { readonly kind: "agg"; readonly fn: "count" | "total"; readonly column: number }
  | { readonly kind: "agg"; readonly fn: "min" | "max"; readonly column: number; readonly collation: Collation }
  /** `typeColumn` holds typeof() of the partial sum: 'real' makes the whole sum REAL. */
  | { readonly kind: "agg"; readonly fn: "sum"; readonly column: number; readonly typeColumn: number }
  | { readonly kind: "agg"; readonly fn: "avg"; readonly column: number; readonly countColumn: number }
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

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

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
  intSum = 0n;
  realSum = 0;
  isReal = false;
  seen = false;
  best: SqlValue = null;
}

function add(acc: Acc, o: Extract<AggOutput, { kind: "agg" }>, row: readonly SqlValue[]): void {
  const fn = o.fn;
  const v = row[o.column] ?? null;
  switch (fn) {
    case "distinct": {
      if (v === null) return;
      acc.distinct ??= new Map();
      const k = groupKey([v], [o.collation]);
      const prev = acc.distinct.get(k);
      const real = row[o.typeColumn] === "real";
      if (!prev) acc.distinct.set(k, { value: v, real });
      return;
    }
    case "group_concat":
      if (v === null) return;
      acc.text = acc.text === null ? String(v) : acc.text + o.separator + String(v);
      return;
    case "count":
      acc.count += Number(v ?? 0);
      return;
    case "min":
    case "max":
      if (v !== null) keepExtreme(acc, fn, v, o.collation);
      return;
    default:
      if (fn === "avg") acc.count += Number(row[o.countColumn] ?? 0);
      if (fn === "sum" && row[o.typeColumn] === "real") acc.isReal = true;
      if (v === null) return;
      acc.seen = true;
      if (typeof v === "bigint" || (typeof v === "number" && Number.isSafeInteger(v))) {
        acc.intSum += BigInt(v);
      } else {
        acc.isReal = true;
        acc.realSum += typeof v === "number" ? v : Number(v);
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
  const inner = new Acc();
  for (const { value, real } of values) {
    if (o.inner === "min" || o.inner === "max") {
      keepExtreme(inner, o.inner, value, o.collation);
      continue;
    }
    inner.seen = true;
    inner.count += 1;
    if (real) inner.isReal = true;
    if (typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value))) inner.intSum += BigInt(value);
    else {
      inner.isReal = true;
      inner.realSum += typeof value === "number" ? value : Number(value);
    }
  }
  if ((o.inner === "sum" || o.inner === "avg" || o.inner === "total") && values.some(({ value }) => typeof value !== "number" && typeof value !== "bigint")) {
    throw unsupportedError("VD1096", `${o.inner}(DISTINCT …) over text or blob values across shards`);
  }
  return finish(inner, o.inner);
}

function finish(acc: Acc, fn: AggFn): SqlValue {
  switch (fn) {
    case "distinct":
      throw new VtError("INTERNAL", "finishDistinct handles DISTINCT aggregates");
    case "group_concat":
      return acc.text;
    case "count":
      return acc.count;
    case "min":
    case "max":
      return acc.best;
    case "total":
      return acc.seen ? acc.realSum + Number(acc.intSum) : 0;
    case "avg":
      return acc.count === 0 || !acc.seen ? null : (acc.realSum + Number(acc.intSum)) / acc.count;
    case "sum": {
      if (!acc.seen) return null;
      if (acc.isReal) return acc.realSum + Number(acc.intSum);
      if (acc.intSum < INT64_MIN || acc.intSum > INT64_MAX) throw new VtError("INVALID_ARGUMENT", "integer overflow in SUM");
      return Number.isSafeInteger(Number(acc.intSum)) ? Number(acc.intSum) : acc.intSum;
    }
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
        return o.fn === "distinct" ? finishDistinct(acc, o) : finish(acc, o.fn);
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
