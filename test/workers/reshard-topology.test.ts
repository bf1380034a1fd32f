// The Topology's workflow primitives: a Reshard is recorded with fresh target tablets (not
// serving, with the schema); switchWrites flips the keyspace's shard set to them in one step
// (the gate then reaches the targets), reverseWrites flips back, complete empties the sources,
// cancel empties the targets. Bad input is refused with its code and changes nothing, and a
// retry of any step answers the same record.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import type { ErrorBody } from "../../contract/errors.ts";
import type { KeyspaceGraph, TopologyView } from "../../contract/serving-graph.ts";
import { tabletRpc, type QueryResult, type TabletStatus } from "../../contract/tablet-rpc.ts";
import { topologyRpc } from "../../contract/topology-rpc.ts";
import { arm, disarm } from "../../topology/failpoints.ts";
import { shardOf } from "./ddl-helpers.ts";
import { api, sql } from "./helpers.ts";

const topo = () => topologyRpc(env.TOPOLOGY);

async function ok<T>(p: Promise<Envelope<T>>): Promise<T> {
  const e = await p;
  if (!e.ok) throw new Error(`expected success, got ${JSON.stringify(e.error)}`);
  return e.value;
}

async function refused<T>(p: Promise<Envelope<T>>): Promise<ErrorBody> {
  const e = await p;
  if (e.ok) throw new Error(`expected a refusal, got ${JSON.stringify(e.value)}`);
  return e.error;
}

/** Everything the Topology holds, to show a refusal changed nothing. */
function topologyTables(): Promise<unknown> {
  return runInDurableObject(env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global")), (_i, state) => {
    const all = (q: string) => state.storage.sql.exec(q).toArray();
    return {
      meta: all("SELECT * FROM _vt_topo_meta ORDER BY k"),
      keyspaces: all("SELECT * FROM _vt_topo_keyspaces ORDER BY name"),
      shards: all("SELECT * FROM _vt_topo_shards ORDER BY keyspace, name"),
      workflows: all("SELECT * FROM _vt_topo_workflows ORDER BY keyspace, name"),
    };
  });
}

async function keyspace(name: string): Promise<KeyspaceGraph> {
  const ks = (await ok(topo().graph())).keyspaces[name];
  if (!ks) throw new Error(`no keyspace ${name}`);
  return ks;
}

async function status(tablet: string): Promise<TabletStatus> {
  return ok(Promise.resolve(tabletRpc(env.TABLET, tablet).status()));
}

async function makeKeyspace(name: string, shards: number | string[]): Promise<void> {
  const r = await api("POST", "/v1/keyspaces", { name, shards });
  expect(r.status).toBe(200);
}

