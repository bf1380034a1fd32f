// Binlog retention: whole transactions are deleted from the oldest end of _vt_binlog once they
// are older than the time window or while the binlog is over its size budget, never past the
// smallest hold a reader keeps. `_vt_meta 'purged'` records the floor (the highest seq deleted, a
// commit's); a read from below it is refused as too old, never answered with a gap.

import { VtError } from "../contract/errors.ts";
import { checkPolicy, holdAgeSeconds, type RetentionPolicy } from "../contract/binlog-retention.ts";

export { checkPolicy, DEFAULT_RETENTION, streamHoldId, type RetentionPolicy } from "../contract/binlog-retention.ts";

/** Whether `e` is checkRetained's refusal (a read below the floor, or by a reader cut off). */
export function isRetentionRefusal(e: unknown): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === "INVALID_ARGUMENT" && e.message.includes("(binlog retention)");
}

/** Rows one purge deletes at most (one transaction bigger than this still goes whole). */
export const PURGE_ROWS = 5000;

/** The highest seq purged (0: nothing yet). */
export function binlogFloor(sql: SqlStorage): number {
  const r = sql.exec<{ v: string }>("SELECT v FROM _vt_meta WHERE k = 'purged'").toArray()[0];
  return r ? Number(r.v) : 0;
}

/**
 * Refuses a read from `seq` below the floor (INVALID_ARGUMENT), and a read by a reader whose
 * hold was released (`hold`): that reader's next read names it, never a silent gap.
 */
export function checkRetained(sql: SqlStorage, uid: string, seq: number, what: string, hold?: string): void {
  const floor = binlogFloor(sql);
  if (seq >= floor) return;
  const cut = hold === undefined ? undefined : sql.exec<{ seq: number; at: number }>("SELECT seq, at FROM _vt_binlog_cutoffs WHERE id = ?", hold).toArray()[0];
  if (cut) {
    throw new VtError(
      "INVALID_ARGUMENT",
      `${what}: stream ${hold} was cut off by binlog retention at ${uid}:${cut.seq} (${new Date(cut.at).toISOString()}): its hold was not advanced for 7 days or the time window, whichever is longer (binlog retention); start again from "now" or "start"`,
    );
  }
  throw new VtError(
    "INVALID_ARGUMENT",
    `${what}: the position ${uid}:${seq} is too old: the binlog of this tablet is kept from position ${uid}:${floor} (binlog retention); start again from "now" or "start"`,
  );
}

/**
 * How often a reader moving forward writes its hold: a hold behind the reader keeps more binlog,
 * never less, and a read that writes nothing is not held back until the write is durable (a
 * Durable Object answers after its writes are), which cost a stream's copy ~15% of its rate.
 */
export const HOLD_REFRESH_MS = 10_000;

/**
 * Records the hold `id` at `seq`, after a read from `seq` was served (checkRetained passed): at
 * once when it is new, moves back or was cut off, else at most every HOLD_REFRESH_MS.
 */
