// Online resharding end to end in workerd: a keyspace's shard -80 splits into -40 and 40-80
// while a client keeps writing. The invariant: every write acknowledged to the client is in the
// keyspace afterwards, no write fails, every row lives on the shard its key range says, and
// VDiff finds the sources and targets equal before the switch; reverse and complete work too.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { armStreamFaults, disarmStreamFaults } from "../../tablet/stream-faults.ts";
import { arm, disarm } from "../../topology/failpoints.ts";
import { describe, expect, it } from "vitest";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { createVindex } from "../../topology/vindex.ts";
import { api, sql } from "./helpers.ts";

const KS = "rs1";
const ADMIN = {};

type View = {
  state: string;
  streams: { id: string; phase: string; lagMs: number; rowsCopied: number; message: string | null }[];
  rowsCopied: number;
  pauseMs?: number;
};

async function wf(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await api<Record<string, unknown>>("POST", "/v1/workflows", { keyspace: KS, workflow: "split", ...body }, ADMIN);
  return { status: r.status, body: r.body };
}

async function show(): Promise<View> {
  const r = await api<View>("GET", `/v1/workflows?keyspace=${KS}&workflow=split`);
  expect(r.status).toBe(200);
  return r.body;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: (v: View) => boolean, ms = 20_000): Promise<View> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await show();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

/** A client that writes in a loop and remembers what was acknowledged. */
function writer(model: Map<number, string>, ids: { next: number }) {
  let stop = false;
  const errors: unknown[] = [];
  const done = (async () => {
    let i = 0;
    while (!stop) {
      i++;
      const id = i % 3 === 0 && model.size > 0 ? [...model.keys()][i % model.size] : ids.next++;
      if (id === undefined) continue;
      const name = `w${i}`;
      const r = await api("POST", "/v1/sql", {
        keyspace: KS,
        sql: "INSERT INTO users (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        params: [id, name],
      });
      if (r.status === 200) model.set(id, name);
      else errors.push(r.body);
      await sleep(2);
    }
  })();
  return {
    errors,
    async stop() {
      stop = true;
      await done;
    },
  };
}

function shardOf(shards: readonly string[], id: number): string {
  const ksid = createVindex("xxhash").map(id);
  return shards.find((s) => keyRangeContains(parseKeyRange(s), ksid)) ?? "?";
}

