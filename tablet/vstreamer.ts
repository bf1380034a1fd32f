// A tablet's side of VStream: one read of its binlog for a subscriber, through the streamer the
// resharding streams use (streamer.ts streamUnit), with every row of the shard in range: whole
// transactions after a position, and from "start" the consistent copy's next page at exactly
// the tail's head. The gate merges the shards' reads (gate/vstream.ts).

import { VtError } from "../contract/errors.ts";
import type { SqlValue } from "../contract/sql-values.ts";
import type { CopyCursor, RowChange, StreamFilter, StreamItem } from "../contract/stream-rpc.ts";
import type { TabletConfig } from "../contract/tablet-rpc.ts";
import type { CopyAt, ShardJournal, ShardRead, ShardReadRequest, ShardRowChange, ShardTransaction } from "../contract/vstream.ts";
import { unsupportedError } from "../topology/refusals.ts";
import { lastSeq, listUserTables } from "./binlog.ts";
import { checkRetained, setHold } from "./binlog-retention.ts";
import { primaryKey, sqlValueOf, streamUnit } from "./streamer.ts";

/** Bytes of row images one read hands out (a transaction is never split, so a bigger one comes whole). */
const READ_BYTES = 256 * 1024;

/** The user tables a subscriber asked for (all of them when `wanted` is null), by name order. */
function tablesOf(sql: SqlStorage, wanted: readonly string[] | null, skip: readonly string[]): string[] {
  const all = listUserTables(sql).filter((t) => !t.toLowerCase().startsWith("_vt") && !skip.includes(t.toLowerCase()));
  const picked = wanted === null ? all : all.filter((t) => wanted.includes(t.toLowerCase()));
  return picked.sort();
}

function exact(row: RowChange["after"]): SqlValue[] | null {
  return row === null ? null : row.map(sqlValueOf);
}

/**
 * One read for a subscriber standing at `req` on this tablet (`uid` names it): null when there is
 * nothing to hand out yet (the caller may wait for a commit and ask again).
 */
export function vstreamRead(sql: SqlStorage, uid: string, req: ShardReadRequest): ShardRead | null {
  if (req.uid !== null && req.uid !== uid) {
    throw new VtError(
      "INVALID_ARGUMENT",
      'vstream: the resume token is too old: it names a tablet that was retired since (a reshard completed, or the shard was remade); start again from "now" or "start"',
    );
  }
  if (req.hold !== undefined && (typeof req.hold !== "string" || req.hold === "" || req.hold.length > 512)) {
    throw new VtError("INVALID_ARGUMENT", "vstream: hold must be a non-empty reader id of at most 512 characters");
  }
  const head = lastSeq(sql);
  if (req.seq === -1) {
    if (req.hold !== undefined) setHold(sql, req.hold, head, Date.now());
    return { uid, transactions: [], seq: head };
  }
  if (!Number.isSafeInteger(req.seq) || req.seq < 0) throw new VtError("INVALID_ARGUMENT", `vstream: position ${String(req.seq)} is not a binlog sequence`);
  if (req.seq > head) {
    throw new VtError("INVALID_ARGUMENT", `vstream: the resume token's position ${uid}:${req.seq} is past this tablet's binlog head ${uid}:${head}`);
  }
  checkRetained(sql, uid, req.seq, "vstream", req.hold);
  if (req.hold !== undefined) setHold(sql, req.hold, req.seq, Date.now());
  const skip = req.skip ?? [];
  const tables = tablesOf(sql, req.tables, skip);
  const keys = new Map<string, string[]>();
  for (const t of tables) {
    const pk = primaryKey(sql, t) ?? [];
    if (pk.length === 0) {
      throw unsupportedError(
        "VD2800",
        `vstream of table ${t}: it has no PRIMARY KEY (events name each row by its key); declare one, or leave it out of "tables"`,
        {
          table: t,
        },
      );
    }
    keys.set(t.toLowerCase(), pk);
  }
  const filter: StreamFilter = { keyRange: "-", tables: tables.map((table) => ({ table, kind: "reference" as const })) };
  // The copy cursor by name, as the streamer counts it: an index into `tables`.
  let copy: CopyCursor | null = null;
  if (req.copy !== null) {
    const at = req.copy.table === "" ? 0 : tables.findIndex((t) => t.toLowerCase() === req.copy?.table.toLowerCase());
    // A table dropped since: the copy goes on with the next one by name.
    const next = at >= 0 ? at : tables.findIndex((t) => t.toLowerCase() > (req.copy?.table.toLowerCase() ?? ""));
    copy = next < 0 || tables.length === 0 ? null : { table: next, after: at >= 0 ? req.copy.after : null };
  }
  if (req.copy !== null && copy === null) {
    // Nothing (more) to copy: the position simply leaves the copy.
    return { uid, transactions: [], copy: { rows: [], to: null, seq: req.seq }, seq: req.seq };
  }
  const unit = streamUnit(sql, uid, filter, { seq: req.seq, copy }, { maxBytes: READ_BYTES });
  const journal = journalIn(sql, req.seq, unit.to.seq, req.tables, skip);
  const change = (c: StreamItem): ShardRowChange | { ddl: string } => {
    if ("ddl" in c) return { ddl: c.ddl };
    return { table: c.table, columns: c.columns, pk: keys.get(c.table.toLowerCase()) ?? [], before: exact(c.before), after: exact(c.after) };
  };
  const transactions: ShardTransaction[] = [];
  let start = 0;
  for (const t of unit.commits ?? []) {
    transactions.push({ seq: t.seq, ts: t.ts, changes: unit.items.slice(start, t.end).map(change) });
    start = t.end;
  }
  if (journal) {
    // Nothing past the journal is handed out (after a reverse, this shard takes writes again; the
    // reader meets them through the journal back). The position stays before it.
    const before = transactions.filter((t) => t.seq < journal.seq && t.changes.length > 0);
    return { uid, transactions: before, seq: journal.seq - 1, journal: journal.body, journalSeq: journal.commit };
  }
  const copied =
    req.copy === null
      ? undefined
      : {
          rows: unit.rows.map((r) => change(r) as ShardRowChange),
          to: toCopyAt(unit.to.copy, tables),
          seq: unit.to.seq,
        };
  // Transactions that touched none of the tables still move the position (and are not handed out).
  const shown = transactions.filter((t) => t.changes.length > 0);
  const moved = unit.to.seq !== req.seq || (copied !== undefined && (copied.rows.length > 0 || copied.to === null));
  if (shown.length === 0 && !moved) return null;
  return { uid, transactions: shown, ...(copied ? { copy: copied } : {}), seq: unit.to.seq };
}

