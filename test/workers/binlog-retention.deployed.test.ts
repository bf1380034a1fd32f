// Binlog retention as a deployment runs it: the keyspace's setting lives in the Topology (default
// 7 days / 1 GiB), bad settings are refused and change nothing, every tablet of the keyspace gets
// the setting with its config, each tablet's alarm purges under it (again soon while more is due,
// never armed again on a retired tablet), and the tablets' figures show in their status and in
// GET /v1/topology.

import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETENTION, type TabletRetention } from "../../contract/binlog-retention.ts";
import { unwrap } from "../../contract/envelope.ts";
import type { StreamSpec } from "../../contract/stream-rpc.ts";
import type { BoundQuery, TabletConfig, TabletStatus, Target } from "../../contract/tablet-rpc.ts";
import type { BinlogRetentionStatus } from "../../tablet/binlog-retention.ts";
import { PURGE_AGAIN_MS, PURGE_EVERY_MS } from "../../tablet/retention-alarm.ts";
import { handleHttp } from "../../gate/http.ts";
import { api, sql } from "./helpers.ts";

type Shown = { keyspace: string; retentionSeconds: number; retentionBytes: number; holdSeconds: number; isDefault: boolean };
type ErrorBody = { error: { code: string; message: string } };
type View = {
  keyspaces: { name: string; retention: unknown; shards: { name: string; tablet: string; binlog: TabletRetention | null }[] }[];
};

const tablet = (name: string) => env.TABLET.get(env.TABLET.idFromName(name));

async function configOf(name: string): Promise<TabletConfig | null> {
  return unwrap(await tablet(name).status()).config;
}

async function alarmOf(name: string): Promise<number | null> {
  return runInDurableObject(tablet(name), (_i, state) => state.storage.getAlarm());
}

/** Time passes up to the next purge: its stored due time is moved to now (runDurableObjectAlarm runs the alarm whenever it was set for). */
async function purgeDueNow(name: string): Promise<void> {
  await runInDurableObject(tablet(name), (_i, state) => {
    state.storage.sql.exec("UPDATE _vt_meta SET v = ? WHERE k = 'purge_due'", String(Date.now()));
  });
}

