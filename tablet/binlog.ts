// The binlog: every committed change to a user table, written by AFTER triggers into
// _vt_binlog in the same SQLite transaction as the change, and closed by one 'commit' event per
// write transaction. A position `<uid>:<seq>` always names a commit event (or 0), so a reader
// that stops at a position has seen whole transactions only.
//
// Row images are JSON arrays of SQLite quote() literals: quote() keeps int64 exact, round-trips
// every REAL (17 significant digits) and encodes BLOBs as X'..' (json_* refuses BLOBs).

import { VtError } from "../contract/errors.ts";
import { decodeQuoted, quoteIdent, type SqlValue } from "../contract/sql-values.ts";
import { MAX_VALUE_BYTES, VALUE_TOO_BIG } from "../topology/value-limits.ts";
import type { BinlogChunk, BinlogEvent, BinlogEventKind } from "../contract/tablet-rpc.ts";

export { quoteIdent };

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * Data tables: the user's, and the gate's system lookup tables (`_vtl_…`: data kept in step with
 * user rows, so they have a binlog too); not our own `_vt_…` tables, SQLite's, Cloudflare's,
 * miniflare's, or virtual tables.
 */
export function listUserTables(sql: SqlStorage): string[] {
  const rows = sql
    .exec<{ name: string; sql: string | null }>(
      `SELECT name, sql FROM sqlite_master WHERE type = 'table'
         AND (name NOT LIKE '\\_vt%' ESCAPE '\\' OR name LIKE '\\_vtl\\_%' ESCAPE '\\') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name <> '__miniflare_do_name'
       ORDER BY name`,
    )
    .toArray();
  return rows.filter((r) => !/^\s*CREATE\s+VIRTUAL/i.test(r.sql ?? "")).map((r) => r.name);
}

/** Columns that hold stored data, in table order (hidden virtual-table columns excluded). */
export function imageColumns(sql: SqlStorage, table: string): string[] {
  return sql
    .exec<{ name: string; hidden: number }>("SELECT name, hidden FROM pragma_table_xinfo(?)", table)
    .toArray()
    .filter((c) => c.hidden === 0 || c.hidden === 3)
    .map((c) => c.name);
}

function imageExpr(ref: "NEW" | "OLD", cols: readonly string[]): string {
  if (cols.length === 0) return "'[]'";
  const parts = cols.map((c) => `json_quote(quote(${ref}.${quoteIdent(c)}))`);
  return `'[' || ${parts.join(" || ',' || ")} || ']'`;
}

/**
 * The first statement of the INSERT and UPDATE triggers: aborts the statement (and so, in
 * execute's transactionSync, the whole transaction) when a value just written is over
 * MAX_VALUE_BYTES, whichever way SQL computed it. octet_length() reads a TEXT's or BLOB's
 * stored size without scanning it; the CASE stops at the first column over the limit.
 */
function sizeCheck(table: string, cols: readonly string[]): string {
  if (cols.length === 0) return "";
  const arms = cols.map(
    (c) =>
      `WHEN octet_length(NEW.${quoteIdent(c)}) > ${MAX_VALUE_BYTES} THEN RAISE(ABORT, ${sqlString(`${VALUE_TOO_BIG}: column ${quoteIdent(c)} of table ${quoteIdent(table)}`)})`,
  );
  return `SELECT CASE ${arms.join(" ")} END;`;
}

/**
 * Drops and re-creates the binlog triggers of every user table. Runs inside the DDL's own
 * transaction, so no change can ever be made under a stale column list.
 */
export function dropTriggers(sql: SqlStorage): void {
  const existing = sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_vt\\_bl\\_%' ESCAPE '\\'").toArray();
  for (const t of existing) sql.exec(`DROP TRIGGER IF EXISTS ${quoteIdent(t.name)}`);
}

/** The triggers' condition: the binlog is not muted (see muteBinlog). */
const UNMUTED = "WHEN NOT EXISTS (SELECT 1 FROM _vt_binlog_mute)";

