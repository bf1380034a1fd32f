// A tablet whose Durable Object resets after it committed a write (the answer is lost, the call
// rejects as a reset does: retryable) must not have that write re-sent: the gate once read the
// reset as NOT_SERVING, retried, and applied the write twice. The answer says
// `applied: "unknown"` with the shard, and every shard then holds the write exactly once.

import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { armWrites, disarmWrites, firedWrites } from "../../gate/failpoints.ts";
import { shardNames, shardOf, tablet } from "./ddl-helpers.ts";
import { api } from "./helpers.ts";

interface ErrorAnswer {
  readonly code: string;
  readonly applied?: string;
  readonly shard?: string;
  readonly committedShards?: string[];
  readonly unknownShards?: string[];
}

async function keyspace(name: string): Promise<string[]> {
  expect((await api("POST", "/v1/keyspaces", { name, shards: 2 })).status).toBe(200);
  const vschema = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { t: { column_vindexes: [{ column: "id", name: "xx" }] } } };
  expect((await api("POST", "/v1/vschema", { keyspace: name, vschema })).status).toBe(200);
  for (const sql of [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
    "INSERT INTO t (id, v) VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)",
  ]) {
    expect((await api("POST", "/v1/sql", { keyspace: name, sql })).status).toBe(200);
  }
  return shardNames(name);
}

async function values(ks: string, shards: readonly string[]): Promise<Record<number, number>> {
  const out: Record<number, number> = {};
  for (const s of shards) {
    const rows = await runInDurableObject(tablet(ks, s), (_i, state) => state.storage.sql.exec<{ id: number; v: number }>("SELECT id, v FROM t").toArray());
    for (const r of rows) out[r.id] = r.v;
  }
  return out;
}

async function errorOf(path: string, body: unknown): Promise<ErrorAnswer> {
  const r = await api<{ error?: ErrorAnswer }>("POST", path, body);
  expect(r.status, JSON.stringify(r.body)).not.toBe(200);
  return r.body.error as ErrorAnswer;
}

describe("a write whose answer was lost after the tablet committed it", () => {
  afterEach(() => disarmWrites());

  it("is not retried: a single-shard UPDATE applies once and says applied unknown on its shard", async () => {
    const ks = "lw1";
    const shards = await keyspace(ks);
    const shard = shardOf(shards, 1);
    armWrites([{ keyspace: ks, shard, when: "after", skip: 0, times: 1 }]);
    const err = await errorOf("/v1/sql", { keyspace: ks, sql: "UPDATE t SET v = v + 1 WHERE id = 1" });
    expect(firedWrites()).toBe(1);
    expect(err).toMatchObject({ code: "NOT_SERVING", applied: "unknown", shard });
    expect((await values(ks, shards))[1]).toBe(1);
  });

  it("is not retried: a transactional batch commits once and says applied unknown on its shard", async () => {
    const ks = "lw2";
    const shards = await keyspace(ks);
    const shard = shardOf(shards, 2);
    armWrites([{ keyspace: ks, shard, when: "after", skip: 0, times: 1 }]);
    const statements = [{ sql: "UPDATE t SET v = v + 1 WHERE id = 2" }, { sql: "UPDATE t SET v = v + 10 WHERE id = 2" }];
    const err = await errorOf("/v1/batch", { keyspace: ks, transaction: true, statements });
    expect(err).toMatchObject({ applied: "unknown", shard });
    expect((await values(ks, shards))[2]).toBe(11);
  });

  it("on a write to several shards, names the unknown shard and the committed ones, each row changed once", async () => {
    const ks = "lw3";
    const shards = await keyspace(ks);
    const lost = shards[0] as string;
    armWrites([{ keyspace: ks, shard: lost, when: "after", skip: 0, times: 1 }]);
    const err = await errorOf("/v1/sql", { keyspace: ks, sql: "UPDATE t SET v = v + 1" });
    expect(err).toMatchObject({ applied: "unknown", unknownShards: [lost], committedShards: shards.filter((s) => s !== lost) });
    expect(await values(ks, shards)).toEqual({ 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1 });
  });

  it("lost before it reached the tablet: also applied unknown (the gate cannot tell), and nothing changed", async () => {
    const ks = "lw4";
    const shards = await keyspace(ks);
    const shard = shardOf(shards, 3);
    armWrites([{ keyspace: ks, shard, when: "before", skip: 0, times: 1 }]);
    const err = await errorOf("/v1/sql", { keyspace: ks, sql: "UPDATE t SET v = v + 1 WHERE id = 3" });
    expect(err).toMatchObject({ applied: "unknown", shard });
    expect((await values(ks, shards))[3]).toBe(0);
  });
});