let n = 0;
/** A tablet of its own keyspace-less test shard, synced with `retention` (or none), with table t. */
async function freshTablet(retention?: { retentionSeconds: number; retentionBytes: number; holdSeconds?: number }) {
  const shard = `a${n++}`;
  const name = `rd/${shard}`;
  const stub = tablet(name);
  const config: TabletConfig = { keyspace: "rd", shard, keyRange: "-", serving: true, version: 1, ...(retention ? { retention } : {}) };
  unwrap(await stub.sync(config, [{ index: 1, sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)" }]));
  const target: Target = { keyspace: "rd", shard, version: 1 };
  let next = 1;
  /** One transaction inserting `rows` rows. */
  const insert = async (rows: number): Promise<void> => {
    const values = Array.from({ length: rows }, () => `(${next++}, 'x')`).join(", ");
    const q: BoundQuery = { sql: `INSERT INTO t (id, v) VALUES ${values}`, params: [], kind: "write" };
    unwrap(await stub.execute(target, [q]));
  };
  const retentionStatus = async (): Promise<BinlogRetentionStatus> => unwrap(await stub.binlogRetention()) as BinlogRetentionStatus;
  return { name, stub, config, insert, retentionStatus };
}

describe("the keyspace's retention setting", () => {
  it("is the default until set, is shown in GET /v1/retention and /v1/topology, and reaches every tablet's config", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "rk1", shards: 2 })).status).toBe(200);
    const shown = await api<Shown>("GET", "/v1/retention?keyspace=rk1");
    const DAYS_7 = 7 * 86_400;
    expect(shown).toEqual({ status: 200, body: { keyspace: "rk1", ...DEFAULT_RETENTION, holdSeconds: DAYS_7, isDefault: true } });
    const view = (await api<View>("GET", "/v1/topology")).body.keyspaces.find((k) => k.name === "rk1");
    expect(view?.retention).toEqual(DEFAULT_RETENTION);
    const tablets = view?.shards.map((s) => s.tablet) ?? [];
    expect(tablets).toHaveLength(2);
    for (const t of tablets) expect((await configOf(t))?.retention).toEqual(DEFAULT_RETENTION);

    const set = await api<Shown>("POST", "/v1/retention", { keyspace: "rk1", retentionSeconds: 3600 });
    expect(set).toEqual({
      status: 200,
      body: { keyspace: "rk1", retentionSeconds: 3600, retentionBytes: DEFAULT_RETENTION.retentionBytes, holdSeconds: DAYS_7, isDefault: false },
    });
    const both = await api<Shown>("POST", "/v1/retention", { keyspace: "rk1", retentionBytes: 5000 });
    expect(both.body).toMatchObject({ retentionSeconds: 3600, retentionBytes: 5000 });
    for (const t of tablets) expect((await configOf(t))?.retention).toEqual({ retentionSeconds: 3600, retentionBytes: 5000 });
    // Another keyspace keeps its own.
    expect((await api<Shown>("GET", "/v1/retention?keyspace=main")).body).toMatchObject({ ...DEFAULT_RETENTION, isDefault: true });
    // Tables made later, and shards a workflow makes, get it too: a DDL syncs every tablet again.
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, "rk1");
    for (const t of tablets) expect((await configOf(t))?.retention).toEqual({ retentionSeconds: 3600, retentionBytes: 5000 });
    // The hold age follows the window until set (the longer of 7 days and the window), then stays.
    const longer = await api<Shown>("POST", "/v1/retention", { keyspace: "rk1", retentionSeconds: 30 * 86_400 });
    expect(longer.body).toMatchObject({ retentionSeconds: 30 * 86_400, holdSeconds: 30 * 86_400 });
    const held = await api<Shown>("POST", "/v1/retention", { keyspace: "rk1", holdSeconds: 3600, retentionSeconds: 3600 });
    expect(held.body).toMatchObject({ retentionSeconds: 3600, retentionBytes: 5000, holdSeconds: 3600 });
    for (const t of tablets) expect((await configOf(t))?.retention).toEqual({ retentionSeconds: 3600, retentionBytes: 5000, holdSeconds: 3600 });
    // The setting is kept with the keyspace: a restarted Topology still has it.
    await evictDurableObject(env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global")));
    expect((await api<Shown>("GET", "/v1/retention?keyspace=rk1")).body).toMatchObject({
      retentionSeconds: 3600,
      retentionBytes: 5000,
      holdSeconds: 3600,
      isDefault: false,
    });
    // null: back to its default.
    expect((await api<Shown>("POST", "/v1/retention", { keyspace: "rk1", holdSeconds: null })).body).toMatchObject({ holdSeconds: DAYS_7 });
    for (const t of tablets) expect((await configOf(t))?.retention).toEqual({ retentionSeconds: 3600, retentionBytes: 5000 });
  });

  it("refuses bad settings with INVALID_ARGUMENT and changes nothing", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "rk2", shards: 2 })).status).toBe(200);
    expect((await api("POST", "/v1/retention", { keyspace: "rk2", retentionSeconds: 60, retentionBytes: 1000 })).status).toBe(200);
    const tablets = (await api<View>("GET", "/v1/topology")).body.keyspaces.find((k) => k.name === "rk2")?.shards.map((s) => s.tablet) ?? [];
    const bad: unknown[] = [
      { keyspace: "rk2", retentionSeconds: -1 },
      { keyspace: "rk2", retentionSeconds: 1.5 },
      { keyspace: "rk2", retentionSeconds: "60" },
      { keyspace: "rk2", retentionSeconds: 11 * 365 * 86_400 },
      { keyspace: "rk2", retentionBytes: 1024 ** 4 + 1 },
      { keyspace: "rk2", retentionBytes: null },
      { keyspace: "rk2", holdSeconds: -5 },
      { keyspace: "rk2", holdSeconds: 0 },
      { keyspace: "rk2", holdSeconds: 299 },
      { keyspace: "rk2", holdSeconds: "1h" },
      { keyspace: "rk2", holdSeconds: 11 * 365 * 86_400 },
      { keyspace: "rk2", retentionSeconds: 5, window: 5 },
      { keyspace: "rk2" },
      { keyspace: "nope", retentionSeconds: 5 },
      { keyspace: 7, retentionSeconds: 5 },
      { retentionSeconds: 5 },
    ];
    for (const body of bad) {
      const r = await api<ErrorBody>("POST", "/v1/retention", body);
      expect({ body, status: r.status, code: r.body.error?.code }).toEqual({ body, status: 400, code: "INVALID_ARGUMENT" });
    }
    expect((await api<ErrorBody>("GET", "/v1/retention?keyspace=nope")).body.error.code).toBe("INVALID_ARGUMENT");
    expect((await api<Shown>("GET", "/v1/retention?keyspace=rk2")).body).toMatchObject({ retentionSeconds: 60, retentionBytes: 1000 });
    for (const t of tablets) expect((await configOf(t))?.retention).toEqual({ retentionSeconds: 60, retentionBytes: 1000 });
  });

  it("is shown with the user token and set only with the admin token", async () => {
    const e = Object.create(env) as Env;
    Object.defineProperty(e, "GATE_TOKEN", { value: "u" });
    Object.defineProperty(e, "ADMIN_TOKEN", { value: "a" });
    const call = async (method: string, path: string, token: string, body?: unknown) => {
      const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
      const res = await handleHttp(new Request(`http://gate${path}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) }), e);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect((await call("GET", "/v1/retention?keyspace=main", "u")).status).toBe(200);
    expect(await call("POST", "/v1/retention", "u", { keyspace: "main", retentionSeconds: 1 })).toMatchObject({
      status: 403,
      body: { error: { code: "PERMISSION_DENIED" } },
    });
    expect((await api<Shown>("GET", "/v1/retention?keyspace=main")).body.isDefault).toBe(true);
    expect((await call("GET", "/v1/retention?keyspace=main", "nobody")).status).toBe(401);
  });
});

describe("the retention setting over capnweb", () => {
  it("retention({keyspace}) shows it with the user token; with fields it sets it, admin only", async () => {
    const { GateRpc } = await import("../../gate/rpc.ts");
    const e = Object.create(env) as Env;
    Object.defineProperty(e, "GATE_TOKEN", { value: "u" });
    Object.defineProperty(e, "ADMIN_TOKEN", { value: "a" });
    expect((await api("POST", "/v1/keyspaces", { name: "rk4", shards: 1 })).status).toBe(200);
    const user = new GateRpc(e, "none");
    await expect(user.retention({ keyspace: "rk4" })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    await user.authenticate("u");
    expect(await user.retention({ keyspace: "rk4" })).toEqual({ keyspace: "rk4", ...DEFAULT_RETENTION, holdSeconds: 7 * 86_400, isDefault: true });
    await expect(user.retention({ keyspace: "rk4", retentionSeconds: 5 })).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    const admin = new GateRpc(e, "none");
    await admin.authenticate("a");
    expect(await admin.retention({ keyspace: "rk4", retentionSeconds: 5 })).toMatchObject({ retentionSeconds: 5, isDefault: false });
    await expect(admin.retention({ keyspace: "rk4", retentionSeconds: -5 })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(admin.retention({ keyspace: "rk4" }, 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(await user.retention({ keyspace: "rk4" })).toMatchObject({ retentionSeconds: 5 });
  });
});

describe("the tablet's alarm", () => {
  it("is armed once the tablet has a config, and purges under the config's setting", async () => {
    const t = await freshTablet({ retentionSeconds: 0, retentionBytes: 0 });
    const armed = await alarmOf(t.name);
    expect(armed).not.toBeNull();
    expect(armed ?? 0).toBeLessThanOrEqual(Date.now() + PURGE_EVERY_MS);
    for (let i = 0; i < 4; i++) await t.insert(3);
    const before = await t.retentionStatus();
    expect(before.floor).toBe(0);
    // Before its time the alarm (the stream pump's, say) purges nothing.
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    expect((await t.retentionStatus()).floor).toBe(0);
    expect(await alarmOf(t.name)).toBe(armed);
    // Its time comes: the purge runs under {0 s, 0 bytes}, so all but the last transaction go.
    await purgeDueNow(t.name);
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    const after = await t.retentionStatus();
    expect(after.rows).toBe(4); // the last transaction: 3 inserts and its commit
    expect(after.floor).toBeGreaterThan(0);
    // The next purge is due an interval on.
    const again = await alarmOf(t.name);
    expect(again).not.toBeNull();
    expect((again ?? 0) - Date.now()).toBeGreaterThan(PURGE_AGAIN_MS);
  });

  it("with the default setting purges nothing young", async () => {
    const t = await freshTablet();
    await t.insert(2);
    await t.insert(2);
    await purgeDueNow(t.name);
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    expect((await t.retentionStatus()).floor).toBe(0);
    expect(await alarmOf(t.name)).not.toBeNull();
  });

  it("purges again soon while a bounded purge leaves more due", async () => {
    const t = await freshTablet({ retentionSeconds: 0, retentionBytes: 0 });
    // Four transactions of 2,101 events: one purge (at most 5,000 events) takes two of them.
    for (let i = 0; i < 4; i++) await t.insert(2100);
    await purgeDueNow(t.name);
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    const first = await t.retentionStatus();
    expect(first.rows).toBe(2 * 2101);
    const soon = await alarmOf(t.name);
    expect(soon).not.toBeNull();
    expect((soon ?? 0) - Date.now()).toBeLessThanOrEqual(PURGE_AGAIN_MS);
    await purgeDueNow(t.name);
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    expect((await t.retentionStatus()).rows).toBe(2101);
    expect((await alarmOf(t.name)) ?? 0).toBeGreaterThan(Date.now() + PURGE_AGAIN_MS);
  });

  it("survives a restart: the armed alarm purges on the new instance", async () => {
    const t = await freshTablet({ retentionSeconds: 0, retentionBytes: 0 });
    await t.insert(5);
    await t.insert(5);
    await purgeDueNow(t.name);
    await evictDurableObject(t.stub);
    expect(await alarmOf(t.name)).not.toBeNull();
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    expect((await t.retentionStatus()).rows).toBe(6);
  });

  it("is not armed again on a retired tablet, nor by an alarm that runs after the retire", async () => {
    const t = await freshTablet({ retentionSeconds: 0, retentionBytes: 0 });
    await t.insert(2);
    unwrap(await t.stub.retire());
    expect(await alarmOf(t.name)).toBeNull();
    await runInDurableObject(t.stub, (instance) => (instance as unknown as { alarm(): Promise<void> }).alarm());
    expect(await alarmOf(t.name)).toBeNull();
    expect(await runDurableObjectAlarm(t.stub)).toBe(false);
    // Reads and a hold released on it arm nothing either.
    unwrap(await t.stub.releaseHold("x"));
    unwrap(await t.stub.status());
    expect(await alarmOf(t.name)).toBeNull();
  });

  it("on an idle tablet waits until its oldest transaction leaves the window; the first write brings the interval back; a hold keeps the interval", async () => {
    const t = await freshTablet({ retentionSeconds: 3600, retentionBytes: 1024 ** 3, holdSeconds: 7200 });
    await t.insert(2);
    const firstCommit = Date.now();
    await t.insert(2);
    await t.insert(2);
    // The first purge sees writes since none before it: the next is an interval on.
    await purgeDueNow(t.name);
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    expect((await alarmOf(t.name)) ?? 0).toBeLessThanOrEqual(Date.now() + PURGE_EVERY_MS);
    // Nothing written since: idle, so the next purge is when the oldest deletable transaction leaves the hour.
    await purgeDueNow(t.name);
    expect(await runDurableObjectAlarm(t.stub)).toBe(true);
    const idle = (await alarmOf(t.name)) ?? 0;
    expect(idle).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect(idle).toBeLessThanOrEqual(firstCommit + 3600_000 + 1);
    expect((await t.retentionStatus()).floor).toBe(0);
    // A read changes nothing; the first write brings the purge an interval on again.
    const q: BoundQuery = { sql: "SELECT count(*) FROM t", params: [], kind: "read" };
    unwrap(await t.stub.execute({ keyspace: "rd", shard: t.config.shard, version: 1 }, [q]));
    expect(await alarmOf(t.name)).toBe(idle);
    await t.insert(1);
    await runInDurableObject(t.stub, () => undefined); // the alarm is set after the write answered
    const woken = (await alarmOf(t.name)) ?? Number.MAX_SAFE_INTEGER;
    expect(woken).toBeLessThanOrEqual(Date.now() + PURGE_EVERY_MS);

    // With a reader's hold on it (which may move or go at any time) it keeps the interval, idle or not.
    const u = await freshTablet({ retentionSeconds: 3600, retentionBytes: 1024 ** 3, holdSeconds: 7200 });
    await u.insert(1);
    await u.insert(1);
    unwrap(await u.stub.holdBinlog("reader", 1));
    for (let i = 0; i < 2; i++) {
      await purgeDueNow(u.name);
      expect(await runDurableObjectAlarm(u.stub)).toBe(true);
    }
    expect((await alarmOf(u.name)) ?? Number.MAX_SAFE_INTEGER).toBeLessThanOrEqual(Date.now() + PURGE_EVERY_MS);
  });

  it("a write arms nothing and runs no purge: the purge stays out of the write path", async () => {
    const t = await freshTablet({ retentionSeconds: 0, retentionBytes: 0 });
    await runInDurableObject(t.stub, (_i, state) => state.storage.deleteAlarm());
    for (let i = 0; i < 3; i++) await t.insert(2);
    expect(await alarmOf(t.name)).toBeNull();
    expect((await t.retentionStatus()).floor).toBe(0);
  });
});

describe("the alarm shared with the stream pump", () => {
  it("keeps the pump's cadence while a stream moves, and falls back to the purge's time once none does", async () => {
    const src = await freshTablet();
    await src.insert(3);
    const target = await freshTablet();
    const purgeDue = async (): Promise<number> =>
      runInDurableObject(target.stub, (_i, state) => Number(state.storage.sql.exec<{ v: string }>("SELECT v FROM _vt_meta WHERE k = 'purge_due'").one().v));
    const due = await purgeDue();
    expect(due).toBeGreaterThan(Date.now() + PURGE_AGAIN_MS);
    const head = Number(unwrap(await src.stub.status()).position.split(":")[1]);
    const spec: StreamSpec = {
      id: "w/-",
      workflow: "w",
      targetTablet: target.name,
      sourceTablet: src.name,
      sourceShard: "-",
      filter: { keyRange: "-", tables: [{ table: "t", kind: "reference" }] },
      onDdl: "ignore",
      start: { seq: head, copy: null },
    };
    unwrap(await target.stub.startStream(spec));
    // The pump's rounds come every few ms, not at the purge's time, and leave the purge's time alone.
    for (let i = 0; i < 3; i++) {
      await runDurableObjectAlarm(target.stub);
      const at = await alarmOf(target.name);
      expect(at).not.toBeNull();
      expect(at ?? 0).toBeLessThan(due);
      expect(await purgeDue()).toBe(due);
    }
    // Writes on the source still reach the target.
    await src.insert(1);
    for (let i = 0; ; i++) {
      const rows = await runInDurableObject(target.stub, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM t").one().n);
      if (rows === 1) break;
      if (i > 500) throw new Error(`the stream did not move: ${JSON.stringify(unwrap(await target.stub.streams()))}`);
      // Its parts travel through the queue.
      await new Promise((r) => setTimeout(r, 20));
    }
    // With the stream stopped the alarm is the purge's.
    unwrap(await target.stub.controlStream(spec.id, "stop"));
    await runDurableObjectAlarm(target.stub);
    expect(await alarmOf(target.name)).toBe(due);
  });
});

describe("retention figures in the tablet status", () => {
  it("count the binlog's events and bytes, the floor, holds and readers cut off, as the tablet's retention status does", async () => {
    const t = await freshTablet({ retentionSeconds: 0, retentionBytes: 0 });
    const figures = async (): Promise<TabletRetention | undefined> => (unwrap(await t.stub.status()) as TabletStatus).retention;
    const same = async (): Promise<void> => {
      const r = await t.retentionStatus();
      expect(await figures()).toEqual({ events: r.rows, bytes: r.bytes, floor: r.floor, holds: r.holds.length, cutoffs: r.cutoffs.length });
    };
    await same();
    await t.insert(3);
    await same();
    await t.insert(40);
    await t.insert(1);
    await same();
    unwrap(await t.stub.vstreamRead({ tables: ["t"], uid: null, seq: 0, copy: null, waitMs: 0, hold: "sub-a" }));
    expect((await figures())?.holds).toBe(1);
    unwrap(await t.stub.releaseHold("sub-a"));
    unwrap(await t.stub.purgeBinlog({ retentionSeconds: 0, retentionBytes: 0 }));
    await same();
    expect((await figures())?.floor).toBeGreaterThan(0);
    await t.insert(2);
    await same();
    // A hold left unadvanced past its age is released at the next purge and shows as a reader cut off.
    unwrap(await t.stub.vstreamRead({ tables: ["t"], uid: null, seq: -1, hold: "sub-b", copy: null, waitMs: 0 }));
    await t.insert(2);
    unwrap(await t.stub.purgeBinlog({ retentionSeconds: 0, retentionBytes: 0 }, Date.now() + 8 * 86_400_000));
    expect(await figures()).toMatchObject({ holds: 0, cutoffs: 1 });
    await same();
  });

  it("show per shard in GET /v1/topology", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "rk3", shards: 2 })).status).toBe(200);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, "rk3");
    await sql("INSERT INTO t VALUES (1), (2), (3), (4)", undefined, "rk3");
    const ks = (await api<View>("GET", "/v1/topology")).body.keyspaces.find((k) => k.name === "rk3");
    const shards = ks?.shards ?? [];
    expect(shards).toHaveLength(2);
    for (const s of shards) {
      const r = unwrap(await tablet(s.tablet).binlogRetention()) as BinlogRetentionStatus;
      expect(s.binlog).toEqual({ events: r.rows, bytes: r.bytes, floor: r.floor, holds: r.holds.length, cutoffs: r.cutoffs.length });
    }
    expect(shards.reduce((sum, s) => sum + (s.binlog?.events ?? 0), 0)).toBeGreaterThan(4);
  });
});
