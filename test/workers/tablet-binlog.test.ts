// The binlog invariant: every committed change to a user table is in the binlog, in commit
// order, in the same transaction as the change; a failed statement leaves nothing behind.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { BinlogChunk, BinlogEvent, BoundQuery, QueryResult, Target } from "../../contract/tablet-rpc.ts";
import type { Envelope } from "../../contract/envelope.ts";

/** RPC wraps return types; envelopes are plain data, so view them as such. */
const asEnv = <T>(x: unknown): Envelope<T> => x as Envelope<T>;

let n = 0;
async function freshTablet() {
  const name = `bl${n++}`;
  const stub = env.TABLET.get(env.TABLET.idFromName(`t/${name}`));
  const config = { keyspace: "t", shard: name, keyRange: "-", serving: true, version: 1 };
  const ddl = [
    { index: 1, sql: "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE, v REAL, b BLOB)" },
    { index: 2, sql: "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE)" },
  ];
  const st = await stub.sync(config, ddl);
  expect(st.ok).toBe(true);
  const target: Target = { keyspace: "t", shard: name, version: 1 };
  const exec = async (...qs: (string | [string, unknown[]])[]): Promise<Envelope<QueryResult[]>> => {
    const queries: BoundQuery[] = qs.map((q) => {
      const [sql, params] = typeof q === "string" ? [q, []] : q;
      const kind = /^\s*(SELECT|WITH)/i.test(sql) ? "read" : /^\s*(INSERT|REPLACE)/i.test(sql) ? "insert" : "write";
      return { sql, params: params as BoundQuery["params"], kind };
    });
    return asEnv<QueryResult[]>(await stub.execute(target, queries));
  };
  const events = async (): Promise<BinlogEvent[]> => {
    const r = asEnv<BinlogChunk>(await stub.readBinlog(null, 10_000));
    if (!r.ok) throw new Error(r.error.message);
    return r.value.events;
  };
  return { stub, exec, events, target };
}

const rowEvents = (evs: BinlogEvent[]) =>
  evs.map((e) => (e.kind === "commit" ? "commit" : `${e.kind} ${e.table} ${JSON.stringify(e.before)} ${JSON.stringify(e.after)}`));

