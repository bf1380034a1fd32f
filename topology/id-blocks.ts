// Automatic sequences: the ids of a sharded table's INTEGER PRIMARY KEY when the vschema names no
// sequence for it. The Topology keeps one counter per (keyspace, table) and hands gates blocks of
// ids from it; a gate serves a block from memory (gate/engine/sequence.ts). The counter is made
// on first use at one past the table's largest id (the gate reads it from the shards and sends it
// as the floor), so rows written before, with explicit ids, are never given again. The counter
// only grows; it outlives DROP TABLE (a re-created table's ids go on from it, still unique).

import { VtError } from "../contract/errors.ts";
import type { IdBlock } from "../contract/topology-rpc.ts";

export type { IdBlock };

const MAX_ID = 9223372036854775807n;

/** Ids a block holds at least (a statement needing more gets a block of its size). */
export const AUTO_ID_BLOCK = 100;

export const ID_BLOCKS_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_topo_ids (
  keyspace TEXT NOT NULL,
  tbl TEXT NOT NULL,              -- lower-cased table name
  next_id INTEGER NOT NULL,       -- the first id not handed out yet
  PRIMARY KEY (keyspace, tbl)
);
`;

export class IdBlocks {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    this.#sql.exec(ID_BLOCKS_SCHEMA);
  }

  /**
   * Reserves a block of at least `count` ids of `table`, none below `floor`. Undefined when the
   * table has no counter yet and no floor was given: the caller reads the table's max id and asks
   * again with one past it. Synchronous, so two calls never get overlapping blocks.
   */
  reserve(keyspace: string, table: string, count: number, floor: bigint | undefined): IdBlock | undefined {
    const tbl = table.toLowerCase();
    const size = BigInt(Math.max(AUTO_ID_BLOCK, Math.ceil(count)));
    const row = this.#sql
      .exec<{ next_id: string }>("SELECT CAST(next_id AS TEXT) AS next_id FROM _vt_topo_ids WHERE keyspace = ? AND tbl = ?", keyspace, tbl)
      .toArray()[0];
    if (!row && floor === undefined) return undefined;
    let next = row ? BigInt(row.next_id) : 1n;
    if (floor !== undefined && floor > next) next = floor;
    if (next < 1n) next = 1n;
    const end = next + size;
    if (end > MAX_ID) throw new VtError("INVALID_ARGUMENT", `table ${table} has used up its ids: they reached the largest 64-bit integer`, { table });
    this.#sql.exec(
      "INSERT INTO _vt_topo_ids (keyspace, tbl, next_id) VALUES (?, ?, CAST(? AS INTEGER)) ON CONFLICT (keyspace, tbl) DO UPDATE SET next_id = excluded.next_id",
      keyspace,
      tbl,
      end.toString(),
    );
    return { next: next.toString(), end: end.toString() };
  }
}
