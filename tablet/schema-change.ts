// Applying and trying schema entries on a tablet, and the write fence a schema change holds.
//
// Ordering contract (with topology/topology-do.ts): a change is first *prepared* on every shard:
// the shard catches up on the history, tries the entry in a transaction that is rolled back, and,
// only if it succeeds, holds a fence (persisted) that refuses writes until the Topology resolves
// the change. Because no write can land between the try and the apply, an entry every shard
// tried can fail on apply only for transient reasons, so re-driving it converges.

import { VtError } from "../contract/errors.ts";
import { unsupportedError } from "../topology/refusals.ts";
import { appendCommit, appendDdl, dropTriggers, listUserTables, quoteIdent, rebuildTriggers } from "./binlog.ts";
import { fromSqliteError } from "./sqlite-errors.ts";
import type { DdlEntry, TableInfo } from "../contract/tablet-rpc.ts";

/** The write fence of an unresolved change. */
export interface Fence {
  /** The Topology's token for the change; the tablet keeps the fence while the Topology names it. */
  readonly token: string;
  /** The schema entry the change adds (DDL); once applied here the fence has done its job. */
  readonly index: number | null;
}

class Rollback extends Error {
  readonly tables: TableInfo[];
  constructor(tables: TableInfo[]) {
    super("rollback");
    this.tables = tables;
  }
}

export function tableInfos(sql: SqlStorage): TableInfo[] {
  return listUserTables(sql).map((name) => {
    const indexes = sql
      .exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name", name)
      .toArray()
      .map((r) => r.sql);
    return {
      name,
      sql: sql.exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", name).one().sql,
      columns: sql
        .exec<{ name: string; type: string; pk: number; notnull: number }>('SELECT name, type, pk, "notnull" FROM pragma_table_info(?)', name)
        .toArray()
        .map((c) => ({ name: c.name, type: c.type, pk: c.pk, notNull: c.notnull === 1 })),
      ...(indexes.length > 0 ? { indexes } : {}),
    };
  });
}

/** User tables holding at least one row. */
export function nonEmptyTables(sql: SqlStorage): string[] {
  return listUserTables(sql).filter((t) => sql.exec<{ x: number }>(`SELECT EXISTS (SELECT 1 FROM ${quoteIdent(t)}) AS x`).one().x === 1);
}

/**
 * Runs one entry's statement with the binlog triggers rebuilt around it. Must run inside a
 * transaction. A virtual table is refused: its writes fire no triggers (so they would be missing
 * from the binlog), and its shadow tables would get triggers recording fts internals.
 */
function runEntry(sql: SqlStorage, entry: DdlEntry): void {
  // The binlog triggers name every column: drop them first (ALTER TABLE … DROP COLUMN refuses a
  // column a trigger uses), rebuild them after.
  dropTriggers(sql);
  try {
    sql.exec(entry.sql);
  } catch (e) {
    throw fromSqliteError(e);
  }
  const virtual = sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%' LIMIT 1").toArray()[0];
  if (virtual) {
    throw unsupportedError("VD2103", `virtual table ${virtual.name}: writes to a virtual table (fts5, rtree, …) cannot be recorded in the binlog`);
  }
  rebuildTriggers(sql);
}

/** Applies `entry` for good: statement, binlog event and schema index in one transaction. */
export function applyEntry(storage: DurableObjectStorage, entry: DdlEntry, setIndex: (index: number) => void): void {
  storage.transactionSync(() => {
    runEntry(storage.sql, entry);
    appendDdl(storage.sql, entry.sql);
    appendCommit(storage.sql);
    setIndex(entry.index);
  });
}

/** Tries `entry` and rolls it back: the tables as they would be after it, or the entry's error. */
export function tryEntry(storage: DurableObjectStorage, entry: DdlEntry): TableInfo[] {
  try {
    storage.transactionSync(() => {
      runEntry(storage.sql, entry);
      throw new Rollback(tableInfos(storage.sql));
    });
  } catch (e) {
    if (e instanceof Rollback) return e.tables;
    throw e;
  }
  throw new VtError("INTERNAL", "schema entry try did not roll back");
}

/** Applies the entries of `ddl` after `from`, in order; returns the new schema index. */
export function catchUp(storage: DurableObjectStorage, ddl: readonly DdlEntry[], from: number, setIndex: (index: number) => void): number {
  let index = from;
  for (const entry of [...ddl].sort((a, b) => a.index - b.index)) {
    if (entry.index <= index) continue;
    if (entry.index !== index + 1) throw new VtError("INTERNAL", `schema entry ${entry.index} arrived before ${index + 1}`);
    applyEntry(storage, entry, setIndex);
    index = entry.index;
  }
  return index;
}

/** Whether a fence still holds after a sync: the Topology still names it and its entry is not applied yet. */
export function fenceHolds(fence: Fence, keep: string | null, schemaIndex: number): boolean {
  return fence.token === keep && (fence.index === null || schemaIndex < fence.index);
}