describe("reshard: split -80 into -40,40-80 under live writes", () => {
  it("copies, catches up, diffs, switches with zero failed writes, reverses, switches and completes", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: KS, shards: ["-80", "80-"] }, ADMIN)).status).toBe(200);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)", undefined, KS);
    await sql("CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT)", undefined, KS);
    expect(
      (
        await api(
          "POST",
          "/v1/vschema",
          {
            keyspace: KS,
            vschema: {
              sharded: true,
              vindexes: { xx: { type: "xxhash" } },
              tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] }, countries: { type: "reference" } },
            },
          },
          ADMIN,
        )
      ).status,
    ).toBe(200);
    const model = new Map<number, string>();
    for (let i = 1; i <= 120; i++) {
      await sql("INSERT INTO users (id, name, score, data) VALUES (?, ?, 1.0, x'00ff')", [i, `u${i}`], KS);
      model.set(i, `u${i}`);
    }
    await sql("INSERT INTO countries VALUES ('fr', 'France'), ('jp', 'Japan')", undefined, KS);

    const w = writer(model, { next: 1000 });
    // The queue repeats every part, then reorders them, then the pump restarts: none of it may show.
    armStreamFaults({ duplicate: 1 });
    const created = await wf({ action: "create", kind: "reshard", sourceShards: ["-80"], targetShards: ["-40", "40-80"] });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    await sleep(300);
    armStreamFaults({ reorder: 3, stallMs: 300 });
    await sleep(300);
    armStreamFaults({ restart: true, stallMs: 300 });
    await until("copy and catch-up", (v) => v.streams.length === 2 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000));
    disarmStreamFaults();
    // While the workflow is open a column may be added; a new table would escape the streams.
    await sql("ALTER TABLE users ADD COLUMN extra TEXT", undefined, KS);
    const ddl = await api<{ error: { code: string; id: string } }>("POST", "/v1/sql", { keyspace: KS, sql: "CREATE TABLE later (id INTEGER PRIMARY KEY)" });
    expect(ddl.body.error).toMatchObject({ code: "UNSUPPORTED", id: "VD2703" });
    for (const action of ["complete", "reversetraffic"]) {
      const early = await wf({ action });
      expect(early.status).toBe(400);
      expect(early.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    const diff = await wf({ action: "vdiff" });
    expect(diff.status, JSON.stringify(diff.body)).toBe(200);
    expect(diff.body).toMatchObject({ match: true, done: true });

    // From here the queue loses everything: the writes since reach the targets only by the switch's drain.
    armStreamFaults({ drop: true });
    const before = model.size;
    while (model.size < before + 5) await sleep(5);
    const switched = await wf({ action: "switchtraffic" });
    disarmStreamFaults();
    expect(switched.status, JSON.stringify(switched.body)).toBe(200);
    expect(switched.body["state"]).toBe("switched");
    expect(typeof switched.body["pauseMs"]).toBe("number");
    await sleep(200);
    const reversed = await wf({ action: "reversetraffic" });
    expect(reversed.status, JSON.stringify(reversed.body)).toBe(200);
    await until("forward streams running again", (v) => v.state === "running" && v.streams.every((s) => s.phase === "running"));
    expect((await wf({ action: "switchtraffic" })).status).toBe(200);
    await sleep(100);
    await w.stop();
    expect(w.errors).toEqual([]);
    const late = await wf({ action: "cancel" });
    expect(late.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });
    const completed = await wf({ action: "complete" });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);

    // The keyspace now has -40, 40-80, 80-; every acknowledged write is there, on its shard.
    const topo = await api<{ keyspaces: { name: string; shards: { name: string }[] }[] }>("GET", "/v1/topology");
    const shards = topo.body.keyspaces.find((k) => k.name === KS)?.shards.map((s) => s.name);
    expect(shards).toEqual(["-40", "40-80", "80-"]);
    const rows = await sql("SELECT id, name FROM users ORDER BY id", undefined, KS);
    expect(rows.rows).toEqual([...model].sort((a, b) => a[0] - b[0]).map(([id, name]) => [id, name]));
    const exact = await sql("SELECT typeof(score), hex(data) FROM users WHERE id = 7", undefined, KS);
    expect(exact.rows).toEqual([["real", "00FF"]]);
    expect((await sql("SELECT code FROM countries ORDER BY code", undefined, KS)).rows).toEqual([["fr"], ["jp"]]);
    // Each shard's tablet holds exactly the rows of its key range; the retired source holds nothing.
    const view = await api<{ keyspaces: { name: string; shards: { name: string; tablet: string }[] }[] }>("GET", "/v1/topology");
    const ks = view.body.keyspaces.find((k) => k.name === KS);
    let total = 0;
    for (const shard of ks?.shards ?? []) {
      const ids = await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(shard.tablet)), (_i, state) =>
        state.storage.sql
          .exec<{ id: number }>("SELECT id FROM users")
          .toArray()
          .map((r) => r.id),
      );
      for (const id of ids) expect(shardOf(["-40", "40-80", "80-"], id)).toBe(shard.name);
      total += ids.length;
    }
    expect(total).toBe(model.size);
    const retired = await runInDurableObject(
      env.TABLET.get(env.TABLET.idFromName(`${KS}/-80`)),
      (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name = 'users'").one().n,
    );
    expect(retired).toBe(0);
  }, 120_000);
});

async function reshard(ks: string, name: string, from: string[], to: string[]): Promise<void> {
  const c = await api<Record<string, unknown>>("POST", "/v1/workflows", {
    action: "create",
    keyspace: ks,
    workflow: name,
    sourceShards: from,
    targetShards: to,
  });
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  const end = Date.now() + 20_000;
  for (;;) {
    const v = (await api<View>("GET", `/v1/workflows?keyspace=${ks}&workflow=${name}`)).body;
    if (v.streams.length > 0 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000)) break;
    if (Date.now() > end) throw new Error(`${name}: ${JSON.stringify(v)}`);
    await sleep(50);
  }
  for (const action of ["vdiff", "switchtraffic", "complete"]) {
    const r = await api<Record<string, unknown>>("POST", "/v1/workflows", { action, keyspace: ks, workflow: name });
    expect(r.status, `${action}: ${JSON.stringify(r.body)}`).toBe(200);
    if (action === "vdiff") expect(r.body).toMatchObject({ match: true, done: true });
  }
}

