// A plan is a tree of small operators (as Vitess's engine primitives). Each reaches tablets
// only through the VCursor, so unit tests can plug in a fake backed by in-memory databases.

import type { TableVSchema } from "../../contract/vschema.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { BoundQuery, QueryResult } from "../../contract/tablet-rpc.ts";
import type { Bindings } from "../sql/template.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import type { IdSource } from "./sequence.ts";

export type { QueryResult } from "../../contract/tablet-rpc.ts";

export interface VCursor {
  /** The keyspace as the gate last saw it (shards, vschema, tables). */
  readonly keyspace: KeyspaceGraph;
  /** Runs the queries on one shard as a single transaction. */
  execute(shard: string, queries: BoundQuery[]): Promise<QueryResult[]>;
  /**
   * `count` fresh ids, increasing, from a sequence table (vschema `auto_increment`, named `table`
   * or `keyspace.table`) or a table's automatic sequence; with `floor`, none below it (cached ids below it are skipped).
   */
  nextIds(source: IdSource, count: number, floor?: bigint): Promise<SqlValue[]>;
  /** Runs one statement through the gate on a keyspace (lookup vindex tables), as a client would. */
  lookupExecute(keyspace: string, sql: string, params: SqlValue[]): Promise<QueryResult>;
  /** Runs a read of the schema catalog alone on the keyspace's Catalog (its schema, no rows). */
  catalog?(query: BoundQuery): Promise<QueryResult>;
  /** Applies a DDL statement to every shard through the Topology. */
  applyDdl(req: { sql: string; addTable?: { name: string; entry: TableVSchema }; dropTable?: string }): Promise<void>;
}

/** A node of VEXPLAIN output. */
export interface PlanDescription {
  readonly operator: string;
  readonly [detail: string]: unknown;
  readonly inputs?: readonly PlanDescription[];
}

/** What VEXPLAIN knows when it describes a plan: the keyspace and the request's params. */
export interface Explain {
  readonly keyspace: KeyspaceGraph;
  readonly bindings: Bindings;
}

export interface Primitive {
  execute(vc: VCursor, b: Bindings): Promise<QueryResult>;
  /** The operator tree; with `x`, Routes also name the shards they reach and the SQL each gets. */
  describe(x?: Explain): PlanDescription;
}

export function emptyResult(columns: string[] = []): QueryResult {
  return { columns, rows: [], rowsAffected: 0 };
}
