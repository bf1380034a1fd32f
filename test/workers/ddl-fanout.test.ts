// A DDL is applied on every shard of its keyspace or on none; a shard or Topology failure
// mid-fan-out converges by itself and never leaves the keyspace stuck.

import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import { arm, disarm } from "../../topology/failpoints.ts";
import { expectConverged, replayedObjects, settle, shardNames, shardOf, shardSchema, topology, topologyState } from "./ddl-helpers.ts";
import { api, sql, sqlError } from "./helpers.ts";

afterEach(() => disarm());

let n = 0;
async function keyspace(shards = 2): Promise<string> {
  const name = `fan${n++}`;
  expect((await api("POST", "/v1/keyspaces", { name, shards })).status).toBe(200);
  return name;
}

/** A table `d` whose column u holds a duplicate on one shard only (ids 1 and another id there). */
async function duplicatesOnOneShard(ks: string): Promise<{ dupShard: string }> {
  // Per-shard uniqueness, so a UNIQUE index without the vindex column is a plain index on each shard.
  const vschema = {
    sharded: true,
    vindexes: { xxhash: { type: "xxhash" } },
    tables: { d: { column_vindexes: [{ column: "id", name: "xxhash" }], unique: "per_shard" } },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: ks, vschema })).status).toBe(200);
  await sql("CREATE TABLE d (id INTEGER PRIMARY KEY, u INTEGER)", undefined, ks);
  const shards = await shardNames(ks);
  const dupShard = shardOf(shards, 1);
  const other = Array.from({ length: 200 }, (_, i) => i + 2).find((id) => shardOf(shards, id) === dupShard);
  const elsewhere = Array.from({ length: 200 }, (_, i) => i + 2).find((id) => shardOf(shards, id) !== dupShard);
  await sql("INSERT INTO d VALUES (1, 7), (?, 7), (?, 7)", [other ?? 0, elsewhere ?? 0], ks);
  return { dupShard };
}