describe("reshard: merge and 2→3", () => {
  it("merges -40,40-80 into -80, then reshards -80,80- into three shards, keeping every row on its shard", async () => {
    const ks = "rs2";
    expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-40", "40-80", "80-"] })).status).toBe(200);
    await sql("CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT UNIQUE, price REAL)", undefined, ks);
    const want: unknown[][] = [];
    for (let i = 1; i <= 60; i++) {
      await sql("INSERT INTO items (id, label, price) VALUES (?, ?, ?)", [i, `l${i}`, i + 0.5], ks);
      want.push([i, `l${i}`, i + 0.5]);
    }
    await reshard(ks, "merge", ["-40", "40-80"], ["-80"]);
    await reshard(ks, "three", ["-80", "80-"], ["-55", "55-aa", "aa-"]);
    const topo = await api<{ keyspaces: { name: string; shards: { name: string }[] }[] }>("GET", "/v1/topology");
    expect(topo.body.keyspaces.find((k) => k.name === ks)?.shards.map((s) => s.name)).toEqual(["-55", "55-aa", "aa-"]);
    expect((await sql("SELECT id, label, price FROM items ORDER BY id", undefined, ks)).rows).toEqual(want);
    // The keyspace-wide unique key still holds across the new shards.
    const dup = await api<{ error: { code: string } }>("POST", "/v1/sql", { keyspace: ks, sql: "INSERT INTO items (id, label) VALUES (999, 'l7')" });
    expect(dup.body.error.code).toBe("CONSTRAINT");
  }, 120_000);
});

describe("reshard: a Topology that stops mid-switch", () => {
  it.each(["switch-denied", "switch-drained"] as const)(
    "stopping after %s leaves no shard refusing writes: the next action (or the alarm) undoes it, and the switch then succeeds",
    async (step) => {
      const ks = `rs3${step.replace("switch-", "")}`;
      expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-80", "80-"] })).status).toBe(200);
      await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, ks);
      for (let i = 1; i <= 20; i++) await sql("INSERT INTO t VALUES (?, 'a')", [i], ks);
      const c = await api("POST", "/v1/workflows", { action: "create", keyspace: ks, workflow: "w", sourceShards: ["-80"], targetShards: ["-40", "40-80"] });
      expect(c.status).toBe(200);
      const end = Date.now() + 20_000;
      for (;;) {
        const v = (await api<View>("GET", `/v1/workflows?keyspace=${ks}&workflow=w`)).body;
        if (v.streams.length === 2 && v.streams.every((s) => s.phase === "running")) break;
        if (Date.now() > end) throw new Error(JSON.stringify(v));
        await sleep(50);
      }
      arm({ crashAt: step });
      const crashed = await api<{ error: { code: string } }>("POST", "/v1/workflows", { action: "switchtraffic", keyspace: ks, workflow: "w" });
      disarm();
      expect(crashed.status).not.toBe(200);
      // The next action on the workflow finds the interrupted switch and undoes it first.
      const v = (await api<View>("GET", `/v1/workflows?keyspace=${ks}&workflow=w`)).body;
      expect(v.state).toBe("running");
      expect(v.streams.every((s) => s.phase === "running")).toBe(true);
      for (let i = 1; i <= 20; i++) await sql("UPDATE t SET v = 'b' WHERE id = ?", [i], ks);
      const sw = await api("POST", "/v1/workflows", { action: "switchtraffic", keyspace: ks, workflow: "w" });
      expect(sw.status, JSON.stringify(sw.body)).toBe(200);
      expect((await sql("SELECT count(*) FROM t WHERE v = 'b'", undefined, ks)).rows).toEqual([[20]]);
    },
    60_000,
  );
});

