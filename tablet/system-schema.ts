// The tablet's own tables. User SQL never reaches a name starting with `_vt` (the gate
// refuses it); the triggers below are the only writers of _vt_binlog besides the tablet.

export const TABLET_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_meta (
  k TEXT PRIMARY KEY,      -- 'uid' (this tablet's position prefix), 'config' (JSON TabletConfig), 'schema_index' (last DDL entry applied), 'triggers' (binlog trigger version, binlog.ts TRIGGER_VERSION), 'journal:<id>' (commit seq of a journal written), 'purged' (binlog retention's floor: the highest seq deleted), 'purge_due' (unix ms the alarm's next purge is due, retention-alarm.ts)
  v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _vt_binlog (
  seq INTEGER PRIMARY KEY, -- position sequence; grows by one per event, never reused
  kind TEXT NOT NULL,      -- 'insert' | 'update' | 'delete' | 'ddl' | 'journal' | 'commit'
  tbl TEXT,                -- table of a row event
  cols INTEGER,            -- _vt_binlog_cols.id: the column names the images are in
  before TEXT,             -- JSON array of SQLite quote() literals: the row before (update, delete)
  after TEXT,              -- same: the row after (insert, update); the statement text for ddl; JSON ShardJournal for journal
  ts INTEGER               -- commit events: unix ms of the commit
);
-- Journals alone (a switch's, see binlog.ts appendJournal): a VStream read finds them without a scan.
CREATE INDEX IF NOT EXISTS _vt_binlog_journals ON _vt_binlog (seq) WHERE kind = 'journal';
-- While it holds a row, the binlog triggers write nothing (binlog.ts rebuildTriggers): a stream's
-- apply sets it inside its own transaction (stream-target.ts applyUnit), so rows that arrive by
-- VReplication are not logged again as this tablet's changes. Empty at every commit.
CREATE TABLE IF NOT EXISTS _vt_binlog_mute (
  x INTEGER PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS _vt_binlog_cols (
  id INTEGER PRIMARY KEY,  -- referenced by _vt_binlog.cols
  tbl TEXT NOT NULL,
  names TEXT NOT NULL      -- JSON array of column names, in image order
);
-- Binlog retention (binlog-retention.ts): readers the purge must not cut off, and those it did.
CREATE TABLE IF NOT EXISTS _vt_binlog_holds (
  id TEXT PRIMARY KEY,     -- the reader: '<workflow>/<source shard>' of a stream, or a subscriber's id
  seq INTEGER NOT NULL,    -- the purge never deletes a seq above this one
  updated_at INTEGER NOT NULL -- unix ms of the last advance; one not advanced for 7 days (or the window, when longer) is released
);
CREATE TABLE IF NOT EXISTS _vt_binlog_cutoffs (
  id TEXT PRIMARY KEY,     -- a reader whose hold was released
  seq INTEGER NOT NULL,    -- where it stood
  at INTEGER NOT NULL      -- unix ms of the release
);
`;

/** Streams this tablet is the target of (tablet/stream-target.ts), and parts of a unit still arriving. */
export const STREAM_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_vreplication (
  id TEXT PRIMARY KEY,     -- '<workflow>/<source shard>'
  spec TEXT NOT NULL,      -- JSON StreamSpec (contract/stream-rpc.ts)
  phase TEXT NOT NULL,     -- 'copy' | 'running' | 'stopped' | 'error'
  pos TEXT NOT NULL,       -- JSON StreamPos: where the applied units have brought the stream
  epoch INTEGER NOT NULL,  -- the pump's current chain of parts; parts of older chains are dropped
  step INTEGER NOT NULL,   -- the next part expected in this chain
  base_step INTEGER NOT NULL, -- the step at pos (the last unit boundary)
  unit TEXT,               -- id of the unit whose parts are arriving, or NULL
  rows_copied INTEGER NOT NULL,
  lag_ms INTEGER NOT NULL,
  message TEXT,            -- why it stopped or failed
  updated_at INTEGER NOT NULL,
  copied_at INTEGER        -- unix ms the copy phase ended; NULL while copying or for a stream that copies nothing
);
CREATE TABLE IF NOT EXISTS _vt_vrepl_parts (
  stream TEXT NOT NULL,
  part INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (stream, part)
);
`;

/** Brings a _vt_vreplication made by older code up to STREAM_SCHEMA (columns added since). */
export function upgradeStreamSchema(sql: SqlStorage): void {
  const cols = sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('_vt_vreplication')").toArray();
  if (!cols.some((c) => c.name === "copied_at")) sql.exec("ALTER TABLE _vt_vreplication ADD COLUMN copied_at INTEGER");
}
