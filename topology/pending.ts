// The Topology's record of a schema or vschema change that is not resolved yet: at most one per
// keyspace. It is written before any tablet is asked anything, so a Topology that stops at any
// point finds it again (on its next change to the keyspace, or from its alarm) and finishes it:
// an undecided change is aborted (no trace), a decided one is applied on every shard.

export const PENDING_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_topo_pending (
  keyspace TEXT PRIMARY KEY,      -- at most one unresolved change per keyspace
  token TEXT NOT NULL,            -- the write fence the keyspace's tablets hold for it
  kind TEXT NOT NULL,             -- 'ddl' | 'vschema'
  phase TEXT NOT NULL,            -- 'prepare': undecided (recovery aborts it); 'apply': decided, shards are brought to idx; 'release': fences are dropped
  idx INTEGER,                    -- ddl: the schema entry it adds
  request TEXT                    -- ddl: the gate's request id
);
CREATE TABLE IF NOT EXISTS _vt_topo_ddl_requests (
  keyspace TEXT NOT NULL,
  id TEXT NOT NULL,               -- the gate's request id of a DDL that was decided (is in the history)
  idx INTEGER NOT NULL,           -- its schema entry
  at INTEGER NOT NULL DEFAULT 0,  -- when it was decided (ms since the epoch); pruned after DDL_REQUEST_TTL_MS
  PRIMARY KEY (keyspace, id)
);
`;

/**
 * How long a decided DDL's request id is remembered: a gate retries within its request deadline
 * (seconds), so a day is far more than any retry needs. At most DDL_REQUESTS_KEPT ids are kept
 * in all, the newest.
 */
export const DDL_REQUEST_TTL_MS = 24 * 60 * 60 * 1000;
export const DDL_REQUESTS_KEPT = 10_000;

export type Phase = "prepare" | "apply" | "release";

export interface Pending {
  readonly keyspace: string;
  readonly token: string;
  readonly kind: "ddl" | "vschema";
  readonly phase: Phase;
  readonly index: number | null;
  readonly request: string | null;
}

type Row = { keyspace: string; token: string; kind: string; phase: string; idx: number | null; request: string | null };

function toPending(r: Row): Pending {
  return {
    keyspace: r.keyspace,
    token: r.token,
    kind: r.kind === "vschema" ? "vschema" : "ddl",
    phase: r.phase === "apply" ? "apply" : r.phase === "release" ? "release" : "prepare",
    index: r.idx,
    request: r.request,
  };
}

export class PendingChanges {
  readonly #sql: SqlStorage;
  readonly #kept: number;

  constructor(sql: SqlStorage, kept: number = DDL_REQUESTS_KEPT) {
    this.#sql = sql;
    this.#kept = kept;
    sql.exec(PENDING_SCHEMA);
    // Tables written before request ids had a time: their ids count as old.
    const columns = sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('_vt_topo_ddl_requests')").toArray();
    if (!columns.some((c) => c.name === "at")) sql.exec("ALTER TABLE _vt_topo_ddl_requests ADD COLUMN at INTEGER NOT NULL DEFAULT 0");
  }

  get(keyspace: string): Pending | undefined {
    const row = this.#sql.exec<Row>("SELECT * FROM _vt_topo_pending WHERE keyspace = ?", keyspace).toArray()[0];
    return row ? toPending(row) : undefined;
  }

  keyspaces(): string[] {
    return this.#sql
      .exec<{ keyspace: string }>("SELECT keyspace FROM _vt_topo_pending ORDER BY keyspace")
      .toArray()
      .map((r) => r.keyspace);
  }

  insert(p: Pending): void {
    this.#sql.exec(
      "INSERT INTO _vt_topo_pending (keyspace, token, kind, phase, idx, request) VALUES (?, ?, ?, ?, ?, ?)",
      p.keyspace,
      p.token,
      p.kind,
      p.phase,
      p.index,
      p.request,
    );
  }

  setPhase(keyspace: string, phase: Phase): void {
    this.#sql.exec("UPDATE _vt_topo_pending SET phase = ? WHERE keyspace = ?", phase, keyspace);
  }

  delete(keyspace: string): void {
    this.#sql.exec("DELETE FROM _vt_topo_pending WHERE keyspace = ?", keyspace);
  }

  /** The token tablets must keep fencing for: that of a change not yet released. */
  keep(keyspace: string): string | null {
    const p = this.get(keyspace);
    return p && p.phase !== "release" ? p.token : null;
  }

  /** Remembers a decided DDL's request id, forgetting those older than DDL_REQUEST_TTL_MS and beyond DDL_REQUESTS_KEPT. */
  recordRequest(keyspace: string, id: string, index: number, now: number = Date.now()): void {
    this.#sql.exec("DELETE FROM _vt_topo_ddl_requests WHERE at < ?", now - DDL_REQUEST_TTL_MS);
    this.#sql.exec("INSERT OR IGNORE INTO _vt_topo_ddl_requests (keyspace, id, idx, at) VALUES (?, ?, ?, ?)", keyspace, id, index, now);
    this.#sql.exec(
      "DELETE FROM _vt_topo_ddl_requests WHERE rowid IN (SELECT rowid FROM _vt_topo_ddl_requests ORDER BY at DESC, rowid DESC LIMIT -1 OFFSET ?)",
      this.#kept,
    );
  }

  /** Whether a DDL request with this id was decided (so a retried request answers its outcome). */
  decided(keyspace: string, id: string): boolean {
    return this.#sql.exec("SELECT 1 FROM _vt_topo_ddl_requests WHERE keyspace = ? AND id = ?", keyspace, id).toArray().length > 0;
  }
}
