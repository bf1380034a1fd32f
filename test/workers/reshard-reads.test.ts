// Switching a Reshard's reads apart from its writes (Vitess's `--tablet-types`). The invariant:
// a read-only statement goes to the side the workflow serves reads from and every write to the
// side it serves writes from, whatever order the user switches them in; the side serving reads
// alone changes nothing (its tablets refuse writes and roll back a "read" that wrote); Complete
// needs reads and writes on the targets and Cancel both on the sources; after Complete every
// acknowledged write is there.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import type { QueryResult } from "../../contract/tablet-rpc.ts";
import { armStreamFaults, disarmStreamFaults } from "../../tablet/stream-faults.ts";
import { api, sql } from "./helpers.ts";
import { sleep, workflows } from "./reshard-harness.ts";

type View = {
  state: string;
  reads?: string;
  writes?: string;
  streams: { phase: string; lagMs: number }[];
};

const caughtUp = (v: View) => v.streams.length === 2 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000);

/** The shards VEXPLAIN says the statement goes to. */
async function shardsOf(ks: string, text: string): Promise<string[]> {
  const r = await sql(`VEXPLAIN ${text}`, undefined, ks);
  const plan = JSON.parse(String(r.rows[0]?.[0])) as unknown;
  const out = new Set<string>();
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n && typeof n === "object") {
      for (const [k, v] of Object.entries(n)) {
        if (k === "shards" && Array.isArray(v)) for (const s of v) out.add(String(s));
        else walk(v);
      }
    }
  };
  walk(plan);
  return [...out].sort();
}

