// Holds of VReplication streams over their lifetime: a stream takes its hold on its source when it
// is created (at its start position, before its first read; a source that purged past that refuses
// the stream, and nothing is recorded), forgetting a stream releases its hold, and a cancelled or
// completed workflow leaves no hold of its streams on any tablet, however often the step is retried.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { streamHoldId } from "../../contract/binlog-retention.ts";
import { unwrap, type Envelope } from "../../contract/envelope.ts";
import type { StreamSpec } from "../../contract/stream-rpc.ts";
import type { BoundQuery, Target } from "../../contract/tablet-rpc.ts";
import type { BinlogRetentionStatus } from "../../tablet/binlog-retention.ts";
import { armWorkflowHook, disarm } from "../../topology/failpoints.ts";
import { api, sql } from "./helpers.ts";
import { sleep } from "./movetables-harness.ts";

const tablet = (name: string) => env.TABLET.get(env.TABLET.idFromName(name));
const holdsOn = async (name: string) => (unwrap(await tablet(name).binlogRetention()) as BinlogRetentionStatus).holds;

type Shown = { state: string; sources: { tablet: string }[]; targets: { tablet: string }[]; streams: { phase: string }[] };

let n = 0;
async function sourceWithRows(): Promise<{ name: string; head: () => Promise<number> }> {
  const shard = `s${n++}`;
  const name = `rh/${shard}`;
  unwrap(
    await tablet(name).sync({ keyspace: "rh", shard, keyRange: "-", serving: true, version: 1 }, [
      { index: 1, sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)" },
    ]),
  );
  const target: Target = { keyspace: "rh", shard, version: 1 };
  for (let i = 1; i <= 3; i++) {
    const q: BoundQuery = { sql: `INSERT INTO t VALUES (${i}, 'x')`, params: [], kind: "write" };
    unwrap(await tablet(name).execute(target, [q]));
  }
  const head = async () => Number(unwrap(await tablet(name).status()).position.split(":")[1]);
  return { name, head };
}

function specOf(source: string, target: string, seq: number): StreamSpec {
  return {
    id: "w/-",
    workflow: "w",
    targetTablet: target,
    sourceTablet: source,
    sourceShard: "-",
    filter: { keyRange: "-", tables: [{ table: "t", kind: "reference" }] },
    onDdl: "ignore",
    start: { seq, copy: null },
  };
}

describe("a stream's hold on its source", () => {
  it("is taken when the stream is created, at its start, and released when the stream is forgotten", async () => {
    const src = await sourceWithRows();
    const target = `rh/target${n++}`;
    const seq = await src.head();
    const spec = specOf(src.name, target, seq);
    unwrap(await tablet(target).startStream(spec));
    const held = (await holdsOn(src.name)).find((h) => h.id === streamHoldId(spec));
    expect(held?.seq).toBe(seq);
    // The most eager purge cannot pass it, whatever the clock says.
    const r = unwrap(await tablet(src.name).purgeBinlog({ retentionSeconds: 0, retentionBytes: 0 }, Date.now() + 86_400_000));
    expect(r.floor).toBeLessThanOrEqual(seq);
    // Starting it again (a retry) leaves the stream and its hold as they are.
    unwrap(await tablet(target).startStream(spec));
    expect((await holdsOn(src.name)).filter((h) => h.id === streamHoldId(spec))).toHaveLength(1);
    unwrap(await tablet(target).controlStream(spec.id, "delete"));
    expect(await holdsOn(src.name)).toEqual([]);
    // Forgetting it again is no error and changes nothing.
    expect(unwrap(await tablet(target).controlStream(spec.id, "delete"))).toBeNull();
    expect(await holdsOn(src.name)).toEqual([]);
  });

  it("a hold taken ahead is never moved forward by holdBinlog, only back", async () => {
    const src = await sourceWithRows();
    const head = await src.head();
    expect(unwrap(await tablet(src.name).holdBinlog("ahead", head - 2))).toEqual({ seq: head - 2 });
    expect(unwrap(await tablet(src.name).holdBinlog("ahead", head))).toEqual({ seq: head - 2 });
    expect((await holdsOn(src.name)).map((h) => h.seq)).toEqual([head - 2]);
    expect(unwrap(await tablet(src.name).holdBinlog("ahead", 1))).toEqual({ seq: 1 });
    for (const bad of [-1, 1.5, "3"]) {
      const r = (await tablet(src.name).holdBinlog("ahead", bad as number)) as Envelope<unknown>;
      expect(r.ok ? "ok" : r.error.code).toBe("INVALID_ARGUMENT");
    }
    const r = (await tablet(src.name).holdBinlog("", 1)) as Envelope<unknown>;
    expect(r.ok ? "ok" : r.error.code).toBe("INVALID_ARGUMENT");
    expect((await holdsOn(src.name)).map((h) => h.seq)).toEqual([1]);
  });

  it("refuses a stream whose start its source already purged, recording nothing", async () => {
    const src = await sourceWithRows();
    const target = `rh/target${n++}`;
    const floor = unwrap(await tablet(src.name).purgeBinlog({ retentionSeconds: 0, retentionBytes: 0 }, Date.now() + 86_400_000)).floor;
    expect(floor).toBeGreaterThan(1);
    const out = (await tablet(target).startStream(specOf(src.name, target, 1))) as Envelope<unknown>;
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.error.code).toBe("INVALID_ARGUMENT");
      expect(out.error.message).toContain("too old");
    }
    expect(unwrap(await tablet(target).streams())).toEqual([]);
    expect(await holdsOn(src.name)).toEqual([]);
    // At the floor it starts.
    unwrap(await tablet(target).startStream(specOf(src.name, target, floor)));
    expect((await holdsOn(src.name)).map((h) => h.seq)).toEqual([floor]);
  });
});

