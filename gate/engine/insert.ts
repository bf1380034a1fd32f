// Insert: a multi-row INSERT split by shard. Each row goes to the shard its vindex value maps
// to; the rows of one shard travel as one INSERT. Shards commit independently.

import { VtError } from "../../topology/errors.ts";
import type { Vindex } from "../../topology/vindex.ts";
import { render, type Bindings, type Part, type Template } from "../sql/template.ts";
import type { PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { concatResults, writeEach } from "./route.ts";
import { describeValue, evalValue, routableValue, shardForValue, type Affinity, type ValueExpr } from "./values.ts";
import type { KeyspaceGraph } from "../../topology/graph.ts";
import type { SqlValue } from "../../topology/sql-values.ts";

export interface InsertRow {
  readonly parts: Template;
  readonly vindexValue: ValueExpr;
}

export class Insert implements Primitive {
  readonly table: string;
  readonly vindex: Vindex;
  readonly prefix: Template;
  readonly rows: readonly InsertRow[];
  readonly suffix: Template;
  readonly affinity: Affinity;

  constructor(table: string, vindex: Vindex, prefix: Template, rows: readonly InsertRow[], suffix: Template, affinity: Affinity) {
    this.affinity = affinity;
    this.table = table;
    this.vindex = vindex;
    this.prefix = prefix;
    this.rows = rows;
    this.suffix = suffix;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const byShard = new Map<string, Part[]>();
    let lastShard = "";
    for (const row of this.rows) {
      const value = evalValue(row.vindexValue, b);
      const shard = this.shardOf(vc.keyspace, value);
      let parts = byShard.get(shard);
      if (!parts) {
        parts = [...this.prefix];
        byShard.set(shard, parts);
      } else {
        parts.push(", ");
      }
      parts.push(...row.parts);
      lastShard = shard;
    }
    const shards = [...byShard.keys()];
    const results = await writeEach(shards, async (s) => {
      const parts = [...(byShard.get(s) ?? []), ...this.suffix];
      return (await vc.execute(s, [{ ...render(parts, b), kind: "insert" }]))[0];
    });
    const out = concatResults(results);
    const last = results[shards.indexOf(lastShard)];
    if (last?.lastInsertRowid !== undefined) out.lastInsertRowid = last.lastInsertRowid;
    else delete out.lastInsertRowid;
    return out;
  }

  /** The shard of one row; a value SQLite would convert before storing is refused, not misplaced. */
  shardOf(ks: KeyspaceGraph, value: SqlValue): string {
    if (value === null) {
      throw new VtError("INVALID_ARGUMENT", `INSERT into ${this.table}: the vindex column must not be NULL (no sequence is configured)`);
    }
    if (!routableValue(value, this.affinity)) {
      throw new VtError("INVALID_ARGUMENT", `INSERT into ${this.table}: '${String(value)}' is not a canonical integer for its ${this.affinity} vindex column; send the number`);
    }
    return shardForValue(ks, this.vindex, value);
  }

  describe(): PlanDescription {
    return {
      operator: "Insert",
      table: this.table,
      vindex: this.vindex.type,
      rows: this.rows.map((r) => describeValue(r.vindexValue)),
    };
  }
}
