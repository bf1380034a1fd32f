// Distinct: drops rows equal (as SQLite's DISTINCT sees them) to an earlier one, keeping the
// input's order, so it can sit between a MergeSort and a Limit.

import type { SqlValue } from "../../contract/sql-values.ts";
import type { Bindings } from "../sql/template.ts";
import { groupKey } from "./aggregate.ts";
import type { Collation } from "./compare.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";

export class Distinct implements Primitive {
  readonly input: Primitive;
  /** Per output column, the collation equality uses. */
  readonly collations: readonly Collation[];

  constructor(input: Primitive, collations: readonly Collation[]) {
    this.input = input;
    this.collations = collations;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const r = await this.input.execute(vc, b);
    const seen = new Set<string>();
    const rows: SqlValue[][] = [];
    for (const row of r.rows) {
      const key = groupKey(row, this.collations);
      if (seen.has(key)) continue;
      seen.add(key);
      rows.push(row);
    }
    return { ...r, rows };
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "Distinct", collations: this.collations, inputs: [this.input.describe(x)] };
  }
}
