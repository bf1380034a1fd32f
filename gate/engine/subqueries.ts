// Subqueries: uncorrelated subqueries run first (in parallel); their rows are bound into the
// outer statement, which then runs as planned (IN lists, EXISTS as 1/0, scalar values).

import type { SqlValue } from "../../contract/sql-values.ts";
import type { Bindings } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";

export class Subqueries implements Primitive {
  readonly subs: ReadonlyMap<number, Primitive>;
  readonly outer: Primitive;

  constructor(subs: ReadonlyMap<number, Primitive>, outer: Primitive) {
    this.subs = subs;
    this.outer = outer;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const entries = await Promise.all([...this.subs].map(async ([id, p]) => [id, (await p.execute(vc, b)).rows] as const));
    const results = new Map<number, readonly (readonly SqlValue[])[]>(entries);
    return this.outer.execute(vc, b.withSubqueries(results));
  }

  describe(x?: Explain): PlanDescription {
    return {
      operator: "Subqueries",
      subqueries: [...this.subs].map(([id, p]) => ({ id, plan: p.describe(x) })),
      // The outer routes' SQL depends on the subqueries' rows, which VEXPLAIN does not run.
      inputs: [this.outer.describe()],
    };
  }
}
