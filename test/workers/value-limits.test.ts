// The value limit (2,000,000 bytes per TEXT or BLOB) holds for every way a value gets written,
// not only for params: values SQL computes (zeroblob, randomblob, hex, ||, replace) in
// INSERT, UPDATE, upsert and INSERT … SELECT are refused with INVALID_ARGUMENT naming the limit,
// the statement and its whole transaction roll back, and no binlog event is left. A result
// holding such a value is refused the same way.

import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { TRIGGER_VERSION, upgradeTriggers } from "../../tablet/binlog.ts";
import type { Tablet } from "../../tablet/tablet.ts";
import { MAX_VALUE_BYTES } from "../../topology/value-limits.ts";
import type { BinlogEvent } from "../../contract/tablet-rpc.ts";
import { api, sql, sqlError } from "./helpers.ts";

async function events(keyspace: string, shards: readonly string[], table: string): Promise<BinlogEvent[]> {
  const out: BinlogEvent[] = [];
  for (const s of shards) {
    const chunk = await env.TABLET.get(env.TABLET.idFromName(`${keyspace}/${s}`)).readBinlog(null, 10_000);
    if (!chunk.ok) throw new Error(`binlog of ${keyspace}/${s} unreadable`);
    out.push(...chunk.value.events.filter((e) => e.table === table));
  }
  return out;
}

async function tooBig(text: string, params?: unknown, keyspace?: string): Promise<void> {
  const e = await sqlError(text, params, keyspace);
  expect({ text, status: e.status, code: e.code, limit: e["limit"] }).toEqual({ text, status: 400, code: "INVALID_ARGUMENT", limit: MAX_VALUE_BYTES });
}

describe("values computed by SQL are held to the value limit where they are written", () => {
  it("INSERT of zeroblob(3000000) is INVALID_ARGUMENT and leaves no row and no binlog event", async () => {
    await sql("CREATE TABLE vb (id INTEGER PRIMARY KEY, b BLOB, t TEXT)");
    await tooBig("INSERT INTO vb (id, b) VALUES (1, zeroblob(3000000))");
    await tooBig("INSERT INTO vb (id, b) VALUES (2, randomblob(2000001))");
    await tooBig("INSERT INTO vb (id, t) VALUES (3, hex(zeroblob(1000000)) || '7')");
    expect((await sql("SELECT count(*) FROM vb")).rows).toEqual([[0]]);
    expect(await events("main", ["-80", "80-"], "vb")).toEqual([]);
  });

  it("exactly 2,000,000 bytes is accepted, 2,000,001 refused, for BLOB and TEXT alike", async () => {
    await sql("CREATE TABLE vedge (id INTEGER PRIMARY KEY, b BLOB, t TEXT)");
    await sql("INSERT INTO vedge (id, b, t) VALUES (1, zeroblob(2000000), hex(zeroblob(1000000)))");
    expect((await sql("SELECT length(b), octet_length(t) FROM vedge WHERE id = 1")).rows).toEqual([[2_000_000, 2_000_000]]);
    await tooBig("INSERT INTO vedge (id, b) VALUES (2, zeroblob(2000001))");
    await tooBig("INSERT INTO vedge (id, t) VALUES (3, hex(zeroblob(1000000)) || 'x')");
  });

  it("TEXT is measured in UTF-8 bytes: 1,000,001 two-byte characters are over the limit", async () => {
    await sql("CREATE TABLE vutf (id INTEGER PRIMARY KEY, t TEXT)");
    // 1,000,001 characters, 2,000,002 bytes: under the limit by length(), over it by bytes.
    await tooBig("INSERT INTO vutf (id, t) VALUES (1, replace(hex(zeroblob(500000)) || '0', '0', 'é'))");
    await sql("INSERT INTO vutf (id, t) VALUES (2, replace(hex(zeroblob(500000)), '0', 'é'))");
    expect((await sql("SELECT length(t), octet_length(t) FROM vutf WHERE id = 2")).rows).toEqual([[1_000_000, 2_000_000]]);
  });

  it("UPDATE SET v = v || v over a value of 1.5 MB is refused and the old value stays", async () => {
    await sql("CREATE TABLE vu (id INTEGER PRIMARY KEY, t TEXT, b BLOB)");
    await sql("INSERT INTO vu (id, t, b) VALUES (1, hex(zeroblob(750000)), zeroblob(1500000))");
    const before = (await events("main", ["-80", "80-"], "vu")).length;
    await tooBig("UPDATE vu SET t = t || t WHERE id = 1");
    await tooBig("UPDATE vu SET b = b || b WHERE id = 1");
    await tooBig("UPDATE vu SET t = replace(t, '0', '00') WHERE id = 1");
    await tooBig("UPDATE vu SET t = t || t");
    expect((await sql("SELECT octet_length(t), length(b) FROM vu")).rows).toEqual([[1_500_000, 1_500_000]]);
    expect((await events("main", ["-80", "80-"], "vu")).length).toBe(before);
  });

  it("an upsert (ON CONFLICT DO UPDATE) that grows a value past the limit is refused", async () => {
    await sql("CREATE TABLE vup (id INTEGER PRIMARY KEY, t TEXT)");
    await sql("INSERT INTO vup VALUES (1, hex(zeroblob(750000)))");
    await tooBig("INSERT INTO vup VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET t = t || t");
    await tooBig("INSERT OR REPLACE INTO vup VALUES (1, zeroblob(2500000))");
    expect((await sql("SELECT octet_length(t) FROM vup")).rows).toEqual([[1_500_000]]);
  });

  it("INSERT … SELECT of a computed value past the limit is refused, sharded and unsharded", async () => {
    await sql("CREATE TABLE vsrc (id INTEGER PRIMARY KEY, t TEXT)");
    await sql("CREATE TABLE vdst (id INTEGER PRIMARY KEY, t TEXT)");
    await sql("INSERT INTO vsrc VALUES (1, hex(zeroblob(600000))), (2, 'small')");
    await tooBig("INSERT INTO vdst (id, t) SELECT id, t || t FROM vsrc");
    expect((await sql("SELECT count(*) FROM vdst")).rows).toEqual([[0]]);
    await api("POST", "/v1/keyspaces", { name: "vone", shards: 1 });
    await sql("CREATE TABLE src (id INTEGER PRIMARY KEY, t TEXT)", undefined, "vone");
    await sql("CREATE TABLE dst (id INTEGER PRIMARY KEY, t TEXT)", undefined, "vone");
    await sql("INSERT INTO src VALUES (1, hex(zeroblob(600000))), (2, 'small')", undefined, "vone");
    // Unsharded: the whole statement runs on the tablet, so the trigger is what refuses it.
    await tooBig("INSERT INTO dst (id, t) SELECT id, t || t FROM src ORDER BY id DESC", undefined, "vone");
    expect((await sql("SELECT count(*) FROM dst", undefined, "vone")).rows).toEqual([[0]]);
    expect(await events("vone", ["-"], "dst")).toEqual([]);
  });

  it("a reference-table write past the limit changes no copy", async () => {
    await sql("CREATE TABLE vref (id INTEGER PRIMARY KEY, t TEXT)");
    await api("POST", "/v1/vschema", {
      keyspace: "main",
      vschema: { sharded: true, vindexes: { xxhash: { type: "xxhash" } }, tables: { vref: { type: "reference" } } },
    });
    await sql("INSERT INTO vref VALUES (1, 'a')");
    await tooBig("UPDATE vref SET t = zeroblob(3000000) WHERE id = 1");
    expect((await sql("SELECT t FROM vref")).rows).toEqual([["a"]]);
  });

  it("a transactional batch whose second statement writes too large a value keeps nothing of the first", async () => {
    await sql("CREATE TABLE vtx (id INTEGER PRIMARY KEY, b BLOB)");
    const r = await api<{ error: { code: string; statementIndex: number; limit: number } }>("POST", "/v1/batch", {
      transaction: true,
      statements: [{ sql: "INSERT INTO vtx VALUES (1, x'00')" }, { sql: "UPDATE vtx SET b = zeroblob(2000001) WHERE id = 1" }],
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "INVALID_ARGUMENT", statementIndex: 1, limit: MAX_VALUE_BYTES });
    expect((await sql("SELECT count(*) FROM vtx")).rows).toEqual([[0]]);
  });
});