export function setHold(sql: SqlStorage, id: string, seq: number, now: number): void {
  const had = sql.exec<{ seq: number; updated_at: number }>("SELECT seq, updated_at FROM _vt_binlog_holds WHERE id = ?", id).toArray()[0];
  const cut = sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_binlog_cutoffs WHERE id = ?", id).one().n > 0;
  if (had && !cut && seq >= had.seq && now - had.updated_at < HOLD_REFRESH_MS) return;
  sql.exec(
    `INSERT INTO _vt_binlog_holds (id, seq, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
    id,
    seq,
    now,
  );
  // A reader that reads again from a kept position is no longer cut off.
  if (cut) sql.exec("DELETE FROM _vt_binlog_cutoffs WHERE id = ?", id);
}

export function dropHold(sql: SqlStorage, id: string): void {
  sql.exec("DELETE FROM _vt_binlog_holds WHERE id = ?", id);
  sql.exec("DELETE FROM _vt_binlog_cutoffs WHERE id = ?", id);
}

export interface BinlogRetentionStatus {
  readonly rows: number;
  readonly bytes: number;
  readonly floor: number;
  readonly holds: { id: string; seq: number; updatedAt: number }[];
  readonly cutoffs: { id: string; seq: number; at: number }[];
}

/** Bytes of an event as counted against the budget: its images and statement, plus 32 for the row's other fields. */
export const EVENT_BYTES = "32 + coalesce(length(CAST(before AS BLOB)), 0) + coalesce(length(CAST(after AS BLOB)), 0) + coalesce(length(tbl), 0)";

export function retentionStatus(sql: SqlStorage): BinlogRetentionStatus {
  const s = sql.exec<{ n: number; b: number | null }>(`SELECT count(*) AS n, sum(${EVENT_BYTES}) AS b FROM _vt_binlog`).one();
  return {
    rows: s.n,
    bytes: s.b ?? 0,
    floor: binlogFloor(sql),
    holds: sql.exec<{ id: string; seq: number; updatedAt: number }>("SELECT id, seq, updated_at AS updatedAt FROM _vt_binlog_holds ORDER BY id").toArray(),
    cutoffs: sql.exec<{ id: string; seq: number; at: number }>("SELECT id, seq, at FROM _vt_binlog_cutoffs ORDER BY id").toArray(),
  };
}

export interface PurgeResult {
  /** Events deleted by this run, and their bytes as the budget counts them. */
  readonly deleted: number;
  readonly deletedBytes: number;
  readonly floor: number;
  /** Holds released by this run (not advanced within the time window). */
  readonly released: readonly string[];
  /** True when more is due (the run stopped at its row bound). */
  readonly more: boolean;
}

/**
 * One bounded purge at `now` (unix ms): releases holds not advanced for the policy's hold age
 * (holdSeconds; until set, 7 days or the time window, whichever is longer), recording them as cut
 * off, then deletes whole transactions from the oldest end while the oldest commit is
 * older than the window or the binlog is over its byte budget, up to `maxRows` events (a first
 * transaction bigger than that goes whole), never past the smallest hold nor the last commit.
 * Call inside a transaction (ctx.storage.transactionSync): the rows, the floor and the holds move together.
 */
export function purgeBinlog(sql: SqlStorage, policy: RetentionPolicy, now: number, maxRows = PURGE_ROWS): PurgeResult {
  const window = policy.retentionSeconds * 1000;
  const maxAge = holdAgeSeconds(policy) * 1000;
  const stale = sql.exec<{ id: string; seq: number }>("SELECT id, seq FROM _vt_binlog_holds WHERE updated_at < ?", now - maxAge).toArray();
  for (const h of stale) {
    sql.exec("DELETE FROM _vt_binlog_holds WHERE id = ?", h.id);
    sql.exec(
      "INSERT INTO _vt_binlog_cutoffs (id, seq, at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, at = excluded.at",
      h.id,
      h.seq,
      now,
    );
  }
  const floor = binlogFloor(sql);
  const held = sql.exec<{ s: number | null }>("SELECT min(seq) AS s FROM _vt_binlog_holds").one().s;
  // The last commit is always kept, so the head's position stays readable.
  const head = sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM _vt_binlog WHERE kind = 'commit'").one().s ?? 0;
  const limit = Math.min(held ?? Number.MAX_SAFE_INTEGER, head - 1);
  const commits = sql
    .exec<{ seq: number; ts: number | null }>(
      "SELECT seq, ts FROM _vt_binlog WHERE kind = 'commit' AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
      floor,
      limit,
      maxRows + 1,
    )
    .toArray();
  const bytesIn = (from: number, to: number): number =>
    sql.exec<{ b: number | null }>(`SELECT sum(${EVENT_BYTES}) AS b FROM _vt_binlog WHERE seq > ? AND seq <= ?`, from, to).one().b ?? 0;
  let cut = floor;
  let more = false;
  // The bytes left once the transactions up to `cut` go; counted only when the time window stops the cut.
  let left: number | null = null;
  for (const c of commits) {
    if (cut !== floor && c.seq - floor > maxRows) {
      more = true;
      break;
    }
    const old = c.ts !== null && c.ts < now - window;
    if (!old) {
      left ??= bytesIn(cut, Number.MAX_SAFE_INTEGER);
      if (left <= policy.retentionBytes) break;
      left -= bytesIn(cut, c.seq);
    }
    cut = c.seq;
  }
  if (cut === floor) return { deleted: 0, deletedBytes: 0, floor, released: stale.map((h) => h.id), more: false };
  const gone = sql.exec<{ n: number; b: number | null }>(`SELECT count(*) AS n, sum(${EVENT_BYTES}) AS b FROM _vt_binlog WHERE seq <= ?`, cut).one();
  sql.exec("DELETE FROM _vt_binlog WHERE seq <= ?", cut);
  sql.exec("INSERT INTO _vt_meta (k, v) VALUES ('purged', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", String(cut));
  // Column lists no event names any more, except each table's newest (the triggers write it).
  sql.exec(
    `DELETE FROM _vt_binlog_cols WHERE id NOT IN (SELECT DISTINCT cols FROM _vt_binlog WHERE cols IS NOT NULL)
       AND id NOT IN (SELECT max(id) FROM _vt_binlog_cols GROUP BY tbl)`,
  );
  return { deleted: gone.n, deletedBytes: gone.b ?? 0, floor: cut, released: stale.map((h) => h.id), more };
}

/** The tablet's retention methods, thin over the above (tablet.ts delegates to them). */
export const binlogRetentionRpc = {
  purge(storage: DurableObjectStorage, sql: SqlStorage, policy: unknown, now: number | undefined): PurgeResult {
    const p = checkPolicy(policy);
    if (now !== undefined && (typeof now !== "number" || !Number.isSafeInteger(now) || now < 0)) {
      throw new VtError("INVALID_ARGUMENT", `binlog retention: now must be unix milliseconds, not ${JSON.stringify(now)}`);
    }
    return storage.transactionSync(() => purgeBinlog(sql, p, now ?? Date.now()));
  },
  status(sql: SqlStorage): BinlogRetentionStatus {
    return retentionStatus(sql);
  },
  hold(sql: SqlStorage, uid: string, id: unknown, seq: unknown, now: number): { readonly seq: number } {
    if (typeof id !== "string" || id === "" || id.length > 512)
      throw new VtError("INVALID_ARGUMENT", "binlog retention: a hold id must be a non-empty string of at most 512 characters");
    if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0)
      throw new VtError("INVALID_ARGUMENT", `binlog retention: a hold's seq must be a binlog sequence, not ${JSON.stringify(seq)}`);
    checkRetained(sql, uid, seq, "hold", id);
    // Keeps at least from `seq`: a hold already lower (a reader behind it) stays where it is.
    const had = sql.exec<{ seq: number }>("SELECT seq FROM _vt_binlog_holds WHERE id = ?", id).toArray()[0];
    const cut = sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_binlog_cutoffs WHERE id = ?", id).one().n > 0;
    const at = had && !cut ? Math.min(had.seq, seq) : seq;
    sql.exec(
      "INSERT INTO _vt_binlog_holds (id, seq, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
      id,
      at,
      now,
    );
    if (cut) sql.exec("DELETE FROM _vt_binlog_cutoffs WHERE id = ?", id);
    return { seq: at };
  },
  release(sql: SqlStorage, id: unknown): { readonly released: boolean } {
    if (typeof id !== "string" || id === "") throw new VtError("INVALID_ARGUMENT", "binlog retention: a hold id must be a non-empty string");
    const had = sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_binlog_holds WHERE id = ?", id).one().n > 0;
    dropHold(sql, id);
    return { released: had };
  },
};
