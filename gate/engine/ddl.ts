// Ddl: a schema change for every shard of the keyspace, applied (and recorded for shards created
// later) through the Topology, which serialises DDL so every shard sees the same order.

import type { TableVSchema } from "../../contract/vschema.ts";
import type { Bindings } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";

export class Ddl implements Primitive {
  readonly sql: string;
  readonly addTable: { name: string; entry: TableVSchema } | undefined;
  readonly dropTable: string | undefined;

  constructor(sql: string, addTable?: { name: string; entry: TableVSchema }, dropTable?: string) {
    this.sql = sql;
    this.addTable = addTable;
    this.dropTable = dropTable;
  }

  async execute(vc: VCursor, _b: Bindings): Promise<QueryResult> {
    await vc.applyDdl({
      sql: this.sql,
      ...(this.addTable ? { addTable: this.addTable } : {}),
      ...(this.dropTable !== undefined ? { dropTable: this.dropTable } : {}),
    });
    return { columns: [], rows: [], rowsAffected: 0 };
  }

  describe(_x?: Explain): PlanDescription {
    return { operator: "Ddl", sql: this.sql, ...(this.addTable ? { vschema: this.addTable } : {}) };
  }
}