describe("workflow records: refusals", () => {
  it("refuses each bad Reshard request with its code, changing nothing", async () => {
    await makeKeyspace("rsb", 4);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "rsb");
    await makeKeyspace("rsu", ["-"]);
    await makeKeyspace("rsk", 2);
    const vschema = { sharded: true, vindexes: { xxhash: { type: "xxhash" } }, tables: { nokey: { column_vindexes: [{ column: "a", name: "xxhash" }] } } };
    expect((await api("POST", "/v1/vschema", { keyspace: "rsk", vschema })).status).toBe(200);
    await sql("CREATE TABLE nokey (a INTEGER, b TEXT)", undefined, "rsk");
    const held = await ok(topo().createReshard("rsb", "held", ["-40"], ["-20", "20-40"]));
    expect(held.state).toBe("created");

    const cases: [string, () => Promise<Envelope<unknown>>, string, string?][] = [
      ["unknown keyspace", () => topo().createReshard("nope", "w", ["-80"], ["-40", "40-80"]), "INVALID_ARGUMENT"],
      ["unsharded keyspace", () => topo().createReshard("rsu", "w", ["-"], ["-80", "80-"]), "INVALID_ARGUMENT"],
      ["bad workflow name", () => topo().createReshard("rsb", "1w", ["40-80"], ["40-60", "60-80"]), "INVALID_ARGUMENT"],
      ["reserved workflow name", () => topo().createReshard("rsb", "_vtw", ["40-80"], ["40-60", "60-80"]), "INVALID_ARGUMENT"],
      ["unknown source shard", () => topo().createReshard("rsb", "w", ["-80"], ["-40", "40-80"]), "INVALID_ARGUMENT"],
      ["unreadable key range", () => topo().createReshard("rsb", "w", ["zz"], ["-40"]), "INVALID_ARGUMENT"],
      ["no sources", () => topo().createReshard("rsb", "w", [], ["-40"]), "INVALID_ARGUMENT"],
      ["sources twice", () => topo().createReshard("rsb", "w", ["40-80", "40-80"], ["40-60", "60-80"]), "INVALID_ARGUMENT"],
      ["sources not adjacent", () => topo().createReshard("rsb", "w", ["40-80", "c0-"], ["40-60", "60-80", "c0-"]), "INVALID_ARGUMENT"],
      ["targets overlap", () => topo().createReshard("rsb", "w", ["40-80"], ["40-70", "60-80"]), "INVALID_ARGUMENT"],
      ["targets leave a gap", () => topo().createReshard("rsb", "w", ["40-80"], ["40-50", "60-80"]), "INVALID_ARGUMENT"],
      ["targets start late", () => topo().createReshard("rsb", "w", ["40-80"], ["50-80"]), "INVALID_ARGUMENT"],
      ["targets end early", () => topo().createReshard("rsb", "w", ["40-80"], ["40-60"]), "INVALID_ARGUMENT"],
      ["targets go beyond", () => topo().createReshard("rsb", "w", ["40-80"], ["40-60", "60-c0"]), "INVALID_ARGUMENT"],
      ["targets are the sources", () => topo().createReshard("rsb", "w", ["40-80", "80-c0"], ["40-80", "80-c0"]), "INVALID_ARGUMENT"],
      ["a shard of another open workflow", () => topo().createReshard("rsb", "w", ["-40", "40-80"], ["-80"]), "INVALID_ARGUMENT"],
      ["a name in use with other shards", () => topo().createReshard("rsb", "held", ["40-80"], ["40-60", "60-80"]), "INVALID_ARGUMENT"],
      ["a name in use with other options", () => topo().createReshard("rsb", "held", ["-40"], ["-20", "20-40"], { autoSwitch: true }), "INVALID_ARGUMENT"],
      ["bad options", () => topo().createReshard("rsb", "w", ["40-80"], ["40-60", "60-80"], { onDdl: "drop" as "stop" }), "INVALID_ARGUMENT"],
      ["a table without a primary key", () => topo().createReshard("rsk", "w", ["-80"], ["-40", "40-80"]), "UNSUPPORTED", "VD2700"],
      ["switch before running", () => topo().switchWrites("rsb", "held"), "INVALID_ARGUMENT"],
      ["reverse before a switch", () => topo().reverseWrites("rsb", "held"), "INVALID_ARGUMENT"],
      ["complete before a switch", () => topo().complete("rsb", "held"), "INVALID_ARGUMENT"],
      ["an unknown workflow", () => topo().switchWrites("rsb", "nope"), "INVALID_ARGUMENT"],
      ["deny writes on a shard not serving", () => topo().setDenyWrites("rsb", ["-20"], true), "INVALID_ARGUMENT"],
      ["progress that is no JSON value", () => topo().setWorkflowProgress("rsb", "held", undefined), "INVALID_ARGUMENT"],
      [
        "a vschema change that moves rows of a workflow's keyspace",
        () =>
          topo().applyVSchema("rsb", {
            sharded: true,
            vindexes: { xxhash: { type: "xxhash" } },
            tables: { t: { column_vindexes: [{ column: "v", name: "xxhash" }] } },
          }),
        "UNSUPPORTED",
        "VD2702",
      ],
    ];
    // The keyless table exists (so VD2700 is about it).
    expect((await keyspace("rsk")).tables["nokey"]).toBeDefined();
    for (const [what, call, code, id] of cases) {
      const before = await topologyTables();
      const e = await refused(call());
      expect([what, e.code, e["id"]]).toEqual([what, code, id]);
      expect(await topologyTables()).toEqual(before);
    }
  });
});

