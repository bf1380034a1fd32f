// The tablet's own tables. User SQL never reaches a name starting with `_vt` (the gate
// refuses it); the triggers below are the only writers of _vt_binlog besides the tablet.

export const TABLET_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_meta (
  k TEXT PRIMARY KEY,      -- 'uid' (this tablet's position prefix), 'config' (JSON TabletConfig), 'schema_index' (last DDL entry applied), 'triggers' (binlog trigger version, binlog.ts TRIGGER_VERSION)
  v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _vt_binlog (
  seq INTEGER PRIMARY KEY, -- position sequence; grows by one per event, never reused
  kind TEXT NOT NULL,      -- 'insert' | 'update' | 'delete' | 'ddl' | 'commit'
  tbl TEXT,                -- table of a row event
  cols INTEGER,            -- _vt_binlog_cols.id: the column names the images are in
  before TEXT,             -- JSON array of SQLite quote() literals: the row before (update, delete)
  after TEXT,              -- same: the row after (insert, update); the statement text for ddl
  ts INTEGER               -- commit events: unix ms of the commit
);
CREATE TABLE IF NOT EXISTS _vt_binlog_cols (
  id INTEGER PRIMARY KEY,  -- referenced by _vt_binlog.cols
  tbl TEXT NOT NULL,
  names TEXT NOT NULL      -- JSON array of column names, in image order
);
`;