/** The arrival marker (ShardJournal.arrival) a tablet writes for one of its config's arrivals. */
export function arrivalMarker(config: TabletConfig, a: NonNullable<TabletConfig["arrivals"]>[number]): ShardJournal {
  return { workflow: a.workflow, keyspace: config.keyspace, tables: [...a.tables], sources: [], targets: [], arrival: true, sourceKeyspace: a.sourceKeyspace };
}

/** The rejoin marker (ShardJournal.rejoin) a tablet writes for one of its config's rejoins. */
export function rejoinMarker(config: TabletConfig, r: NonNullable<TabletConfig["rejoins"]>[number]): ShardJournal {
  return { workflow: r.workflow, keyspace: config.keyspace, tables: [...r.tables], sources: [], targets: [], rejoin: true };
}

/**
 * The first journal in (from, to] that moves writes of the tables a reader asked for (`tables`
 * null: all of them): a Reshard's moves every table, a MoveTables' those it names; or a rejoin
 * marker of tables the reader skips; or an arrival marker of tables it does not read here.
 */
function journalIn(
  sql: SqlStorage,
  from: number,
  to: number,
  tables: readonly string[] | null,
  skip: readonly string[],
): { seq: number; commit: number; body: ShardJournal } | null {
  if (to <= from) return null;
  const rows = sql
    .exec<{ seq: number; after: string }>("SELECT seq, after FROM _vt_binlog WHERE seq > ? AND seq <= ? AND kind = 'journal' ORDER BY seq", from, to)
    .toArray();
  const reads = (t: string) => !skip.includes(t.toLowerCase()) && (tables === null || tables.includes(t.toLowerCase()));
  for (const r of rows) {
    const body = JSON.parse(r.after) as ShardJournal;
    // A rejoin marker stops only a reader that skips the tables coming back (it reads them
    // elsewhere); an arrival marker only one that does not read the arriving tables here (it may
    // read them elsewhere: the gate decides).
    if (body.rejoin === true) {
      if (!(body.tables ?? []).some((t) => skip.includes(t.toLowerCase()))) continue;
    } else if (body.arrival === true) {
      if ((body.tables ?? []).some(reads)) continue;
    } else if (body.tables !== null && !body.tables.some(reads)) continue;
    // appendJournal writes the journal and its commit as one transaction of two events.
    const commit = sql.exec<{ s: number | null }>("SELECT min(seq) AS s FROM _vt_binlog WHERE seq > ? AND kind = 'commit'", r.seq).one().s ?? r.seq + 1;
    return { seq: r.seq, commit, body };
  }
  return null;
}

function toCopyAt(c: CopyCursor | null, tables: readonly string[]): CopyAt | null {
  if (c === null) return null;
  return { table: tables[c.table] ?? "", after: c.after };
}