/**
 * Runs `fn` with the binlog triggers silenced; call inside a transaction, which `fn`'s throw
 * rolls back together with the mute. For changes that are not this tablet's own: the rows a
 * stream applies are the source's transactions, already in the source's binlog.
 */
export function muteBinlog<T>(sql: SqlStorage, fn: () => T): T {
  sql.exec("INSERT INTO _vt_binlog_mute (x) VALUES (1)");
  const out = fn();
  sql.exec("DELETE FROM _vt_binlog_mute");
  return out;
}

export function rebuildTriggers(sql: SqlStorage): void {
  dropTriggers(sql);
  for (const table of listUserTables(sql)) {
    const cols = imageColumns(sql, table);
    const colsId = sql.exec<{ id: number }>("INSERT INTO _vt_binlog_cols (tbl, names) VALUES (?, ?) RETURNING id", table, JSON.stringify(cols)).one().id;
    const t = quoteIdent(table);
    const name = sqlString(table);
    const check = sizeCheck(table, cols);
    sql.exec(
      `CREATE TRIGGER ${quoteIdent(`_vt_bl_i_${table}`)} AFTER INSERT ON ${t} ${UNMUTED} BEGIN
         ${check}
         INSERT INTO _vt_binlog (kind, tbl, cols, after) VALUES ('insert', ${name}, ${colsId}, ${imageExpr("NEW", cols)});
       END`,
    );
    sql.exec(
      `CREATE TRIGGER ${quoteIdent(`_vt_bl_u_${table}`)} AFTER UPDATE ON ${t} ${UNMUTED} BEGIN
         ${check}
         INSERT INTO _vt_binlog (kind, tbl, cols, before, after) VALUES ('update', ${name}, ${colsId}, ${imageExpr("OLD", cols)}, ${imageExpr("NEW", cols)});
       END`,
    );
    sql.exec(
      `CREATE TRIGGER ${quoteIdent(`_vt_bl_d_${table}`)} AFTER DELETE ON ${t} ${UNMUTED} BEGIN
         INSERT INTO _vt_binlog (kind, tbl, cols, before) VALUES ('delete', ${name}, ${colsId}, ${imageExpr("OLD", cols)});
       END`,
    );
  }
}

/**
 * The version of what rebuildTriggers writes (2: the value-size check; 3: silent while muted). A tablet records it in
 * _vt_meta 'triggers'; one started with an older record (triggers written by older code) rebuilds
 * them before serving, so every table has the current checks without waiting for a DDL.
 */
export const TRIGGER_VERSION = "3";

/** Rebuilds the triggers when `stored` is not TRIGGER_VERSION; call inside a transaction. */
export function upgradeTriggers(sql: SqlStorage, stored: string | undefined): void {
  if (stored === TRIGGER_VERSION) return;
  rebuildTriggers(sql);
  sql.exec("INSERT INTO _vt_meta (k, v) VALUES ('triggers', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", TRIGGER_VERSION);
}

export function lastSeq(sql: SqlStorage): number {
  return sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM _vt_binlog").one().s ?? 0;
}

export function appendDdl(sql: SqlStorage, statement: string): void {
  sql.exec("INSERT INTO _vt_binlog (kind, after) VALUES ('ddl', ?)", statement);
}

/**
 * Writes `journal` (JSON) as a transaction of its own, once per `id`: a repeat (a switch's step
 * retried) answers the first one's commit seq and writes nothing. Call inside a transaction.
 */
export function appendJournal(sql: SqlStorage, id: string, journal: string): number {
  const key = `journal:${id}`;
  const had = sql.exec<{ v: string }>("SELECT v FROM _vt_meta WHERE k = ?", key).toArray()[0];
  if (had) return Number(had.v);
  sql.exec("INSERT INTO _vt_binlog (kind, after) VALUES ('journal', ?)", journal);
  const seq = appendCommit(sql);
  sql.exec("INSERT INTO _vt_meta (k, v) VALUES (?, ?)", key, String(seq));
  return seq;
}

