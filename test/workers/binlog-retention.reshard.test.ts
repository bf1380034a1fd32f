// A reshard's streams hold their position on the source: the most eager purge (a window of 0
// seconds and 0 bytes), run over and over while the streams copy and catch up under live writes,
// never cuts them off, and the reshard completes with exactly the rows acknowledged.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import type { PurgeResult } from "../../tablet/binlog-retention.ts";
import { api, sql } from "./helpers.ts";

const KS = "rret";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type View = { state: string; streams: { id: string; phase: string; lagMs: number; message: string | null }[] };

async function wf(body: Record<string, unknown>) {
  return api<Record<string, unknown>>("POST", "/v1/workflows", { keyspace: KS, workflow: "split", ...body }, {});
}
async function show(): Promise<View> {
  return (await api<View>("GET", `/v1/workflows?keyspace=${KS}&workflow=split`)).body;
}

describe("binlog retention under a reshard", () => {
  it("never purges what a running stream still needs; the reshard completes exactly", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: KS, shards: ["-80", "80-"] }, {})).status).toBe(200);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", undefined, KS);
    const vs = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] } } };
    expect((await api("POST", "/v1/vschema", { keyspace: KS, vschema: vs }, {})).status).toBe(200);
    const model = new Map<number, string>();
    for (let i = 1; i <= 200; i++) {
      await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `u${i}`], KS);
      model.set(i, `u${i}`);
    }
    let stop = false;
    const errors: unknown[] = [];
    const writes = (async () => {
      for (let i = 0; !stop; i++) {
        const id = i % 2 === 0 ? 1 + (i % 200) : 1000 + i;
        const r = await api("POST", "/v1/sql", {
          keyspace: KS,
          sql: "INSERT INTO users (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
          params: [id, `w${i}`],
        });
        if (r.status === 200) model.set(id, `w${i}`);
        else errors.push(r.body);
        await sleep(2);
      }
    })();
    const source = env.TABLET.get(env.TABLET.idFromName(`${KS}/-80`));
    expect((await wf({ action: "create", kind: "reshard", sourceShards: ["-80"], targetShards: ["-40", "40-80"] })).status).toBe(200);
    // Each stream took its hold on the source when it was created (and its reads move it on).
    await sleep(300);
    let purged = 0;
    const end = Date.now() + 20_000;
    for (;;) {
      const r = (await source.purgeBinlog({ retentionSeconds: 0, retentionBytes: 0 })) as unknown as Envelope<PurgeResult>;
      if (!r.ok) throw new Error(r.error.message);
      purged += r.value.deleted;
      const v = await show();
      expect(v.streams.filter((s) => s.phase === "error")).toEqual([]);
      if (purged > 0 && v.streams.length === 2 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000)) break;
      if (Date.now() > end) throw new Error(`still ${JSON.stringify(v)}, purged ${purged}`);
      await sleep(50);
    }
    expect(purged).toBeGreaterThan(0);
    const st = (await source.binlogRetention()) as unknown as Envelope<{ floor: number; holds: { id: string }[] }>;
    if (!st.ok) throw new Error(st.error.message);
    expect(st.value.floor).toBeGreaterThan(0);
    const ids = st.value.holds.map((h) => h.id).sort();
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(/^vreplication:rret\/(-40|40-80)(~\d+)?:split\/-80$/);
    const diff = await wf({ action: "vdiff" });
    expect(diff.body).toMatchObject({ match: true, done: true });
    expect((await wf({ action: "switchtraffic" })).status).toBe(200);
    stop = true;
    await writes;
    expect(errors).toEqual([]);
    expect((await wf({ action: "complete" })).status).toBe(200);
    const rows = await sql("SELECT id, name FROM users ORDER BY id", undefined, KS);
    expect(rows.rows).toEqual([...model].sort((a, b) => a[0] - b[0]).map(([id, name]) => [id, name]));
  }, 90_000);

  it("a stream whose source purged past it (its hold released) fails, naming it, instead of a gap", async () => {
    const ks = "rret2";
    expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-80", "80-"] }, {})).status).toBe(200);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", undefined, ks);
    const vs = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] } } };
    expect((await api("POST", "/v1/vschema", { keyspace: ks, vschema: vs }, {})).status).toBe(200);
    for (let i = 1; i <= 20; i++) await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `u${i}`], ks);
    const call = (body: Record<string, unknown>) => api<Record<string, unknown>>("POST", "/v1/workflows", { keyspace: ks, workflow: "split", ...body }, {});
    const view = async () => (await api<View>("GET", `/v1/workflows?keyspace=${ks}&workflow=split`)).body;
    expect((await call({ action: "create", kind: "reshard", sourceShards: ["-80"], targetShards: ["-40", "40-80"] })).status).toBe(200);
    for (let end = Date.now() + 20_000; ; await sleep(50)) {
      const v = await view();
      if (v.streams.length === 2 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000)) break;
      if (Date.now() > end) throw new Error(JSON.stringify(v));
    }
    expect((await call({ action: "stop" })).status).toBe(200);
    for (let i = 100; i < 140; i++) await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `v${i}`], ks);
    // Eight days on, the stopped streams' holds (not advanced) are released and the binlog purged past them.
    const source = env.TABLET.get(env.TABLET.idFromName(`${ks}/-80`));
    const r = (await source.purgeBinlog({ retentionSeconds: 0, retentionBytes: 0 }, Date.now() + 8 * 86_400_000)) as unknown as Envelope<PurgeResult>;
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.released).toHaveLength(2);
    expect((await call({ action: "start" })).status).toBe(200);
    for (let end = Date.now() + 20_000; ; await sleep(50)) {
      const v = await view();
      if (v.streams.length === 2 && v.streams.every((s) => s.phase === "error")) {
        for (const s of v.streams) expect(s.message).toMatch(/stream vreplication:rret2\/(-40|40-80)(~\d+)?:split\/-80 was cut off by binlog retention at /);
        break;
      }
      expect(v.streams.filter((s) => s.phase === "running" && s.lagMs < 1000 && s.message === null).length === 2 && Date.now() > end).toBe(false);
      if (Date.now() > end) throw new Error(JSON.stringify(v));
    }
  }, 60_000);
});
