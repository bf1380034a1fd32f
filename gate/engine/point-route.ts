// PointRoute: a statement whose WHERE pins the vindex column to one value goes whole to that
// value's shard. When the value cannot be routed by the vindex (a REAL, text SQLite would convert),
// the same statement must run on every shard and be merged like any scatter: that plan (or the
// reason it cannot be made) rides along.

import { toVtError, VtError } from "../../contract/errors.ts";
import type { Bindings } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import type { Route } from "./route.ts";

export class PointRoute implements Primitive {
  readonly point: Route;
  readonly #planMerged: () => Primitive;
  #merged: Primitive | VtError | undefined;

  /** `planMerged` runs at most once, the first time a value cannot be routed (cold plans stay cheap). */
  constructor(point: Route, planMerged: () => Primitive) {
    this.point = point;
    this.#planMerged = planMerged;
  }

  get merged(): Primitive | VtError {
    if (this.#merged === undefined) {
      try {
        this.#merged = this.#planMerged();
      } catch (e) {
        this.#merged = toVtError(e);
      }
    }
    return this.#merged;
  }

  execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    if (this.point.shards(vc.keyspace, b).length === 1) return this.point.execute(vc, b);
    const merged = this.merged;
    if (merged instanceof VtError) throw merged;
    return merged.execute(vc, b);
  }

  describe(x?: Explain): PlanDescription {
    const merged = this.#merged;
    return {
      operator: "PointRoute",
      inputs: [this.point.describe(x), ...(merged === undefined || merged instanceof VtError ? [] : [merged.describe(x)])],
    };
  }
}