/** The commit seq of the journal appendJournal wrote under `id`, or null. */
export function journalSeqOf(sql: SqlStorage, id: string): number | null {
  const had = sql.exec<{ v: string }>("SELECT v FROM _vt_meta WHERE k = ?", `journal:${id}`).toArray()[0];
  return had ? Number(had.v) : null;
}

export function appendCommit(sql: SqlStorage): number {
  return sql.exec<{ seq: number }>("INSERT INTO _vt_binlog (kind, ts) VALUES ('commit', ?) RETURNING seq", Date.now()).one().seq;
}

export function formatPosition(uid: string, seq: number): string {
  return `${uid}:${seq}`;
}

/** Parses a position of this tablet; a position of another tablet is INVALID_ARGUMENT. */
export function parsePosition(uid: string, position: string): number {
  const m = /^([0-9a-f]+):(\d+)$/.exec(position);
  if (!m) throw new VtError("INVALID_ARGUMENT", `malformed binlog position "${position}" (want <tablet uid>:<seq>)`);
  if (m[1] !== uid) {
    throw new VtError("INVALID_ARGUMENT", `position "${position}" belongs to tablet ${m[1]}, not ${uid}`);
  }
  return Number(m[2]);
}

function decodeImage(text: string | null): SqlValue[] | null {
  if (text === null) return null;
  return (JSON.parse(text) as string[]).map(decodeQuoted);
}

type Row = {
  seq: number;
  kind: string;
  tbl: string | null;
  names: string | null;
  before: string | null;
  after: string | null;
  ts: number | null;
};

const SELECT_EVENTS = `SELECT b.seq, b.kind, b.tbl, c.names, b.before, b.after, b.ts
  FROM _vt_binlog b LEFT JOIN _vt_binlog_cols c ON c.id = b.cols`;

function toEvent(r: Row): BinlogEvent {
  const kind = r.kind as BinlogEventKind;
  return {
    seq: r.seq,
    kind,
    table: r.tbl,
    columns: r.names === null ? null : (JSON.parse(r.names) as string[]),
    before: decodeImage(r.before),
    after: kind === "ddl" || kind === "journal" ? null : decodeImage(r.after),
    sql: kind === "ddl" || kind === "journal" ? r.after : null,
    ts: r.ts,
  };
}

/**
 * Events after `fromSeq`, at most about `limit` of them but always ending on a commit, so a
 * transaction is never split across chunks.
 */
export function readBinlog(sql: SqlStorage, uid: string, fromSeq: number, limit: number): BinlogChunk {
  const rows = sql.exec<Row>(`${SELECT_EVENTS} WHERE b.seq > ? ORDER BY b.seq LIMIT ?`, fromSeq, limit + 1).toArray();
  let more = rows.length > limit;
  if (more) rows.pop();
  const last = rows.at(-1);
  if (last && last.kind !== "commit") {
    const end = sql.exec<{ seq: number }>("SELECT seq FROM _vt_binlog WHERE seq > ? AND kind = 'commit' ORDER BY seq LIMIT 1", last.seq).toArray()[0];
    if (end) {
      rows.push(...sql.exec<Row>(`${SELECT_EVENTS} WHERE b.seq > ? AND b.seq <= ? ORDER BY b.seq`, last.seq, end.seq).toArray());
      more = sql.exec<{ n: number }>("SELECT count(*) AS n FROM (SELECT 1 FROM _vt_binlog WHERE seq > ? LIMIT 1)", end.seq).one().n > 0;
    } else {
      // Only reachable mid-transaction, which a reader never observes; drop the open tail.
      while (rows.length > 0 && rows.at(-1)?.kind !== "commit") rows.pop();
    }
  }
  const events = rows.map(toEvent);
  const endSeq = events.at(-1)?.seq ?? fromSeq;
  return { events, position: formatPosition(uid, endSeq), more };
}
