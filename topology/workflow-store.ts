// The Topology's workflow records (contract/workflow-record.ts) and every read and write of
// them. Callers run writes that belong together (a record and the shard set it changes) inside
// one storage transaction.

import type { ShardGraph } from "../contract/serving-graph.ts";
import type { OnDdl } from "../contract/stream-rpc.ts";
import { isOpen, type ReadSide, type WorkflowKind, type WorkflowRecord, type WorkflowShard, type WorkflowState } from "../contract/workflow-record.ts";

export const WORKFLOW_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_topo_workflows (
  keyspace TEXT NOT NULL,
  name TEXT NOT NULL,             -- unique among the keyspace's workflows (a closed one's name may be used again)
  kind TEXT NOT NULL,             -- 'reshard' | 'movetables'
  state TEXT NOT NULL,            -- 'created' | 'running' | 'switched' | 'completed' | 'cancelled'
  sources TEXT NOT NULL,          -- JSON WorkflowShard[] in key order
  targets TEXT NOT NULL,          -- JSON WorkflowShard[] in key order (tablets of a fresh generation)
  on_ddl TEXT NOT NULL,           -- 'ignore' | 'stop' | 'exec'
  auto_switch INTEGER NOT NULL,   -- 1: switch once caught up and VDiff matched
  progress TEXT,                  -- JSON the workflow last reported (setWorkflowProgress), or NULL
  created_at INTEGER NOT NULL,    -- unix ms
  updated_at INTEGER NOT NULL,
  switched_at INTEGER,            -- when writes last moved to the targets, or NULL
  PRIMARY KEY (keyspace, name)
);
CREATE TABLE IF NOT EXISTS _vt_topo_denied_tables (
  keyspace TEXT NOT NULL,
  tbl TEXT NOT NULL,              -- lower-cased: the keyspace's tablets refuse writes to it (MoveTables)
  workflow TEXT NOT NULL,         -- the MoveTables workflow (its keyspace is the target's)
  PRIMARY KEY (keyspace, tbl)
);
`;

type Row = {
  keyspace: string;
  name: string;
  kind: string;
  state: string;
  sources: string;
  targets: string;
  on_ddl: string;
  auto_switch: number;
  progress: string | null;
  created_at: number;
  updated_at: number;
  switched_at: number | null;
  source_keyspace: string | null;
  tables: string | null;
  reads?: string | null;
};

function toRecord(r: Row): WorkflowRecord {
  return {
    keyspace: r.keyspace,
    name: r.name,
    kind: r.kind as WorkflowKind,
    state: r.state as WorkflowState,
    sources: JSON.parse(r.sources) as WorkflowShard[],
    targets: JSON.parse(r.targets) as WorkflowShard[],
    onDdl: r.on_ddl as OnDdl,
    autoSwitch: r.auto_switch === 1,
    progress: r.progress === null ? null : (JSON.parse(r.progress) as unknown),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    switchedAt: r.switched_at,
    ...(r.source_keyspace !== null ? { sourceKeyspace: r.source_keyspace } : {}),
    ...(r.tables !== null ? { tables: JSON.parse(r.tables) as string[] } : {}),
    ...(r.reads === "sources" || r.reads === "targets" ? { reads: r.reads } : {}),
  };
}

/** A workflow's shards as graph shards. */
export function asShards(shards: readonly WorkflowShard[], serving: boolean): ShardGraph[] {
  return shards.map((s) => ({ name: s.shard, keyRange: s.keyRange, serving, tablet: s.tablet }));
}

export class WorkflowStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    this.#sql.exec(WORKFLOW_SCHEMA);
    const columns = new Set(
      this.#sql
        .exec<{ name: string }>("SELECT name FROM pragma_table_info('_vt_topo_workflows')")
        .toArray()
        .map((c) => c.name),
    );
    // MoveTables: the keyspace the tables move from, and the JSON list of tables (NULL for a Reshard).
    if (!columns.has("source_keyspace")) this.#sql.exec("ALTER TABLE _vt_topo_workflows ADD COLUMN source_keyspace TEXT");
    if (!columns.has("tables")) this.#sql.exec("ALTER TABLE _vt_topo_workflows ADD COLUMN tables TEXT");
    // Reshard: 'sources' | 'targets' while reads are served by the side that does not serve writes; NULL: reads follow writes.
    if (!columns.has("reads")) this.#sql.exec("ALTER TABLE _vt_topo_workflows ADD COLUMN reads TEXT");
  }

  /** The tables the keyspace's tablets refuse writes to (lower-cased). */
  deniedTables(keyspace: string): string[] {
    return this.#sql
      .exec<{ tbl: string }>("SELECT tbl FROM _vt_topo_denied_tables WHERE keyspace = ? ORDER BY tbl", keyspace)
      .toArray()
      .map((r) => r.tbl);
  }

  /** Makes the keyspace's tablets refuse writes to `tables` for `workflow`, or take them again. */
  setDeniedTables(keyspace: string, tables: readonly string[], workflow: string, deny: boolean): void {
    for (const t of tables) {
      if (deny) this.#sql.exec("INSERT OR REPLACE INTO _vt_topo_denied_tables (keyspace, tbl, workflow) VALUES (?, ?, ?)", keyspace, t.toLowerCase(), workflow);
      else this.#sql.exec("DELETE FROM _vt_topo_denied_tables WHERE keyspace = ? AND tbl = ?", keyspace, t.toLowerCase());
    }
  }

  get(keyspace: string, name: string): WorkflowRecord | undefined {
    const row = this.#sql.exec<Row>("SELECT * FROM _vt_topo_workflows WHERE keyspace = ? AND name = ?", keyspace, name).toArray()[0];
    return row ? toRecord(row) : undefined;
  }

  /** Every workflow, by keyspace and creation. */
  list(): WorkflowRecord[] {
    return this.#sql.exec<Row>("SELECT * FROM _vt_topo_workflows ORDER BY keyspace, created_at, name").toArray().map(toRecord);
  }

  /** The keyspace's workflows that still hold shards (and the MoveTables moving tables out of it). */
  open(keyspace: string): WorkflowRecord[] {
    return this.#sql
      .exec<Row>("SELECT * FROM _vt_topo_workflows WHERE keyspace = ? OR source_keyspace = ? ORDER BY created_at, name", keyspace, keyspace)
      .toArray()
      .map(toRecord)
      .filter(isOpen);
  }

  /**
   * The tablets of the keyspace's open workflows that do not serve but must keep its schema:
   * the targets before the switch, the sources after it (a reverse needs them).
   */
  standby(keyspace: string): ShardGraph[] {
    // A MoveTables' shards are serving shards of their keyspaces: none stands by.
    return this.open(keyspace)
      .filter((w) => w.kind !== "movetables")
      .flatMap((w) => asShards(w.state === "switched" ? w.sources : w.targets, false));
  }

  /** Writes a record, replacing any of the same keyspace and name. */
  put(w: WorkflowRecord): void {
    this.#sql.exec(
      `INSERT OR REPLACE INTO _vt_topo_workflows (keyspace, name, kind, state, sources, targets, on_ddl, auto_switch, progress, created_at, updated_at, switched_at, source_keyspace, tables, reads)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      w.keyspace,
      w.name,
      w.kind,
      w.state,
      JSON.stringify(w.sources),
      JSON.stringify(w.targets),
      w.onDdl,
      w.autoSwitch ? 1 : 0,
      w.progress === null ? null : JSON.stringify(w.progress),
      w.createdAt,
      w.updatedAt,
      w.switchedAt,
      w.sourceKeyspace ?? null,
      w.tables === undefined ? null : JSON.stringify(w.tables),
      w.reads ?? null,
    );
  }

  setState(keyspace: string, name: string, state: WorkflowState, now: number, switchedAt?: number): void {
    this.#sql.exec(
      "UPDATE _vt_topo_workflows SET state = ?, updated_at = ?, switched_at = coalesce(?, switched_at) WHERE keyspace = ? AND name = ?",
      state,
      now,
      switchedAt ?? null,
      keyspace,
      name,
    );
  }

  /** Where the Reshard's reads go (null: where its writes go). */
  setReads(keyspace: string, name: string, reads: ReadSide | null, now: number): void {
    this.#sql.exec("UPDATE _vt_topo_workflows SET reads = ?, updated_at = ? WHERE keyspace = ? AND name = ?", reads, now, keyspace, name);
  }

  /** Stores the workflow's progress report (JSON text). */
  setProgress(keyspace: string, name: string, json: string, now: number): void {
    this.#sql.exec("UPDATE _vt_topo_workflows SET progress = ?, updated_at = ? WHERE keyspace = ? AND name = ?", json, now, keyspace, name);
  }
}
