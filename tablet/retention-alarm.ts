// Binlog retention driven by the tablet's alarm: a bounded purge under the keyspace's setting
// (TabletConfig.retention) every PURGE_EVERY_MS while the tablet takes writes, again after
// PURGE_AGAIN_MS while a purge says more is due, and on an idle tablet only when something ages
// out (its first write brings the interval back). The due time is stored (`_vt_meta 'purge_due'`), so the schedule survives a
// restart as the alarm does. The alarm is the tablet's one alarm, shared with the stream pump:
// the tablet arms it for the earlier of the two. The purge never runs inside a user write. A
// tablet with no config (new, or retired: its _vt_meta is gone) purges nothing and arms nothing. Also here: the retention figures of
// TabletStatus, kept current from the binlog's new events since the last count.

import { DEFAULT_RETENTION, type RetentionPolicy, type TabletRetention } from "../contract/binlog-retention.ts";
import type { TabletConfig } from "../contract/tablet-rpc.ts";
import { binlogFloor, EVENT_BYTES, purgeBinlog, type PurgeResult } from "./binlog-retention.ts";
import { lastSeq } from "./binlog.ts";

/** How often the alarm purges while the tablet takes writes: every 5 minutes. */
export const PURGE_EVERY_MS = 5 * 60_000;
/** How soon it purges again while a bounded purge left more due. */
export const PURGE_AGAIN_MS = 1_000;
/** The longest an idle tablet's purge waits before it looks again: a day. */
export const PURGE_IDLE_MAX_MS = 86_400_000;

/** When the next purge is due (unix ms, `_vt_meta 'purge_due'`), or null when none was armed. */
function purgeDue(sql: SqlStorage): number | null {
  const r = sql.exec<{ v: string }>("SELECT v FROM _vt_meta WHERE k = 'purge_due'").toArray()[0];
  return r ? Number(r.v) : null;
}

function setPurgeDue(sql: SqlStorage, at: number): void {
  sql.exec("INSERT INTO _vt_meta (k, v) VALUES ('purge_due', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", String(at));
}

/**
 * A tablet that has its config purges from its alarm: the first purge one interval from `now`,
 * unless one is due sooner. Answers when it is due (the caller arms the alarm for then).
 */
export function armPurge(sql: SqlStorage, now: number): number {
  const due = purgeDue(sql);
  if (due !== null && due <= now + PURGE_EVERY_MS) return due;
  setPurgeDue(sql, now + PURGE_EVERY_MS);
  return now + PURGE_EVERY_MS;
}

/** Whether the next purge waits past the regular interval (the tablet was idle at its last purge). */
export function purgeIsIdle(sql: SqlStorage, now: number): boolean {
  const due = purgeDue(sql);
  return due !== null && due > now + PURGE_EVERY_MS;
}

/** The first write after an idle spell: the next purge is an interval on again. Answers when. */
export function wakePurge(sql: SqlStorage, now: number): number {
  const at = Math.min(purgeDue(sql) ?? Number.MAX_SAFE_INTEGER, now + PURGE_EVERY_MS);
  setPurgeDue(sql, at);
  return at;
}

/**
 * When the purge after `purged` is due. More left: soon. Writes since the last purge (the head
 * moved), something purged or released, or a reader's hold on the binlog (it may move or go at
 * any time): an interval on. Otherwise the tablet is idle and nothing can become due but by age:
 * the next purge waits until the oldest transaction a purge may delete leaves the time window (at
 * least an interval, at most PURGE_IDLE_MAX_MS); the first write ends the wait (wakePurge).
 */
