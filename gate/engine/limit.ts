// Limit: LIMIT / OFFSET applied at the gate after a merge (shards were asked for limit+offset rows).

import type { Bindings } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { describeValue, type ValueExpr } from "./values.ts";
import { limitNumber } from "./limit-values.ts";

export class Limit implements Primitive {
  readonly input: Primitive;
  readonly count: ValueExpr | null;
  readonly offset: ValueExpr | null;

  constructor(input: Primitive, count: ValueExpr | null, offset: ValueExpr | null) {
    this.input = input;
    this.count = count;
    this.offset = offset;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const r = await this.input.execute(vc, b);
    const count = this.count ? limitNumber(this.count, b, "LIMIT") : -1;
    const offset = this.offset ? Math.max(0, limitNumber(this.offset, b, "OFFSET")) : 0;
    const end = count < 0 ? r.rows.length : offset + count;
    return { ...r, rows: r.rows.slice(offset, end) };
  }

  describe(x?: Explain): PlanDescription {
    return {
      operator: "Limit",
      count: this.count ? describeValue(this.count) : null,
      offset: this.offset ? describeValue(this.offset) : null,
      inputs: [this.input.describe(x)],
    };
  }
}
