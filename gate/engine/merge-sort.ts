// MergeSort: merges shard results that are each already sorted by the same keys (the shard SQL
// keeps the ORDER BY), then drops the hidden sort columns the planner appended.

import { compareRows, type SortKey } from "./compare.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import type { Route } from "./route.ts";
import { render, type Bindings } from "../sql/template.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import { leadingValues } from "./real-values.ts";

export class MergeSort implements Primitive {
  readonly input: Route;
  readonly keys: readonly SortKey[];
  /** Trailing columns added only for sorting, removed from the output. */
  readonly hidden: number;

  constructor(input: Route, keys: readonly SortKey[], hidden: number) {
    this.input = input;
    this.keys = keys;
    this.hidden = hidden;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const shards = this.input.shards(vc.keyspace, b);
    const q = { ...render(this.input.spec.template, b), kind: "read" as const };
    const results = await Promise.all(shards.map(async (s) => (await vc.execute(s, [q]))[0]));
    const streams = results.map((r) => r?.rows ?? []);
    const heads = streams.map(() => 0);
    const rows: SqlValue[][] = [];
    // k is small (shards of one keyspace): a linear pick per row beats a heap's constant factor.
    for (;;) {
      let best = -1;
      for (let i = 0; i < streams.length; i++) {
        const row = streams[i]?.[heads[i] ?? 0];
        if (!row) continue;
        const cur = best >= 0 ? streams[best]?.[heads[best] ?? 0] : undefined;
        if (!cur || compareRows(row, cur, this.keys) < 0) best = i;
      }
      if (best < 0) break;
      const row = streams[best]?.[heads[best] ?? 0];
      heads[best] = (heads[best] ?? 0) + 1;
      if (row) rows.push(this.hidden > 0 ? leadingValues(row, row.length - this.hidden) : row);
    }
    const columns = results.find((r) => r)?.columns ?? [];
    return { columns: this.hidden > 0 ? columns.slice(0, columns.length - this.hidden) : columns, rows, rowsAffected: 0 };
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "MergeSort", keys: this.keys, inputs: [this.input.describe(x)] };
  }
}
