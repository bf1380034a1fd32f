// Binlog retention on a tablet: purges delete whole transactions from the oldest end, by age or
// size, never past a reader's hold; a read from below the floor is refused as too old, a reader
// whose hold was released is told so, and a read at or after the floor resumes exactly.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { BinlogChunk, BinlogEvent, BoundQuery, QueryResult, Target } from "../../contract/tablet-rpc.ts";
import type { Envelope } from "../../contract/envelope.ts";
import type { ShardRead, ShardReadRequest } from "../../contract/vstream.ts";
import type { BinlogRetentionStatus, PurgeResult } from "../../tablet/binlog-retention.ts";

const asEnv = <T>(x: unknown): Envelope<T> => x as Envelope<T>;
const DAY = 86_400;

let n = 0;
async function freshTablet() {
  const name = `ret${n++}`;
  const stub = env.TABLET.get(env.TABLET.idFromName(`r/${name}`));
  const config = { keyspace: "r", shard: name, keyRange: "-", serving: true, version: 1 };
  expect((await stub.sync(config, [{ index: 1, sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)" }])).ok).toBe(true);
  const target: Target = { keyspace: "r", shard: name, version: 1 };
  const exec = async (...qs: string[]): Promise<void> => {
    const queries: BoundQuery[] = qs.map((sql) => ({ sql, params: [], kind: /^\s*INSERT/i.test(sql) ? "insert" : "write" }));
    const r = asEnv<QueryResult[]>(await stub.execute(target, queries));
    if (!r.ok) throw new Error(r.error.message);
  };
  const read = async (from: number): Promise<Envelope<BinlogChunk>> => {
    const uid = asEnv<{ position: string }>(await stub.status());
    if (!uid.ok) throw new Error("status");
    return asEnv<BinlogChunk>(await stub.readBinlog(`${uid.value.position.split(":")[0]}:${from}`, 10_000));
  };
  const all = async (): Promise<BinlogEvent[]> => {
    const r = asEnv<BinlogChunk>(await stub.readBinlog(null, 10_000));
    if (!r.ok) throw new Error(r.error.message);
    return r.value.events;
  };
  const purge = async (policy: unknown, now?: number) => asEnv<PurgeResult>(await stub.purgeBinlog(policy, now));
  const status = async (): Promise<BinlogRetentionStatus> => {
    const r = asEnv<BinlogRetentionStatus>(await stub.binlogRetention());
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  };
  const vread = async (req: Partial<ShardReadRequest>) =>
    asEnv<ShardRead>(await stub.vstreamRead({ tables: ["t"], uid: null, seq: 0, copy: null, waitMs: 0, ...req }));
  return { stub, exec, read, all, purge, status, vread };
}

/** The row changes of events, for comparing replays. */
const rows = (evs: readonly BinlogEvent[]) =>
  evs.filter((e) => e.kind !== "commit" && e.kind !== "ddl").map((e) => `${e.kind} ${JSON.stringify(e.after ?? e.before)}`);

describe("binlog retention", () => {
  it("purges by age whole transactions only, keeps the last commit, and refuses reads below the floor", async () => {
    const t = await freshTablet();
    await t.exec("INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (2, 'b')");
    await t.exec("UPDATE t SET v = 'c' WHERE id = 1");
    await t.exec("INSERT INTO t VALUES (3, 'd')", "DELETE FROM t WHERE id = 2");
    const before = await t.all();
    const commits = before.filter((e) => e.kind === "commit").map((e) => e.seq);
    // Nothing is older than a day: nothing goes.
    const none = await t.purge({ retentionSeconds: DAY, retentionBytes: 1024 ** 3 });
    expect(none.ok && none.value.deleted).toBe(0);
    // A window of 0 seconds, a day on: everything but the last transaction goes.
    const r = await t.purge({ retentionSeconds: 0, retentionBytes: 1024 ** 3 }, Date.now() + DAY * 1000);
    if (!r.ok) throw new Error(r.error.message);
    const floor = commits.at(-2) ?? 0;
    expect(r.value.floor).toBe(floor);
    expect(r.value.deleted).toBe(before.filter((e) => e.seq <= floor).length);
    expect(commits).toContain(r.value.floor); // cut just after a commit: no transaction split
    const st = await t.status();
    expect(st.floor).toBe(floor);
    expect(st.rows).toBe(before.length - r.value.deleted);
    // From the floor: exactly the kept transaction.
    const kept = await t.read(floor);
    if (!kept.ok) throw new Error(kept.error.message);
    expect(rows(kept.value.events)).toEqual(rows(before.filter((e) => e.seq > floor)));
    // From below it: refused, naming where the binlog is kept from.
    for (const from of [0, floor - 1]) {
      const old = await t.read(from);
      expect(old.ok).toBe(false);
      if (old.ok) continue;
      expect(old.error.code).toBe("INVALID_ARGUMENT");
      expect(old.error.message).toMatch(new RegExp(`too old: the binlog of this tablet is kept from position [0-9a-f]+:${floor} \\(binlog retention\\)`));
    }
    // A VStream read from below the floor is refused the same way; at the floor it resumes exactly.
    const v = await t.vread({ seq: commits[0] ?? 0 });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.error.message).toContain("vstream: the position");
    const at = await t.vread({ seq: floor });
    if (!at.ok) throw new Error(at.error.message);
    expect(at.value.transactions.map((x) => x.changes.length)).toEqual([2]);
    // The tablet's writes and counts go on.
    await t.exec("INSERT INTO t VALUES (4, 'e')");
    const next = await t.read(floor);
    expect(next.ok && rows(next.value.events)).toHaveLength(3);
  });

  it("purges by size from the oldest end until the binlog is within its budget", async () => {
    const t = await freshTablet();
    for (let i = 0; i < 20; i++) await t.exec(`INSERT INTO t VALUES (${i}, '${"x".repeat(200)}')`);
    const full = await t.status();
    const budget = Math.floor(full.bytes / 2);
    const r = await t.purge({ retentionSeconds: 365 * DAY, retentionBytes: budget });
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.deleted).toBeGreaterThan(0);
    const after = await t.status();
    expect(after.bytes).toBeLessThanOrEqual(budget);
    // Only just: one more transaction kept would be over.
    expect(after.bytes).toBeGreaterThan(budget - 400);
    const kept = await t.read(after.floor);
    if (!kept.ok) throw new Error(kept.error.message);
    expect(kept.value.events[0]?.kind).toBe("insert");
    expect(kept.value.events.at(-1)?.kind).toBe("commit");
    // A second run finds nothing to do.
    const again = await t.purge({ retentionSeconds: 365 * DAY, retentionBytes: budget });
    expect(again.ok && again.value.deleted).toBe(0);
  });

  it("never purges past a reader's hold; a stale hold is released and that reader is told it was cut off", async () => {
    const t = await freshTablet();
    await t.exec("INSERT INTO t VALUES (1, 'a')");
    const start = await t.vread({ seq: -1, hold: "sub-1" });
    if (!start.ok) throw new Error(start.error.message);
    const held = start.value.seq;
    await t.exec("INSERT INTO t VALUES (2, 'b')");
    await t.exec("INSERT INTO t VALUES (3, 'c')");
    // A budget of 0 bytes would purge everything but the hold (advanced just now) keeps all after `held`.
    const window = { retentionSeconds: 3600, retentionBytes: 0 };
    const r = await t.purge(window);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.floor).toBe(held);
    expect((await t.status()).holds).toEqual([expect.objectContaining({ id: "sub-1", seq: held })]);
    // The held reader replays exactly what it had not read.
    const got = await t.vread({ seq: held, hold: "sub-1" });
    if (!got.ok) throw new Error(got.error.message);
    expect(got.value.transactions.map((x) => x.changes.map((c) => ("after" in c ? c.after : null)))).toEqual([[[2, "b"]], [[3, "c"]]]);
    // Six days on, the hold still keeps the binlog; eight days on (not advanced), it is released, recorded, and the binlog purged past it.
    const early = await t.purge(window, Date.now() + 6 * DAY * 1000);
    expect(early.ok && early.value.floor).toBe(held);
    const later = await t.purge(window, Date.now() + 8 * DAY * 1000);
    if (!later.ok) throw new Error(later.error.message);
    expect(later.value.released).toEqual(["sub-1"]);
    expect(later.value.floor).toBeGreaterThan(held);
    const st = await t.status();
    expect(st.holds).toEqual([]);
    expect(st.cutoffs).toEqual([expect.objectContaining({ id: "sub-1", seq: held })]);
    const cut = await t.vread({ seq: held, hold: "sub-1" });
    expect(cut.ok).toBe(false);
    if (!cut.ok) {
      expect(cut.error.code).toBe("INVALID_ARGUMENT");
      expect(cut.error.message).toMatch(/stream sub-1 was cut off by binlog retention at [0-9a-f]+:\d+ \(\d{4}-/);
    }
    // Starting again from now clears it.
    const again = await t.vread({ seq: -1, hold: "sub-1" });
    expect(again.ok).toBe(true);
    expect((await t.status()).cutoffs).toEqual([]);
    const rel = asEnv<{ released: boolean }>(await t.stub.releaseHold("sub-1"));
    expect(rel.ok && rel.value.released).toBe(true);
    expect((await t.status()).holds).toEqual([]);
  });

  it("refuses bad settings and arguments, changing nothing", async () => {
    const t = await freshTablet();
    await t.exec("INSERT INTO t VALUES (1, 'a')");
    await t.exec("INSERT INTO t VALUES (2, 'a')");
    const before = await t.status();
    const bad: [unknown, number?][] = [
      [{ retentionSeconds: -1, retentionBytes: 0 }],
      [{ retentionSeconds: 1.5, retentionBytes: 0 }],
      [{ retentionSeconds: "0", retentionBytes: 0 }],
      [{ retentionSeconds: 0 }],
      [{ retentionSeconds: 0, retentionBytes: 2 ** 60 }],
      [null],
      [{ retentionSeconds: 0, retentionBytes: 0 }, -5],
      [{ retentionSeconds: 0, retentionBytes: 0 }, Number.NaN],
    ];
    for (const [policy, now] of bad) {
      const r = await t.purge(policy, now);
      expect(r.ok, JSON.stringify(policy)).toBe(false);
      if (!r.ok) expect(r.error.code).toBe("INVALID_ARGUMENT");
    }
    const v = await t.vread({ seq: 0, hold: "" });
    expect(v.ok).toBe(false);
    const rel = asEnv<unknown>(await t.stub.releaseHold(""));
    expect(rel.ok).toBe(false);
    expect(await t.status()).toEqual(before);
  });

  it("a reader's hold is not a user write: a batch that changes no row after it logs no commit, and a reads-only tablet still reads", async () => {
    const t = await freshTablet();
    await t.exec("INSERT INTO t VALUES (1, 'a')");
    const head = (await t.all()).length;
    expect((await t.vread({ hold: "sub:x", seq: 0 })).ok).toBe(true);
    expect((await t.status()).holds.length).toBe(1);
    await t.exec("UPDATE t SET v = 'b' WHERE 0");
    expect((await t.all()).length).toBe(head);
    // The same tablet as a reader (it serves reads only): a hold taken, then a read batch.
    const config = { keyspace: "r", shard: `ret${n - 1}`, keyRange: "-", serving: false, servesReads: true, version: 2 };
    expect((await t.stub.sync(config, [{ index: 1, sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)" }])).ok).toBe(true);
    expect((await t.vread({ hold: "sub:x", seq: 0 })).ok).toBe(true);
    const r = asEnv<QueryResult[]>(
      await t.stub.execute({ keyspace: "r", shard: `ret${n - 1}`, version: 2 }, [{ sql: "SELECT v FROM t", params: [], kind: "read" }]),
    );
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });
});