function nextPurge(sql: SqlStorage, policy: RetentionPolicy, now: number, purged: PurgeResult): { at: number; idle: boolean } {
  if (purged.more) return { at: now + PURGE_AGAIN_MS, idle: false };
  const head = lastSeq(sql);
  const seen = sql.exec<{ v: string }>("SELECT v FROM _vt_meta WHERE k = 'purge_head'").toArray()[0];
  sql.exec("INSERT INTO _vt_meta (k, v) VALUES ('purge_head', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", String(head));
  const busy = seen === undefined || Number(seen.v) !== head || purged.deleted > 0 || purged.released.length > 0;
  if (busy || sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_binlog_holds").one().n > 0) return { at: now + PURGE_EVERY_MS, idle: false };
  const lastCommit = sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM _vt_binlog WHERE kind = 'commit'").one().s ?? 0;
  // The oldest commit a purge may delete: above the floor, below the last commit.
  const oldest = sql
    .exec<{ ts: number | null }>("SELECT ts FROM _vt_binlog WHERE kind = 'commit' AND seq > ? AND seq < ? ORDER BY seq LIMIT 1", purged.floor, lastCommit)
    .toArray()[0];
  let at = now + PURGE_IDLE_MAX_MS;
  if (oldest?.ts != null) at = Math.min(at, oldest.ts + policy.retentionSeconds * 1000 + 1);
  return { at: Math.max(at, now + PURGE_EVERY_MS), idle: true };
}

/**
 * The alarm's purge: when one is due (or none was ever armed), one bounded purge under the
 * config's setting, in one storage transaction with the next due time (nextPurge). Answers when
 * the next is due (null: never, the tablet has no config, so nothing is armed) and whether the
 * tablet is idle. A purge that fails is logged and tried again an interval on: the binlog only
 * keeps more meanwhile.
 */
export function alarmPurge(
  storage: DurableObjectStorage,
  config: TabletConfig | null,
  now: number,
): { next: number | null; idle?: boolean; purged?: PurgeResult } {
  if (config === null) return { next: null };
  const sql = storage.sql;
  const due = purgeDue(sql);
  if (due !== null && now < due) return { next: due };
  try {
    return storage.transactionSync(() => {
      const policy = config.retention ?? DEFAULT_RETENTION;
      const purged = purgeBinlog(sql, policy, now);
      const { at, idle } = nextPurge(sql, policy, now, purged);
      setPurgeDue(sql, at);
      return { next: at, idle, purged };
    });
  } catch (e) {
    console.warn(`binlog purge failed: ${e instanceof Error ? e.message : String(e)}; trying again in ${PURGE_EVERY_MS} ms`);
    setPurgeDue(sql, now + PURGE_EVERY_MS);
    return { next: now + PURGE_EVERY_MS, idle: false };
  }
}

/** TabletStatus.retention: counted in full once per instance (or after a retire), then kept current from new events and purges. */
export class RetentionFigures {
  #counted: { seq: number; floor: number; events: number; bytes: number } | null = null;

  read(sql: SqlStorage): TabletRetention {
    const head = lastSeq(sql);
    const floor = binlogFloor(sql);
    let c = this.#counted;
    if (c === null || c.floor !== floor || head < c.seq) {
      const all = sql.exec<{ n: number; b: number | null }>(`SELECT count(*) AS n, sum(${EVENT_BYTES}) AS b FROM _vt_binlog WHERE seq <= ?`, head).one();
      c = { seq: head, floor, events: all.n, bytes: all.b ?? 0 };
    } else if (head > c.seq) {
      const added = sql
        .exec<{ n: number; b: number | null }>(`SELECT count(*) AS n, sum(${EVENT_BYTES}) AS b FROM _vt_binlog WHERE seq > ? AND seq <= ?`, c.seq, head)
        .one();
      c = { seq: head, floor, events: c.events + added.n, bytes: c.bytes + (added.b ?? 0) };
    }
    this.#counted = c;
    const holds = sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_binlog_holds").one().n;
    const cutoffs = sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_binlog_cutoffs").one().n;
    return { events: c.events, bytes: c.bytes, floor: c.floor, holds, cutoffs };
  }

  /** After a purge: what it deleted no longer counts (in full again when nothing was counted yet). */
  purged(r: PurgeResult): void {
    const c = this.#counted;
    this.#counted = c === null || c.seq < r.floor ? null : { seq: c.seq, floor: r.floor, events: c.events - r.deleted, bytes: c.bytes - r.deletedBytes };
  }

  /** After a retire: the next read counts in full. */
  reset(): void {
    this.#counted = null;
  }
}
