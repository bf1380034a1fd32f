// PointRoute: a statement whose WHERE pins the vindex column to one value goes whole to that
// value's shard. When the value cannot be routed by the vindex (a REAL, text SQLite would convert),
// the same statement must run on every shard and be merged like any scatter: that plan (or the
// reason it cannot be made) rides along.

import { VtError } from "../../topology/errors.ts";
import type { Bindings } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import type { Route } from "./route.ts";

export class PointRoute implements Primitive {
  readonly point: Route;
  readonly merged: Primitive | VtError;

  constructor(point: Route, merged: Primitive | VtError) {
    this.point = point;
    this.merged = merged;
  }

  execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    if (this.point.shards(vc.keyspace, b).length === 1) return this.point.execute(vc, b);
    if (this.merged instanceof VtError) throw this.merged;
    return this.merged.execute(vc, b);
  }

  describe(x?: Explain): PlanDescription {
    return {
      operator: "PointRoute",
      inputs: [this.point.describe(x), ...(this.merged instanceof VtError ? [] : [this.merged.describe(x)])],
    };
  }
}