async function setup(ks: string, rows: number): Promise<Map<number, string>> {
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-"] })).status).toBe(200);
  const vschema = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] } } };
  expect((await api("POST", "/v1/vschema", { keyspace: ks, vschema })).status).toBe(200);
  await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", undefined, ks);
  const model = new Map<number, string>();
  for (let i = 1; i <= rows; i++) {
    await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `u${i}`], ks);
    model.set(i, `u${i}`);
  }
  const c = await workflows(ks, "split").call({ action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"] });
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  await workflows(ks, "split").until("copy and catch-up", caughtUp);
  return model;
}

async function allRows(ks: string): Promise<[number, string][]> {
  return (await sql("SELECT id, name FROM users ORDER BY id", undefined, ks)).rows as [number, string][];
}

const sorted = (m: Map<number, string>) => [...m].sort((a, b) => a[0] - b[0]);

describe("reshard: reads and writes switched apart", () => {
  it("reads go to the targets ahead of the writes, back, and ahead again; complete and cancel wait for both", async () => {
    const KS = "rr1";
    const model = await setup(KS, 40);
    const read = "SELECT id, name FROM users WHERE id > 0";
    expect(await shardsOf(KS, read)).toEqual(["-"]);

    const reads = await workflows(KS, "split").call({ action: "switchtraffic", tabletTypes: ["replica", "rdonly"] });
    expect(reads.status, JSON.stringify(reads.body)).toBe(200);
    expect(reads.body).toMatchObject({ state: "running", reads: "targets", writes: "sources" });
    expect(await shardsOf(KS, read)).toEqual(["-80", "80-"]);
    expect(await shardsOf(KS, "UPDATE users SET name = 'x' WHERE id > 0")).toEqual(["-"]);
    const topo = await api<{
      keyspaces: { name: string; readShards?: { name: string }[] }[];
      workflows: { keyspace: string; name: string; live?: { rowsCopied: number; streams: { phase: string }[] } }[];
    }>("GET", "/v1/topology");
    expect(topo.body.keyspaces.find((k) => k.name === KS)?.readShards?.map((s) => s.name)).toEqual(["-80", "80-"]);
    // Its progress too, read from the streams.
    const live = topo.body.workflows.find((w) => w.keyspace === KS && w.name === "split")?.live;
    expect(live?.rowsCopied).toBe(40);
    expect(live?.streams.map((s) => s.phase)).toEqual(["running", "running"]);

    // Writes still go to the source; the targets see them once the stream applies them. With
    // the queue losing every part, a read does not see the write: it is served by the targets.
    armStreamFaults({ drop: true });
    await sql("INSERT INTO users (id, name) VALUES (1000, 'late')", undefined, KS);
    model.set(1000, "late");
    expect((await sql("SELECT name FROM users WHERE id = 1000", undefined, KS)).rows).toEqual([]);
    armStreamFaults({ stallMs: 200 });
    const end = Date.now() + 15_000;
    while ((await sql("SELECT name FROM users WHERE id = 1000", undefined, KS)).rows.length === 0) {
      if (Date.now() > end) throw new Error("the targets never received the write");
      await sleep(50);
    }
    disarmStreamFaults();

    // A target serving reads only takes no write, not even one sent as a read.
    const [shard] = (await api<{ keyspaces: { name: string; readShards?: { name: string; tablet: string }[] }[] }>("GET", "/v1/topology")).body.keyspaces.find(
      (k) => k.name === KS,
    )?.readShards ?? [{ name: "", tablet: "" }];
    const stub = env.TABLET.get(env.TABLET.idFromName(shard?.tablet ?? ""));
    const version = (await api<{ version: number }>("GET", "/v1/topology")).body.version;
    for (const kind of ["write", "read"] as const) {
      const r = (await stub.execute({ keyspace: KS, shard: shard?.name ?? "", version }, [
        { sql: "UPDATE users SET name = 'sneaky'", params: [], kind },
      ])) as Envelope<QueryResult[]>;
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe("NOT_SERVING");
    }
    const sneaky = await runInDurableObject(
      stub,
      (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM users WHERE name = 'sneaky'").one().n,
    );
    expect(sneaky).toBe(0);

    // Cancel waits for the reads to come back; Complete for the writes to move.
    for (const action of ["cancel", "complete"]) {
      const r = await workflows(KS, "split").call({ action });
      expect(r.status).toBe(400);
      expect(r.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });
    }

    // The writes follow (the reads stay on the targets); then the reads go back to the sources alone.
    const writes = await workflows(KS, "split").call({ action: "switchtraffic", tabletTypes: ["primary"] });
    expect(writes.status, JSON.stringify(writes.body)).toBe(200);
    expect(writes.body).toMatchObject({ state: "switched", reads: "targets", writes: "targets" });
    expect(await shardsOf(KS, read)).toEqual(["-80", "80-"]);
    expect(await shardsOf(KS, "UPDATE users SET name = 'x' WHERE id > 0")).toEqual(["-80", "80-"]);
    await sql("UPDATE users SET name = 'moved' WHERE id = 1", undefined, KS);
    model.set(1, "moved");

    const back = await workflows(KS, "split").call({ action: "reversetraffic", tabletTypes: ["rdonly"] });
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body).toMatchObject({ state: "switched", reads: "sources", writes: "targets" });
    expect(await shardsOf(KS, read)).toEqual(["-"]);
    expect((await workflows(KS, "split").call({ action: "complete" })).status).toBe(400);
    // The sources follow the targets by the reverse streams.
    const end2 = Date.now() + 15_000;
    while (JSON.stringify(await allRows(KS)) !== JSON.stringify(sorted(model))) {
      if (Date.now() > end2) throw new Error(`the sources never caught up: ${JSON.stringify(await allRows(KS))}`);
      await sleep(50);
    }

    const again = await workflows(KS, "split").call({ action: "switchtraffic", tabletTypes: ["replica"] });
    expect(again.body).toMatchObject({ state: "switched", reads: "targets", writes: "targets" });
    const done = await workflows(KS, "split").call({ action: "complete" });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(await allRows(KS)).toEqual(sorted(model));
    const after = await api<{ keyspaces: { name: string; readShards?: unknown }[] }>("GET", "/v1/topology");
    expect(after.body.keyspaces.find((k) => k.name === KS)?.readShards).toBeUndefined();
  }, 120_000);

  it("reversetraffic of every type after a reads-only switch brings both back, and cancel then works", async () => {
    const KS = "rr2";
    const model = await setup(KS, 10);
    expect((await workflows(KS, "split").call({ action: "switchtraffic", tabletTypes: ["replica"] })).body).toMatchObject({
      reads: "targets",
      writes: "sources",
    });
    // A second reads switch is a repeat.
    expect((await workflows(KS, "split").call({ action: "switchtraffic", tabletTypes: ["replica"] })).body).toMatchObject({
      reads: "targets",
      writes: "sources",
    });
    const r = await workflows(KS, "split").call({ action: "reversetraffic", tabletTypes: ["replica", "rdonly"] });
    expect(r.body).toMatchObject({ state: "running", reads: "sources", writes: "sources" });
    expect(await shardsOf(KS, "SELECT * FROM users")).toEqual(["-"]);
    const c = await workflows(KS, "split").call({ action: "cancel" });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    expect(await allRows(KS)).toEqual(sorted(model));
  }, 60_000);

  it("refuses unknown tablet types, tablet types on other actions, and a MoveTables switched by type", async () => {
    const KS = "rr3";
    await setup(KS, 3);
    for (const body of [
      { action: "switchtraffic", tabletTypes: ["master"] },
      { action: "switchtraffic", tabletTypes: [] },
      { action: "switchtraffic", tabletTypes: "replica,bogus" },
      { action: "complete", tabletTypes: ["replica"] },
      { action: "vdiff", tabletTypes: ["primary"] },
    ]) {
      const r = await workflows(KS, "split").call(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    // The comma-separated spelling works.
    expect((await workflows(KS, "split").call({ action: "switchtraffic", tabletTypes: "replica, rdonly" })).body).toMatchObject({ reads: "targets" });
    expect((await workflows(KS, "split").call({ action: "reversetraffic", tabletTypes: "replica" })).body).toMatchObject({ reads: "sources" });
    expect((await workflows(KS, "split").call({ action: "cancel" })).status).toBe(200);

    expect((await api("POST", "/v1/keyspaces", { name: "rr3src", shards: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/keyspaces", { name: "rr3dst", shards: ["-80", "80-"] })).status).toBe(200);
    await sql("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)", undefined, "rr3src");
    const mt = await api<Record<string, unknown>>("POST", "/v1/workflows", {
      action: "create",
      kind: "movetables",
      keyspace: "rr3dst",
      workflow: "mv",
      sourceKeyspace: "rr3src",
      tables: ["item"],
    });
    expect(mt.status, JSON.stringify(mt.body)).toBe(200);
    const typed = await api<{ error: Record<string, unknown> }>("POST", "/v1/workflows", {
      action: "switchtraffic",
      keyspace: "rr3dst",
      workflow: "mv",
      tabletTypes: ["replica"],
    });
    expect(typed.status).toBe(400);
    expect(typed.body.error).toMatchObject({ code: "UNSUPPORTED", id: "VD2720" });
    expect((await api("POST", "/v1/workflows", { action: "cancel", keyspace: "rr3dst", workflow: "mv" })).status).toBe(200);
  }, 60_000);
});
