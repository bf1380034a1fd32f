// Compound: UNION ALL / UNION / INTERSECT / EXCEPT of SELECTs, each planned on its own, combined
// at the gate left to right as SQLite does (equal precedence), then an optional ORDER BY over
// the combined rows. Set operators compare rows as DISTINCT does.

import { VtError } from "../../contract/errors.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import type { Bindings } from "../sql/template.ts";
import { groupKey } from "./aggregate.ts";
import { compareRows, type Collation, type SortKey } from "./compare.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";

export type SetOp = "union all" | "union" | "intersect" | "except";

export class Compound implements Primitive {
  readonly branches: readonly Primitive[];
  /** ops[i] combines the result so far with branches[i + 1]. */
  readonly ops: readonly SetOp[];
  readonly collations: readonly Collation[];
  readonly order: readonly SortKey[];

  constructor(branches: readonly Primitive[], ops: readonly SetOp[], collations: readonly Collation[], order: readonly SortKey[]) {
    this.branches = branches;
    this.ops = ops;
    this.collations = collations;
    this.order = order;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const results = await Promise.all(this.branches.map((p) => p.execute(vc, b)));
    const first = results[0];
    if (!first) throw new VtError("INTERNAL", "compound SELECT without branches");
    const width = first.columns.length;
    const key = (row: readonly SqlValue[]) => groupKey(row, this.collations);
    const dedupe = (rows: SqlValue[][]) => {
      const seen = new Set<string>();
      return rows.filter((r) => {
        const k = key(r);
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    };
    let rows = first.rows;
    this.ops.forEach((op, i) => {
      const next = results[i + 1];
      if (!next) return;
      if (next.columns.length !== width) {
        throw new VtError("INVALID_ARGUMENT", "SELECTs to the left and right of a compound operator do not have the same number of result columns");
      }
      if (op === "union all") rows = [...rows, ...next.rows];
      else if (op === "union") rows = dedupe([...rows, ...next.rows]);
      else {
        const right = new Set(next.rows.map(key));
        rows = dedupe(rows).filter((r) => right.has(key(r)) === (op === "intersect"));
      }
    });
    if (this.order.length > 0) rows = [...rows].sort((x, y) => compareRows(x, y, this.order));
    return { columns: first.columns, rows, rowsAffected: 0 };
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "Compound", ops: this.ops, orderBy: this.order, inputs: this.branches.map((p) => p.describe(x)) };
  }
}