describe("workflow records: a Reshard's life", () => {
  it("creates targets, switches the gate to them, reverses, switches again and completes; every step retried answers the same", async () => {
    await makeKeyspace("rsl", 2);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "rsl");
    const ids = Array.from({ length: 24 }, (_, i) => i + 1);
    for (const id of ids) await sql("INSERT INTO t VALUES (?, ?)", [id, `v${id}`], "rsl");
    const low = ids.filter((id) => shardOf(["-80", "80-"], id) === "-80");

    const created = await ok(topo().createReshard("rsl", "split", ["-80"], ["-40", "40-80"], { onDdl: "exec" }));
    expect(created).toMatchObject({ keyspace: "rsl", name: "split", kind: "reshard", state: "created", onDdl: "exec", autoSwitch: false, switchedAt: null });
    expect(created.sources).toEqual([{ shard: "-80", keyRange: "-80", tablet: "rsl/-80" }]);
    const gen = /~(\d+)$/.exec(created.targets[0]?.tablet ?? "")?.[1];
    expect(created.targets).toEqual([
      { shard: "-40", keyRange: "-40", tablet: `rsl/-40~${gen}` },
      { shard: "40-80", keyRange: "40-80", tablet: `rsl/40-80~${gen}` },
    ]);
    expect(await ok(topo().createReshard("rsl", "split", ["-80"], ["-40", "40-80"], { onDdl: "exec" }))).toEqual(created);
    // The targets exist with the schema, not serving; the serving graph is unchanged.
    for (const t of created.targets) {
      const st = await status(t.tablet);
      expect(st.config).toMatchObject({ keyspace: "rsl", shard: t.shard, keyRange: t.shard, serving: false });
      expect(st.tables.map((x) => x.name)).toEqual(["t"]);
    }
    expect((await keyspace("rsl")).shards.map((s) => s.tablet)).toEqual(["rsl/-80", "rsl/80-"]);
    // DDL reaches the targets too.
    await sql("ALTER TABLE t ADD COLUMN w INTEGER", undefined, "rsl");
    for (const t of created.targets) expect((await status(t.tablet)).tables[0]?.columns.map((c) => c.name)).toEqual(["id", "v", "w"]);
    const listed = (await api<TopologyView>("GET", "/v1/topology")).body.workflows;
    expect(listed.find((w) => w.keyspace === "rsl" && w.name === "split")).toMatchObject({ state: "created", targets: created.targets });

    const running = await ok(topo().startWorkflow("rsl", "split"));
    expect(running.state).toBe("running");
    expect((await ok(topo().startWorkflow("rsl", "split"))).state).toBe("running");
    const progress = await ok(topo().setWorkflowProgress("rsl", "split", { rowsCopied: low.length }));
    expect(progress.progress).toEqual({ rowsCopied: low.length });

    // What the streams would do: the rows of -80 land on the targets by key range.
    for (const id of low) {
      const shard = shardOf(["-40", "40-80"], id);
      const tablet = created.targets.find((t) => t.shard === shard)?.tablet ?? "";
      await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tablet)), (_i, state) => {
        state.storage.sql.exec("INSERT INTO t (id, v) VALUES (?, ?)", id, `v${id}`);
      });
    }
    const denied = await ok(topo().setDenyWrites("rsl", ["-80"], true));
    expect(denied.map((s) => s.config?.denyWrites)).toEqual([true]);
    expect((await status("rsl/80-")).config?.denyWrites).toBeUndefined();

    const before = await keyspace("rsl");
    const switched = await ok(topo().switchWrites("rsl", "split"));
    expect(switched.state).toBe("switched");
    expect(switched.switchedAt).not.toBeNull();
    const after = await keyspace("rsl");
    expect(after.version).toBeGreaterThan(before.version);
    expect(after.shards.map((s) => [s.name, s.tablet, s.serving])).toEqual([
      ["-40", `rsl/-40~${gen}`, true],
      ["40-80", `rsl/40-80~${gen}`, true],
      ["80-", "rsl/80-", true],
    ]);
    expect((await status("rsl/-80")).config).toMatchObject({ serving: false, version: after.version });
    for (const t of created.targets) expect((await status(t.tablet)).config).toMatchObject({ serving: true, version: after.version });
    expect(await ok(topo().switchWrites("rsl", "split"))).toEqual(switched);

    // The gate reads and writes the targets now: a row written straight into a target shows up.
    expect((await sql("SELECT count(*) FROM t", undefined, "rsl")).rows).toEqual([[ids.length]]);
    const extra = [101, 102, 103, 104, 105, 106, 107, 108].find((id) => shardOf(["-40", "40-80", "80-"], id) === "-40") ?? 0;
    const direct = (await tabletRpc(env.TABLET, `rsl/-40~${gen}`).execute({ keyspace: "rsl", shard: "-40", version: after.version }, [
      { sql: "INSERT INTO t (id, v) VALUES (?, 'direct')", params: [extra], kind: "write" },
    ])) as Envelope<QueryResult[]>;
    expect(direct.ok).toBe(true);
    expect((await sql("SELECT v FROM t WHERE id = ?", [extra], "rsl")).rows).toEqual([["direct"]]);
    expect((await sql("SELECT count(*) FROM t", undefined, "rsl")).rows).toEqual([[ids.length + 1]]);

    const reversed = await ok(topo().reverseWrites("rsl", "split"));
    expect(reversed.state).toBe("running");
    expect(await ok(topo().reverseWrites("rsl", "split"))).toEqual(reversed);
    expect((await keyspace("rsl")).shards.map((s) => [s.name, s.tablet])).toEqual([
      ["-80", "rsl/-80"],
      ["80-", "rsl/80-"],
    ]);
    // The source serves again, taking writes (its deny flag went with the switch).
    expect((await status("rsl/-80")).config).toMatchObject({ serving: true });
    expect((await status("rsl/-80")).config?.denyWrites).toBeUndefined();
    expect((await sql("SELECT count(*) FROM t", undefined, "rsl")).rows).toEqual([[ids.length]]);
    for (const t of created.targets) expect((await status(t.tablet)).config?.serving).toBe(false);

    const again = await ok(topo().switchWrites("rsl", "split"));
    expect(again.state).toBe("switched");
    expect(await refused(topo().cancel("rsl", "split"))).toMatchObject({ code: "INVALID_ARGUMENT" });
    const completed = await ok(topo().complete("rsl", "split"));
    expect(completed.state).toBe("completed");
    expect(await ok(topo().complete("rsl", "split"))).toEqual(completed);
    const retired = await status("rsl/-80");
    expect([retired.config, retired.rowCount, retired.tables, retired.schemaIndex]).toEqual([null, 0, [], 0]);
    expect((await sql("SELECT count(*) FROM t", undefined, "rsl")).rows).toEqual([[ids.length + 1]]);
    expect(await refused(topo().reverseWrites("rsl", "split"))).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(await refused(topo().cancel("rsl", "split"))).toMatchObject({ code: "INVALID_ARGUMENT" });
    // A later DDL no longer reaches the retired source.
    await sql("CREATE INDEX t_v ON t (v)", undefined, "rsl");
    expect((await status("rsl/-80")).tables).toEqual([]);

    // The shard name -80 comes back, on a fresh tablet.
    const merge = await ok(topo().createReshard("rsl", "merge", ["-40", "40-80"], ["-80"]));
    const mergeGen = /~(\d+)$/.exec(merge.targets[0]?.tablet ?? "")?.[1];
    expect(Number(mergeGen)).toBeGreaterThan(Number(gen));
    expect(merge.targets).toEqual([{ shard: "-80", keyRange: "-80", tablet: `rsl/-80~${mergeGen}` }]);
    expect((await status(`rsl/-80~${mergeGen}`)).tables.map((x) => x.name)).toEqual(["t"]);
    await ok(topo().startWorkflow("rsl", "merge"));
    await ok(topo().switchWrites("rsl", "merge"));
    expect((await keyspace("rsl")).shards.map((s) => [s.name, s.tablet])).toEqual([
      ["-80", `rsl/-80~${mergeGen}`],
      ["80-", "rsl/80-"],
    ]);
    await sql("INSERT INTO t (id, v) VALUES (?, 'merged')", [extra], "rsl");
    expect((await sql("SELECT v FROM t WHERE id = ?", [extra], "rsl")).rows).toEqual([["merged"]]);
    await ok(topo().complete("rsl", "merge"));
    for (const t of created.targets) expect((await status(t.tablet)).rowCount).toBe(0);
  });

  it("cancels before the switch (the targets are emptied), and the name can be used again", async () => {
    await makeKeyspace("rsc", 2);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "rsc");
    const w = await ok(topo().createReshard("rsc", "w", ["80-"], ["80-c0", "c0-"]));
    await ok(topo().startWorkflow("rsc", "w"));
    const target = w.targets[0]?.tablet ?? "";
    await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(target)), (_i, state) => {
      state.storage.sql.exec("INSERT INTO t VALUES (1, 'copied')");
    });
    expect((await status(target)).rowCount).toBe(1);
    const before = await keyspace("rsc");
    const cancelled = await ok(topo().cancel("rsc", "w"));
    expect(cancelled.state).toBe("cancelled");
    expect(await ok(topo().cancel("rsc", "w"))).toEqual(cancelled);
    for (const t of w.targets) {
      const st = await status(t.tablet);
      expect([st.config, st.rowCount, st.tables]).toEqual([null, 0, []]);
    }
    expect(await keyspace("rsc")).toEqual(before);
    expect(await refused(topo().switchWrites("rsc", "w"))).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(await refused(topo().startWorkflow("rsc", "w"))).toMatchObject({ code: "INVALID_ARGUMENT" });
    // Its shards are free again, and so is its name: a new workflow gets new tablets.
    const next = await ok(topo().createReshard("rsc", "w", ["80-"], ["80-c0", "c0-"]));
    expect(next.state).toBe("created");
    expect(next.targets.map((t) => t.tablet)).not.toEqual(w.targets.map((t) => t.tablet));
    await ok(topo().cancel("rsc", "w"));
    const view = (await api<TopologyView>("GET", "/v1/topology")).body;
    expect(view.workflows.filter((x) => x.keyspace === "rsc").map((x) => x.state)).toEqual(["cancelled"]);
  });
});