describe("tablet binlog", () => {
  it("records DDL, then each kind of write with before and after images, in commit order", async () => {
    const t = await freshTablet();
    const ddlEvents = (await t.events()).filter((e) => e.kind === "ddl").map((e) => e.sql);
    expect(ddlEvents).toHaveLength(2);
    expect(ddlEvents[0]).toContain("CREATE TABLE parent");

    expect((await t.exec(["INSERT INTO parent (id, name, v, b) VALUES (?, ?, ?, ?)", [1, "a", 0.1, new Uint8Array([0, 255])]])).ok).toBe(true);
    expect((await t.exec("UPDATE parent SET v = v * 2 WHERE id = 1")).ok).toBe(true);
    expect((await t.exec("INSERT INTO parent (id, name) VALUES (1, 'a2') ON CONFLICT (id) DO UPDATE SET name = excluded.name")).ok).toBe(true);
    expect((await t.exec("REPLACE INTO parent (id, name) VALUES (2, 'a2')")).ok).toBe(true);
    expect((await t.exec("INSERT INTO child (id, parent_id) VALUES (10, 2), (11, 2)")).ok).toBe(true);
    expect((await t.exec("DELETE FROM parent WHERE id = 2")).ok).toBe(true);

    const evs = rowEvents((await t.events()).slice(4)); // after the two DDL transactions
    expect(evs).toEqual([
      `insert parent null [1,"a",0.1,{"0":0,"1":255}]`,
      "commit",
      `update parent [1,"a",0.1,{"0":0,"1":255}] [1,"a",0.2,{"0":0,"1":255}]`,
      "commit",
      `update parent [1,"a",0.2,{"0":0,"1":255}] [1,"a2",0.2,{"0":0,"1":255}]`,
      "commit",
      // REPLACE removes the row holding the conflicting UNIQUE name first (recursive_triggers).
      `delete parent [1,"a2",0.2,{"0":0,"1":255}] null`,
      `insert parent null [2,"a2",null,null]`,
      "commit",
      "insert child null [10,2]",
      "insert child null [11,2]",
      "commit",
      // ON DELETE CASCADE changes reach the binlog in the same transaction.
      "delete child [10,2] null",
      "delete child [11,2] null",
      `delete parent [2,"a2",null,null] null`,
      "commit",
    ]);
  });

  it("keeps BLOBs, reals and 64-bit integers exact in row images", async () => {
    const t = await freshTablet();
    const big = 2n ** 62n + 7n;
    expect((await t.exec([`INSERT INTO parent (id, name, v, b) VALUES (${big}, 'x', 0.30000000000000004, x'00ff10')`, []])).ok).toBe(true);
    const ins = (await t.events()).find((e) => e.kind === "insert");
    expect(ins?.columns).toEqual(["id", "name", "v", "b"]);
    expect(ins?.after?.[0]).toBe(big);
    expect(ins?.after?.[2]).toBe(0.30000000000000004);
    expect(ins?.after?.[3]).toEqual(new Uint8Array([0, 255, 16]));
    const r = await t.exec(`SELECT id FROM parent WHERE name = 'x'`);
    expect(r.ok && r.value[0]?.rows[0]?.[0]).toBe(big);
  });

  it("leaves no binlog entry for a failed statement or a rolled back transaction", async () => {
    const t = await freshTablet();
    expect((await t.exec("INSERT INTO parent (id, name) VALUES (1, 'a')")).ok).toBe(true);
    const before = await t.events();
    const dup = await t.exec("INSERT INTO parent (id, name) VALUES (1, 'b')");
    expect(dup.ok).toBe(false);
    if (!dup.ok) expect(dup.error.code).toBe("CONSTRAINT");
    const tx = await t.exec(
      "INSERT INTO parent (id, name) VALUES (2, 'c')",
      "UPDATE parent SET name = 'z' WHERE id = 1",
      "INSERT INTO parent (id, name) VALUES (1, 'again')",
    );
    expect(tx.ok).toBe(false);
    if (!tx.ok) expect(tx.error["statementIndex"]).toBe(2);
    expect(await t.events()).toEqual(before);
    const rows = await t.exec("SELECT id, name FROM parent ORDER BY id");
    expect(rows.ok && rows.value[0]?.rows).toEqual([[1, "a"]]);
  });

  it("writes no commit event for a write transaction that changed nothing, even after a rollback", async () => {
    const t = await freshTablet();
    expect((await t.exec("INSERT INTO parent (id, name) VALUES (1, 'a')")).ok).toBe(true);
    const before = await t.events();
    expect((await t.exec("UPDATE parent SET name = 'x' WHERE id = 99")).ok).toBe(true);
    expect((await t.exec("INSERT INTO parent (id, name) VALUES (2, 'b')", "INSERT INTO parent (id, name) VALUES (2, 'c')")).ok).toBe(false);
    expect((await t.exec("DELETE FROM parent WHERE id = 99")).ok).toBe(true);
    expect(await t.events()).toEqual(before);
    expect((await t.exec("DELETE FROM parent WHERE id = 1")).ok).toBe(true);
    expect(rowEvents((await t.events()).slice(before.length))).toEqual([`delete parent [1,"a",null,null] null`, "commit"]);
  });

  it("reads from a position in chunks that end on commits, and refuses another tablet's position", async () => {
    const t = await freshTablet();
    for (let i = 0; i < 5; i++)
      await t.exec(`INSERT INTO parent (id, name) VALUES (${i * 3}, 'n${i * 3}'), (${i * 3 + 1}, 'n${i * 3 + 1}'), (${i * 3 + 2}, 'n${i * 3 + 2}')`);
    const first = asEnv<BinlogChunk>(await t.stub.readBinlog(null, 4));
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(first.value.events.at(-1)?.kind).toBe("commit");
    expect(first.value.more).toBe(true);
    let pos = first.value.position;
    const seen = [...first.value.events];
    for (;;) {
      const next = asEnv<BinlogChunk>(await t.stub.readBinlog(pos, 4));
      if (!next.ok) throw new Error(next.error.message);
      seen.push(...next.value.events);
      pos = next.value.position;
      if (!next.value.more) break;
    }
    const all = await t.events();
    expect(seen.map((e) => e.seq)).toEqual(all.map((e) => e.seq));
    const bad = asEnv<BinlogChunk>(await t.stub.readBinlog("abcdef:3", 10));
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.code).toBe("INVALID_ARGUMENT");
  });

  it("refuses a target it does not serve and a plan older than its version", async () => {
    const t = await freshTablet();
    const wrong = asEnv<QueryResult[]>(await t.stub.execute({ ...t.target, shard: "-80" }, [{ sql: "SELECT 1", params: [], kind: "read" }]));
    expect(!wrong.ok && wrong.error.code).toBe("NOT_SERVING");
    const stale = asEnv<QueryResult[]>(await t.stub.execute({ ...t.target, version: 0 }, [{ sql: "SELECT 1", params: [], kind: "read" }]));
    expect(!stale.ok && stale.error.code).toBe("NOT_SERVING");
    if (!stale.ok) expect(stale.error["servingVersion"]).toBe(1);
  });
});