describe("reshard: a Topology that stops right after a flip", () => {
  /** Waits until the workflow's streams (on the side `show` lists) are `n`, all running. */
  async function untilRunning(ks: string, n: number): Promise<View> {
    const end = Date.now() + 20_000;
    for (;;) {
      const v = (await api<View>("GET", `/v1/workflows?keyspace=${ks}&workflow=w`)).body;
      if (v.streams.length === n && v.streams.every((s) => s.phase === "running")) return v;
      if (Date.now() > end) throw new Error(JSON.stringify(v));
      await sleep(50);
    }
  }

  it("before the streams back start: the next action starts them from the heads before the flip, so writes taken since go back on reverse (both ways)", async () => {
    const ks = "rs3flip";
    expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-80", "80-"] })).status).toBe(200);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, ks);
    for (let i = 1; i <= 20; i++) await sql("INSERT INTO t VALUES (?, 'a')", [i], ks);
    const c = await api("POST", "/v1/workflows", { action: "create", keyspace: ks, workflow: "w", sourceShards: ["-80"], targetShards: ["-40", "40-80"] });
    expect(c.status).toBe(200);
    await untilRunning(ks, 2);

    arm({ crashAt: "switch-flipped" });
    const crashed = await api("POST", "/v1/workflows", { action: "switchtraffic", keyspace: ks, workflow: "w" });
    disarm();
    expect(crashed.status).not.toBe(200);
    // The targets serve now; what they take before the reverse streams exist must not be lost.
    for (let i = 1; i <= 20; i++) await sql("UPDATE t SET v = 'b' WHERE id = ?", [i], ks);
    const switched = await untilRunning(ks, 2);
    expect(switched.state).toBe("switched");
    const back = await api("POST", "/v1/workflows", { action: "reversetraffic", keyspace: ks, workflow: "w" });
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect((await sql("SELECT count(*) FROM t WHERE v = 'b'", undefined, ks)).rows).toEqual([[20]]);

    await untilRunning(ks, 2);
    const sw = await api("POST", "/v1/workflows", { action: "switchtraffic", keyspace: ks, workflow: "w" });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    arm({ crashAt: "reverse-flipped" });
    const crashedReverse = await api("POST", "/v1/workflows", { action: "reversetraffic", keyspace: ks, workflow: "w" });
    disarm();
    expect(crashedReverse.status).not.toBe(200);
    // The sources serve again; their writes since the flip must reach the targets when they switch again.
    for (let i = 1; i <= 20; i++) await sql("UPDATE t SET v = 'c' WHERE id = ?", [i], ks);
    const running = await untilRunning(ks, 2);
    expect(running.state).toBe("running");
    const again = await api("POST", "/v1/workflows", { action: "switchtraffic", keyspace: ks, workflow: "w" });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect((await sql("SELECT count(*) FROM t WHERE v = 'c'", undefined, ks)).rows).toEqual([[20]]);
  }, 60_000);
});

describe("reshard: VDiff of a split", () => {
  it("compares every target of a split (its streams share one id) and finds a row missing on each", async () => {
    const ks = "rs4";
    expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-80", "80-"] })).status).toBe(200);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", undefined, ks);
    for (let i = 1; i <= 60; i++) await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `u${i}`], ks);
    const inSource = [...Array(60).keys()].map((i) => i + 1).filter((id) => shardOf(["-80", "80-"], id) === "-80");
    const c = await api<{ targets: { shard: string; tablet: string }[] }>("POST", "/v1/workflows", {
      action: "create",
      keyspace: ks,
      workflow: "split",
      sourceShards: ["-80"],
      targetShards: ["-40", "40-80"],
    });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    const end = Date.now() + 20_000;
    for (;;) {
      const v = (await api<View>("GET", `/v1/workflows?keyspace=${ks}&workflow=split`)).body;
      if (v.streams.length === 2 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000)) break;
      if (Date.now() > end) throw new Error(JSON.stringify(v));
      await sleep(50);
    }
    const same = await api<{ match: boolean; done: boolean; tables: { table: string; compared: number }[] }>("POST", "/v1/workflows", {
      action: "vdiff",
      keyspace: ks,
      workflow: "split",
    });
    expect(same.body).toMatchObject({ match: true, done: true, tables: [{ table: "users", compared: inSource.length }] });
    // One row goes missing on each target, behind the stream's back.
    for (const t of c.body.targets) {
      const gone = inSource.find((id) => shardOf(["-40", "40-80"], id) === t.shard);
      await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(t.tablet)), (_i, state) => {
        state.storage.sql.exec("DELETE FROM users WHERE id = ?", gone ?? -1);
      });
    }
    const diff = await api<{ match: boolean; done: boolean; tables: { table: string; missing: number }[] }>("POST", "/v1/workflows", {
      action: "vdiff",
      keyspace: ks,
      workflow: "split",
    });
    expect(diff.body).toMatchObject({ match: false, done: true, tables: [{ table: "users", missing: 2 }] });
  }, 60_000);
});