describe("workflow records: a step that fails partway", () => {
  afterEach(() => disarm());

  it("a create whose target sync was lost is finished by its retry, with the same record", async () => {
    await makeKeyspace("rsf", 2);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "rsf");
    arm({ tablet: [{ op: "sync", shard: "40-80", when: "before", times: 1 }] });
    const lost = await refused(topo().createReshard("rsf", "w", ["-80"], ["-40", "40-80"]));
    expect(lost.retryable).toBe(true);
    const w = await ok(topo().getWorkflow("rsf", "w"));
    expect(w?.state).toBe("created");
    const missing = w?.targets.find((t) => t.shard === "40-80")?.tablet ?? "";
    expect((await status(missing)).config).toBeNull();
    const retried = await ok(topo().createReshard("rsf", "w", ["-80"], ["-40", "40-80"]));
    expect(retried).toEqual(w);
    expect((await status(missing)).config).toMatchObject({ shard: "40-80", serving: false });
    expect((await status(missing)).tables.map((x) => x.name)).toEqual(["t"]);
  });

  it("a switch whose sync to a target was lost has flipped: the gate repairs the target, and the retry answers the same", async () => {
    await makeKeyspace("rsg", 2);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "rsg");
    const w = await ok(topo().createReshard("rsg", "w", ["-80"], ["-40", "40-80"]));
    await ok(topo().startWorkflow("rsg", "w"));
    arm({ tablet: [{ op: "sync", shard: "-40", when: "before", times: 1 }] });
    const lost = await refused(topo().switchWrites("rsg", "w"));
    expect(lost.retryable).toBe(true);
    const flipped = await ok(topo().getWorkflow("rsg", "w"));
    expect(flipped?.state).toBe("switched");
    expect((await keyspace("rsg")).shards.map((s) => s.tablet)).toEqual([...w.targets.map((t) => t.tablet), "rsg/80-"]);
    expect((await status(w.targets[0]?.tablet ?? "")).config?.serving).toBe(false);
    // Through the gate: every shard, the one that missed its sync included, answers.
    const ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    for (const id of ids) await sql("INSERT INTO t VALUES (?, 'x')", [id], "rsg");
    expect((await sql("SELECT count(*) FROM t", undefined, "rsg")).rows).toEqual([[ids.length]]);
    expect((await status(w.targets[0]?.tablet ?? "")).config?.serving).toBe(true);
    expect(await ok(topo().switchWrites("rsg", "w"))).toEqual(flipped);
  });
});