describe("DDL fan-out", () => {
  it("CREATE UNIQUE INDEX refused by one shard's duplicates is applied on no shard, and later DDL and vschema changes work", async () => {
    const ks = await keyspace();
    const { dupShard } = await duplicatesOnOneShard(ks);
    const e = await sqlError("CREATE UNIQUE INDEX d_u ON d (u)", undefined, ks);
    expect(e).toMatchObject({ status: 409, code: "CONSTRAINT", shard: dupShard, applied: false });
    for (const s of await shardNames(ks)) expect((await shardSchema(ks, s)).objects.some((o) => o.includes("d_u"))).toBe(false);
    await expectConverged(ks);
    // Nothing stale: the next DDL and a vschema apply succeed, and writes are not fenced.
    await sql("CREATE INDEX d_i ON d (u)", undefined, ks);
    const vs = await api("POST", "/v1/vschema", {
      keyspace: ks,
      vschema: {
        sharded: true,
        vindexes: { xxhash: { type: "xxhash" } },
        tables: { d: { column_vindexes: [{ column: "id", name: "xxhash" }], unique: "per_shard" } },
      },
    });
    expect(vs.status).toBe(200);
    await sql("INSERT INTO d VALUES (1000, 8)", undefined, ks);
    const { history, objects } = await expectConverged(ks);
    expect(objects.some((o) => o.includes("d_i"))).toBe(true);
    expect(await replayedObjects(history)).toEqual(objects);
  });

  it("a shard whose apply answer is lost still converges: the DDL answers success, the shard refuses writes until the alarm has applied it", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, ks);
    const [first, second] = await shardNames(ks);
    if (!first || !second) throw new Error("two shards");
    arm({ tablet: [{ op: "sync", shard: second, when: "before", times: 1 }] });
    await sql("ALTER TABLE t ADD COLUMN w INTEGER", undefined, ks);
    // The second shard has not applied it yet and holds the fence: writes there wait (retryable).
    const behind = await shardSchema(ks, second);
    expect(behind.fence).not.toBeNull();
    expect((await topologyState(ks)).pending).toBe(1);
    await settle(ks);
    await expectConverged(ks);
    await sql("INSERT INTO t (id, v, w) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)", undefined, ks);
    expect((await sql("SELECT count(w) FROM t", undefined, ks)).rows).toEqual([[3]]);
  });

  it("a Topology that stops after deciding finishes the DDL on every shard once it restarts", async () => {
    const ks = await keyspace(4);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, ks);
    arm({ crashAt: "decided" });
    const r = await topology().applyDdl({ keyspace: ks, sql: "CREATE TABLE u (id INTEGER PRIMARY KEY)" });
    expect(r.ok).toBe(false);
    await evictDurableObject(topology());
    expect((await topologyState(ks)).history).toContain("CREATE TABLE u (id INTEGER PRIMARY KEY)");
    await runDurableObjectAlarm(topology());
    await settle(ks);
    const { objects } = await expectConverged(ks);
    expect(objects.some((o) => o.startsWith("table u "))).toBe(true);
  });

  it("a Topology that stops before deciding aborts the DDL: no shard keeps it or a fence", async () => {
    const ks = await keyspace(4);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, ks);
    arm({ crashAt: "prepared" });
    const r = await topology().applyDdl({ keyspace: ks, sql: "CREATE TABLE u (id INTEGER PRIMARY KEY)" });
    expect(r.ok).toBe(false);
    await evictDurableObject(topology());
    // Every shard is fenced now; the restarted Topology's alarm releases them.
    await runDurableObjectAlarm(topology());
    await settle(ks);
    const { history, objects } = await expectConverged(ks);
    expect(history).toEqual(["CREATE TABLE t (id INTEGER PRIMARY KEY)"]);
    expect(objects.some((o) => o.startsWith("table u "))).toBe(false);
    await sql("INSERT INTO t VALUES (1), (2), (3)", undefined, ks);
  });

  it("the gate's retry of a DDL whose Topology stopped after deciding answers success and applies it once", async () => {
    const ks = await keyspace();
    arm({ crashAt: "decided" });
    await sql("CREATE TABLE once (id INTEGER PRIMARY KEY)", undefined, ks);
    await settle(ks);
    const { history } = await expectConverged(ks);
    expect(history).toEqual(["CREATE TABLE once (id INTEGER PRIMARY KEY)"]);
  });

  it("the gate's retry of a DDL whose Topology stopped before deciding applies it (the first attempt left no trace)", async () => {
    const ks = await keyspace();
    arm({ crashAt: "recorded" });
    await sql("CREATE TABLE twice (id INTEGER PRIMARY KEY)", undefined, ks);
    const { history } = await expectConverged(ks);
    expect(history).toEqual(["CREATE TABLE twice (id INTEGER PRIMARY KEY)"]);
  });

  it("a shard whose prepare answer is lost makes the DDL fail with NOT_SERVING and no trace; its fence is released", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, ks);
    const [, second] = await shardNames(ks);
    if (!second) throw new Error("two shards");
    arm({ tablet: [{ op: "prepare", shard: second, when: "after", times: 10 }] });
    const e = await sqlError("CREATE INDEX t_i ON t (id)", undefined, ks);
    expect(e).toMatchObject({ code: "NOT_SERVING", applied: false, shard: second });
    disarm();
    const { history } = await expectConverged(ks);
    expect(history).toEqual(["CREATE TABLE t (id INTEGER PRIMARY KEY)"]);
  });

  it("a virtual table reaching a tablet without the gate is refused by every shard (UNSUPPORTED VD2103) and recorded nowhere", async () => {
    const ks = await keyspace(1);
    const r = (await topology().applyDdl({ keyspace: ks, sql: "CREATE VIRTUAL TABLE f USING fts5(a)" })) as Envelope<unknown>;
    expect(r.ok ? null : r.error).toMatchObject({ code: "UNSUPPORTED", id: "VD2103", applied: false });
    const { history, objects } = await expectConverged(ks);
    expect(history).toEqual([]);
    expect(objects).toEqual([]);
  });
});
