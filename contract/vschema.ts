// vschema in Vitess's JSON form (⚑ contract): which vindex shards each table, and which tables
// are reference tables. Validated by topology/vschema.ts.

export interface VindexDef {
  type: string;
  params?: Record<string, string>;
  owner?: string;
}

export interface ColumnVindex {
  column: string;
  name: string;
}

export interface AutoIncrement {
  /** The column the sequence fills when an INSERT omits it or gives NULL. */
  column: string;
  /** The sequence table (`name` or `keyspace.name`), in an unsharded keyspace. */
  sequence: string;
}

export interface TableVSchema {
  type?: "reference" | "sequence";
  column_vindexes?: ColumnVindex[];
  auto_increment?: AutoIncrement;
  /**
   * Where the table's UNIQUE / PRIMARY KEY constraints without the vindex column hold:
   * "keyspace" (the default: a system lookup table per key, kept by the gate) or "per_shard"
   * (Vitess's semantics: each shard checks its own rows only, so a duplicate on another shard is
   * accepted; no lookup writes).
   */
  unique?: "keyspace" | "per_shard";
}

export interface VSchema {
  sharded: boolean;
  vindexes: Record<string, VindexDef>;
  tables: Record<string, TableVSchema>;
}
