// Sequences: an INSERT that omits the auto-increment column, or gives NULL, takes the next ids;
// each row lands on the shard of its id.

import { afterEach, describe, expect, it } from "vitest";
import { SequenceCache } from "../../gate/engine/sequence.ts";
import { createCluster, type Cluster } from "./fake-cursor.ts";

let c: Cluster | undefined;
afterEach(() => {
  c?.close();
  c = undefined;
});

function cluster(): Cluster {
  c = createCluster({
    shards: 4,
    tables: {
      users: { create: "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", column: "id", autoIncrement: { column: "id", sequence: "user_seq" } },
      events: {
        create: "CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, what TEXT)",
        column: "user_id",
        autoIncrement: { column: "id", sequence: "event_seq" },
      },
    },
  });
  return c;
}

function placedRight(cl: Cluster, table: string, column: string): void {
  for (const shard of cl.shardNames) {
    for (const [v] of cl.onShard(shard, `SELECT ${column} FROM ${table}`).rows) expect(cl.shardOf(v ?? null)).toBe(shard);
  }
}

describe("sequences", () => {
  it("fills an omitted or NULL vindex column, keeps given ids, and places each row by its id", async () => {
    const cl = cluster();
    const r = await cl.run("INSERT INTO users (name) VALUES ('ann'), ('bob'), (?)", ["cyd"]);
    expect(r.rowsAffected).toBe(3);
    await cl.run("INSERT INTO users (id, name) VALUES (NULL, 'dan'), (100, 'eve'), (?, 'fay')", [null]);
    await cl.run("INSERT INTO users VALUES (NULL, 'gus')");
    const rows = (await cl.run("SELECT id, name FROM users ORDER BY id")).rows;
    expect(rows).toEqual([
      [1, "ann"],
      [2, "bob"],
      [3, "cyd"],
      [4, "dan"],
      [5, "fay"],
      [6, "gus"],
      [100, "eve"],
    ]);
    placedRight(cl, "users", "id");
  });

  it("fills a column that is not the vindex column", async () => {
    const cl = cluster();
    await cl.run("INSERT INTO events (user_id, what) VALUES (7, 'login'), (8, 'login'), (7, 'logout')");
    expect((await cl.run("SELECT id, user_id, what FROM events ORDER BY id")).rows).toEqual([
      [1, 7, "login"],
      [2, 8, "login"],
      [3, 7, "logout"],
    ]);
    placedRight(cl, "events", "user_id");
  });

  it("INSERT … SELECT takes ids too", async () => {
    const cl = cluster();
    await cl.run("INSERT INTO users (name) VALUES ('ann'), ('bob')");
    await cl.run("INSERT INTO users (name) SELECT name || '2' FROM users ORDER BY id");
    await cl.run("INSERT INTO events (user_id, what) SELECT id, 'made' FROM users WHERE id > 2");
    expect((await cl.run("SELECT id, name FROM users ORDER BY id")).rows).toEqual([
      [1, "ann"],
      [2, "bob"],
      [3, "ann2"],
      [4, "bob2"],
    ]);
    expect((await cl.run("SELECT user_id FROM events ORDER BY user_id")).rows).toEqual([[3], [4]]);
    placedRight(cl, "users", "id");
    placedRight(cl, "events", "user_id");
  });

  it("VEXPLAIN does not take ids", async () => {
    const cl = cluster();
    const before = cl.cursor.sequences.get("user_seq");
    const { planParsed } = await import("../../gate/planner/plan.ts");
    const { parseOne } = await import("../../gate/sql/parse.ts");
    const { Bindings } = await import("../../gate/sql/template.ts");
    const plan = planParsed(parseOne("INSERT INTO users (name) VALUES ('x')"), cl.keyspace);
    const d = plan.primitive.describe({ keyspace: cl.keyspace, bindings: new Bindings([]) });
    expect(JSON.stringify(d)).toContain("next from user_seq");
    expect(cl.cursor.sequences.get("user_seq")).toBe(before);
  });
});

describe("SequenceCache", () => {
  it("serves ids from reserved blocks, never twice, across concurrent callers", async () => {
    const cache = new SequenceCache();
    let next = 1n;
    let reservations = 0;
    const reserve = async (n: number) => {
      reservations++;
      await new Promise((r) => setTimeout(r, 1));
      const size = BigInt(Math.max(10, n));
      const block = { next, end: next + size };
      next += size;
      return block;
    };
    const batches = await Promise.all(Array.from({ length: 20 }, (_, i) => cache.take("s", (i % 4) + 1, reserve)));
    const all = batches.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(batches.reduce((a, b) => a + b.length, 0));
    const big = await cache.take("s", 25, reserve);
    expect(big.length).toBe(25);
    expect(new Set([...all, ...big]).size).toBe(all.length + 25);
    expect(reservations).toBeLessThan(30);
  });
});
