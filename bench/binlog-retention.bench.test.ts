// What binlog retention gives back: one tablet takes ROWS single-row inserts through `execute`,
// then purges (a window of 0 seconds: every transaction but the last goes, in bounded runs). The
// binlog's bytes per user row before and after, in the same run: the pages of _vt_binlog (and its
// journal index and column lists) as dbstat counts them, or, where dbstat is not available, the
// bytes the purge's budget counts (images and statements plus 32 a row). A second figure keeps a
// window: writes spread over an hour of simulated time (their commit times set minute by minute),
// then the alarm's kind of purge under a 10-minute window at the hour's end.

import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Tablet } from "../tablet/tablet.ts";
import type { Envelope } from "../contract/envelope.ts";
import type { TabletStatus, Target } from "../contract/tablet-rpc.ts";
import { emit } from "./measure.ts";

const ROWS = 5000;
/** The windowed figure: WINDOW_MINUTES kept out of MINUTES written, PER_MINUTE single-row inserts a minute. */
const MINUTES = 60;
const PER_MINUTE = 80;
const WINDOW_MINUTES = 10;
const target: Target = { keyspace: "benchret", shard: "-", version: 1 };

function stub(): DurableObjectStub<Tablet> {
  return env.TABLET.get(env.TABLET.idFromName("benchret/-"));
}

/** Bytes of the binlog's tables and index: dbstat's pages in use, or the budget's count. */
function binlogBytes(sql: SqlStorage): { bytes: number; how: string } {
  try {
    const r = sql
      .exec<{ b: number | null }>("SELECT sum(pgsize - unused) AS b FROM dbstat WHERE name IN ('_vt_binlog', '_vt_binlog_journals', '_vt_binlog_cols')")
      .one();
    return { bytes: r.b ?? 0, how: "dbstat (bytes in use of the pages)" };
  } catch {
    const r = sql
      .exec<{ b: number | null }>(
        "SELECT sum(32 + coalesce(length(CAST(before AS BLOB)), 0) + coalesce(length(CAST(after AS BLOB)), 0) + coalesce(length(tbl), 0)) AS b FROM _vt_binlog",
      )
      .one();
    return { bytes: r.b ?? 0, how: "the purge budget's count (dbstat not available)" };
  }
}

describe("binlog retention", () => {
  it("binlog bytes per row before and after a purge", async () => {
    const st = (await stub().sync({ ...target, keyRange: "-", serving: true }, [
      { index: 1, sql: "CREATE TABLE rows_ (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)" },
    ])) as unknown as Envelope<TabletStatus>;
    expect(st.ok).toBe(true);
    const before = await runInDurableObject(stub(), async (instance: Tablet, state) => {
      for (let id = 1; id <= ROWS; id++) {
        const r = instance.execute(target, [
          { sql: "INSERT INTO rows_ (id, name, score) VALUES (?, ?, ?)", params: [id, `user${id}`, (id % 37) * 1.5], kind: "insert" },
        ]);
        if (!r.ok) throw new Error(r.error.message);
      }
      await state.storage.sync();
      return binlogBytes(state.storage.sql);
    });
    let runs = 0;
    for (;;) {
      runs++;
      const r = (await stub().purgeBinlog({ retentionSeconds: 0, retentionBytes: 0 }, Date.now() + 1000)) as unknown as Envelope<{
        more: boolean;
        deleted: number;
      }>;
      if (!r.ok) throw new Error(r.error.message);
      if (!r.value.more) break;
    }
    const after = await runInDurableObject(stub(), async (_i: Tablet, state) => {
      await state.storage.sync();
      return binlogBytes(state.storage.sql);
    });
    const b = before.bytes / ROWS;
    const a = after.bytes / ROWS;
    expect(a).toBeLessThan(b);
    emit({
      name: "binlog bytes per row: before vs after retention",
      unit: "B/row",
      baseline: { label: "before purge", value: b, rounds: [b] },
      subject: { label: "after purge", value: a, rounds: [a] },
      ratio: a / b,
      rounds: 1,
      opsPerRound: ROWS,
      minRoundMs: 0,
      note: `${ROWS} single-row inserts, then purges of a 0-second window (${runs} bounded runs, at most 5000 events each); bytes by ${before.how}`,
    });
  });

  it("binlog bytes per row kept by a 10-minute window over an hour of writes", async () => {
    const t: Target = { keyspace: "benchwin", shard: "-", version: 1 };
    const w = env.TABLET.get(env.TABLET.idFromName("benchwin/-"));
    const st = (await w.sync({ ...t, keyRange: "-", serving: true }, [
      { index: 1, sql: "CREATE TABLE rows_ (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)" },
    ])) as unknown as Envelope<TabletStatus>;
    expect(st.ok).toBe(true);
    const start = Date.now() - MINUTES * 60_000;
    const before = await runInDurableObject(w, async (instance: Tablet, state) => {
      let id = 0;
      // The schema's own transaction is from the hour's start too.
      state.storage.sql.exec("UPDATE _vt_binlog SET ts = ? WHERE kind = 'commit'", start);
      for (let m = 0; m < MINUTES; m++) {
        const from = state.storage.sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM _vt_binlog").one().s ?? 0;
        for (let i = 0; i < PER_MINUTE; i++) {
          id++;
          const r = instance.execute(t, [
            { sql: "INSERT INTO rows_ (id, name, score) VALUES (?, ?, ?)", params: [id, `user${id}`, (id % 37) * 1.5], kind: "insert" },
          ]);
          if (!r.ok) throw new Error(r.error.message);
        }
        // Simulated time: this minute's commits happened at minute m of the hour.
        state.storage.sql.exec("UPDATE _vt_binlog SET ts = ? + (seq % 60000) WHERE kind = 'commit' AND seq > ?", start + m * 60_000, from);
      }
      await state.storage.sync();
      return binlogBytes(state.storage.sql);
    });
    let runs = 0;
    for (;;) {
      runs++;
      const r = (await w.purgeBinlog({ retentionSeconds: WINDOW_MINUTES * 60, retentionBytes: 1024 ** 3 }, start + MINUTES * 60_000)) as unknown as Envelope<{
        more: boolean;
      }>;
      if (!r.ok) throw new Error(r.error.message);
      if (!r.value.more) break;
    }
    const after = await runInDurableObject(w, async (_i: Tablet, state) => {
      await state.storage.sync();
      return binlogBytes(state.storage.sql);
    });
    const rows = MINUTES * PER_MINUTE;
    const b = before.bytes / rows;
    const a = after.bytes / rows;
    expect(a).toBeLessThan(b);
    expect(a).toBeGreaterThan(0);
    emit({
      name: "binlog bytes per row: an hour of writes vs a 10-minute window kept",
      unit: "B/row",
      baseline: { label: "an hour kept", value: b, rounds: [b] },
      subject: { label: "10 minutes kept", value: a, rounds: [a] },
      ratio: a / b,
      rounds: 1,
      opsPerRound: rows,
      minRoundMs: 0,
      note: `${PER_MINUTE} single-row inserts a minute for ${MINUTES} simulated minutes (commit times set per minute), then purges of a ${WINDOW_MINUTES}-minute window at the hour's end (${runs} bounded runs); bytes by ${before.how}`,
    });
  });
});