async function reshardRunning(ks: string): Promise<Shown> {
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-80", "80-"] })).status).toBe(200);
  await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, ks);
  for (let i = 1; i <= 20; i++) await sql("INSERT INTO t VALUES (?, 'x')", [i], ks);
  const c = await api<Shown>("POST", "/v1/workflows", { action: "create", keyspace: ks, workflow: "w", sourceShards: ["-80"], targetShards: ["-40", "40-80"] });
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  for (let i = 0; ; i++) {
    const v = (await api<Shown>("GET", `/v1/workflows?keyspace=${ks}&workflow=w`)).body;
    if (v.streams.length === 2 && v.streams.every((s) => s.phase === "running")) return v;
    if (i > 500) throw new Error(`streams never ran: ${JSON.stringify(v)}`);
    await sleep(20);
  }
}

describe("a workflow's holds", () => {
  it("a cancelled Reshard leaves no hold on its sources, and a retried cancel changes nothing", async () => {
    const v = await reshardRunning("rhc");
    const source = v.sources[0]?.tablet ?? "?";
    expect((await holdsOn(source)).map((h) => h.id).sort()).toEqual(v.targets.map((t) => `vreplication:${t.tablet}:w/-80`).sort());
    expect((await api("POST", "/v1/workflows", { action: "cancel", keyspace: "rhc", workflow: "w" })).status).toBe(200);
    expect(await holdsOn(source)).toEqual([]);
    expect((await api("POST", "/v1/workflows", { action: "cancel", keyspace: "rhc", workflow: "w" })).status).toBe(200);
    expect(await holdsOn(source)).toEqual([]);
    expect((await sql("SELECT count(*) FROM t", undefined, "rhc")).rows).toEqual([[20]]);
  });

  it("a completed Reshard leaves no hold of its reverse streams on its new shards", async () => {
    const v = await reshardRunning("rhd");
    const sw = await api("POST", "/v1/workflows", { action: "switchtraffic", keyspace: "rhd", workflow: "w" });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    // The reverse streams (on the old source) hold the new shards' binlogs.
    for (let i = 0; ; i++) {
      const held = await Promise.all(v.targets.map((t) => holdsOn(t.tablet)));
      if (held.every((h) => h.length === 1)) break;
      if (i > 500) throw new Error(`no reverse holds: ${JSON.stringify(held)}`);
      await sleep(20);
    }
    // Reversed, the forward streams hold the old source again; switched again, the reverse streams the new shards.
    expect((await api("POST", "/v1/workflows", { action: "reversetraffic", keyspace: "rhd", workflow: "w" })).status).toBe(200);
    const source = v.sources[0]?.tablet ?? "?";
    expect((await holdsOn(source)).map((h) => h.id).sort()).toEqual(v.targets.map((t) => `vreplication:${t.tablet}:w/-80`).sort());
    expect((await api("POST", "/v1/workflows", { action: "switchtraffic", keyspace: "rhd", workflow: "w" })).status).toBe(200);
    for (const t of v.targets) expect((await holdsOn(t.tablet)).length).toBe(1);
    expect((await api("POST", "/v1/workflows", { action: "complete", keyspace: "rhd", workflow: "w" })).status).toBe(200);
    for (const t of v.targets) expect(await holdsOn(t.tablet)).toEqual([]);
    expect((await api("POST", "/v1/workflows", { action: "complete", keyspace: "rhd", workflow: "w" })).status).toBe(200);
    for (const t of v.targets) expect(await holdsOn(t.tablet)).toEqual([]);
    expect((await sql("SELECT count(*) FROM t", undefined, "rhd")).rows).toEqual([[20]]);
  });

  it("a cancelled MoveTables leaves no hold on its source keyspace's tablets, nor a completed one of its reverse streams on the target's", async () => {
    const view = async () => (await api<{ keyspaces: { name: string; shards: { tablet: string }[] }[] }>("GET", "/v1/topology")).body;
    const tabletsOf = async (ks: string) => (await view()).keyspaces.find((k) => k.name === ks)?.shards.map((s) => s.tablet) ?? [];
    const move = async (wf: string, body: Record<string, unknown>) => api<Shown>("POST", "/v1/workflows", { keyspace: "rhm2", workflow: wf, ...body });
    const running = async (wf: string) => {
      for (let i = 0; ; i++) {
        const v = (await api<Shown>("GET", `/v1/workflows?keyspace=rhm2&workflow=${wf}`)).body;
        if (v.streams.length === 2 && v.streams.every((s) => s.phase === "running")) return;
        if (i > 500) throw new Error(`streams never ran: ${JSON.stringify(v)}`);
        await sleep(20);
      }
    };
    expect((await api("POST", "/v1/keyspaces", { name: "rhm1", shards: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/keyspaces", { name: "rhm2", shards: ["-80", "80-"] })).status).toBe(200);
    for (const t of ["a", "b"]) {
      await sql(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, v TEXT)`, undefined, "rhm1");
      for (let i = 1; i <= 10; i++) await sql(`INSERT INTO ${t} VALUES (?, 'x')`, [i], "rhm1");
    }
    const [source = "?"] = await tabletsOf("rhm1");
    const targets = await tabletsOf("rhm2");

    expect((await move("ma", { action: "create", kind: "movetables", sourceKeyspace: "rhm1", tables: ["a"] })).status).toBe(200);
    await running("ma");
    expect((await holdsOn(source)).length).toBe(2);
    expect((await move("ma", { action: "cancel" })).status).toBe(200);
    expect(await holdsOn(source)).toEqual([]);

    expect((await move("mb", { action: "create", kind: "movetables", sourceKeyspace: "rhm1", tables: ["b"] })).status).toBe(200);
    await running("mb");
    const sw = await move("mb", { action: "switchtraffic" });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    for (let i = 0; ; i++) {
      const held = await Promise.all(targets.map((t) => holdsOn(t)));
      if (held.every((h) => h.length === 1)) break;
      if (i > 500) throw new Error(`no reverse holds: ${JSON.stringify(held)}`);
      await sleep(20);
    }
    expect((await move("mb", { action: "complete" })).status).toBe(200);
    for (const t of [source, ...targets]) expect(await holdsOn(t)).toEqual([]);
    expect((await sql("SELECT count(*) FROM b", undefined, "rhm2")).rows).toEqual([[10]]);
  });

  it("a MoveTables reversetraffic holds the sources for the forward streams it starts again: a purge while it starts them takes nothing they need", async () => {
    const view = async () => (await api<{ keyspaces: { name: string; shards: { tablet: string }[] }[] }>("GET", "/v1/topology")).body;
    const move = async (body: Record<string, unknown>) => api<Shown>("POST", "/v1/workflows", { keyspace: "rhm4", workflow: "mc", ...body });
    const streamsRun = async (n: number) => {
      for (let i = 0; ; i++) {
        const v = (await api<Shown>("GET", "/v1/workflows?keyspace=rhm4&workflow=mc")).body;
        if (v.streams.filter((s) => s.phase === "running").length === n) return v;
        if (v.streams.some((s) => s.phase === "error") || i > 500) throw new Error(`streams: ${JSON.stringify(v.streams)}`);
        await sleep(20);
      }
    };
    expect((await api("POST", "/v1/keyspaces", { name: "rhm3", shards: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/keyspaces", { name: "rhm4", shards: ["-80", "80-"] })).status).toBe(200);
    for (const t of ["a", "o"]) await sql(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, v TEXT)`, undefined, "rhm3");
    for (let i = 1; i <= 10; i++) await sql("INSERT INTO a VALUES (?, 'x')", [i], "rhm3");
    const source = (await view()).keyspaces.find((k) => k.name === "rhm3")?.shards[0]?.tablet ?? "?";
    expect((await move({ action: "create", kind: "movetables", sourceKeyspace: "rhm3", tables: ["a"] })).status).toBe(200);
    await streamsRun(2);
    expect((await move({ action: "switchtraffic" })).status).toBe(200);
    for (let i = 11; i <= 15; i++) await sql("INSERT INTO a VALUES (?, 'y')", [i], "rhm4");

    // Between reading the sources' heads and creating the streams there: other tables' writes, then
    // a purge keeping nothing it may delete (a window of 0 seconds and 0 bytes).
    let purged = -1;
    armWorkflowHook("streams:heads-read", async () => {
      for (let i = 1; i <= 3; i++) await sql("INSERT INTO o VALUES (?, 'z')", [i], "rhm3");
      purged = unwrap(await tablet(source).purgeBinlog({ retentionSeconds: 0, retentionBytes: 0 })).deleted;
    });
    try {
      const rev = await move({ action: "reversetraffic" });
      expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    } finally {
      disarm();
    }
    expect(purged).toBeGreaterThan(0); // the purge ran inside the reverse, and deleted up to the holds
    await streamsRun(2);
    for (let i = 16; i <= 20; i++) await sql("INSERT INTO a VALUES (?, 'w')", [i], "rhm3");
    await sleep(200);
    expect((await move({ action: "switchtraffic" })).status).toBe(200);
    expect((await sql("SELECT count(*), min(id), max(id) FROM a", undefined, "rhm4")).rows).toEqual([[20, 1, 20]]);
  });
});