describe("results holding a value past the limit", () => {
  it("SELECT zeroblob(3000000) is INVALID_ARGUMENT naming the limit, not a 3 MB answer", async () => {
    await tooBig("SELECT zeroblob(3000000)");
    await tooBig("SELECT hex(zeroblob(1000000)) || 'x' AS t");
    expect((await sql("SELECT length(zeroblob(3000000))")).rows).toEqual([[3_000_000]]);
  });

  it("a RETURNING of a value past the limit is refused and the write rolled back", async () => {
    await sql("CREATE TABLE vret (id INTEGER PRIMARY KEY, t TEXT)");
    await tooBig("INSERT INTO vret VALUES (1, 'a') RETURNING zeroblob(3000000)");
    expect((await sql("SELECT count(*) FROM vret")).rows).toEqual([[0]]);
  });
});

describe("tablets whose triggers older code wrote", () => {
  it("upgradeTriggers rebuilds triggers without the size check (an older 'triggers' record), and then the limit holds", async () => {
    const stub = env.TABLET.get(env.TABLET.idFromName("vold/-"));
    const st = await stub.sync({ keyspace: "vold", shard: "-", keyRange: "-", serving: true, version: 1 }, [
      { index: 1, sql: "CREATE TABLE old (id INTEGER PRIMARY KEY, b BLOB)" },
    ]);
    expect(st.ok).toBe(true);
    await runInDurableObject(stub, (_instance: Tablet, state) => {
      const sql = state.storage.sql;
      // What a tablet of the previous version holds: an INSERT trigger with no size check.
      sql.exec('DROP TRIGGER "_vt_bl_i_old"');
      sql.exec(
        `CREATE TRIGGER "_vt_bl_i_old" AFTER INSERT ON "old" BEGIN INSERT INTO _vt_binlog (kind, tbl, cols, after) VALUES ('insert', 'old', 1, '[]'); END`,
      );
      sql.exec("DELETE FROM _vt_meta WHERE k = 'triggers'");
      state.storage.transactionSync(() => sql.exec("INSERT INTO old VALUES (1, zeroblob(3000000))"));
      expect(sql.exec<{ n: number }>("SELECT count(*) AS n FROM old").one().n).toBe(1);
      state.storage.transactionSync(() => upgradeTriggers(sql, undefined));
      expect(() => state.storage.transactionSync(() => sql.exec("INSERT INTO old VALUES (2, zeroblob(3000000))"))).toThrow(/_vt_value_too_big/);
      expect(sql.exec<{ v: string }>("SELECT v FROM _vt_meta WHERE k = 'triggers'").one().v).toBe(TRIGGER_VERSION);
    });
  });
});
