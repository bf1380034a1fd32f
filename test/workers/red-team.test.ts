// Findings of attacking the real gate as an outsider and as an application would: each case here
// answered wrongly (rows changed or hidden on some shards, a 500, a value silently changed) before
// its fix. The unsharded keyspace of the same statements is the judge where one is needed: it is
// one SQLite database.
import { exports } from "cloudflare:workers";
import { newWebSocketRpcSession } from "capnweb";
import { describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

async function keyspace(name: string, shards: number): Promise<void> {
  const r = await api("POST", "/v1/keyspaces", { name, shards });
  expect(r.status).toBe(200);
}

/** A 4-shard keyspace and a 1-shard one holding the same eight rows of a table keyed by text. */
async function textKeyed(prefix: string): Promise<{ sharded: string; single: string }> {
  const sharded = `${prefix}s`;
  const single = `${prefix}u`;
  await keyspace(sharded, 4);
  await keyspace(single, 1);
  for (const ks of [sharded, single]) {
    await sql("CREATE TABLE s (code TEXT PRIMARY KEY, v)", undefined, ks);
    await sql("INSERT INTO s VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4), ('e', 5), ('f', 6), ('g', 7), ('h', 8)", undefined, ks);
  }
  return { sharded, single };
}

describe("rowid is per shard: a table without an INTEGER PRIMARY KEY has none across shards", () => {
  it("UPDATE … WHERE rowid = 1 is refused instead of changing one row on every shard", async () => {
    const { sharded, single } = await textKeyed("rt1");
    // One SQLite database changes one row.
    expect((await sql("UPDATE s SET v = 100 WHERE rowid = 1", undefined, single)).rowsAffected).toBe(1);
    const e = await sqlError("UPDATE s SET v = 100 WHERE rowid = 1", undefined, sharded);
    expect({ code: e.code, id: e["id"] }).toEqual({ code: "UNSUPPORTED", id: "VD2601" });
    expect((await sql("SELECT count(*) FROM s WHERE v = 100", undefined, sharded)).rows).toEqual([[0]]);
  });

  it("every spelling of the implicit rowid is refused, in reads and writes, qualified or not", async () => {
    const { sharded } = await textKeyed("rt2");
    for (const q of [
      "SELECT rowid, code FROM s",
      "SELECT s.oid FROM s",
      "SELECT code FROM s WHERE _ROWID_ = 2",
      "DELETE FROM s WHERE rowid = 1",
      "SELECT code FROM s ORDER BY rowid LIMIT 1",
      "INSERT INTO s (rowid, code) VALUES (1, 'zz')",
      "SELECT code FROM s WHERE code IN (SELECT code FROM s WHERE rowid < 3)",
    ]) {
      const e = await sqlError(q, undefined, sharded);
      expect({ q, code: e.code, id: e["id"] }).toEqual({ q, code: "UNSUPPORTED", id: "VD2601" });
    }
    expect((await sql("SELECT count(*) FROM s", undefined, sharded)).rows).toEqual([[8]]);
  });

  it("rowid still works where it is the INTEGER PRIMARY KEY, or a declared column, or in an unsharded keyspace", async () => {
    await keyspace("rt3s", 4);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "rt3s");
    await sql("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", undefined, "rt3s");
    expect((await sql("SELECT rowid, v FROM t WHERE rowid >= 2 ORDER BY rowid", undefined, "rt3s")).rows).toEqual([
      [2, "b"],
      [3, "c"],
    ]);
    await sql("CREATE TABLE r (rowid TEXT PRIMARY KEY, v)", undefined, "rt3s");
    await sql("INSERT INTO r VALUES ('x', 1)", undefined, "rt3s");
    expect((await sql("SELECT rowid, v FROM r WHERE rowid = 'x'", undefined, "rt3s")).rows).toEqual([["x", 1]]);
    await keyspace("rt3u", 1);
    await sql("CREATE TABLE s (code TEXT PRIMARY KEY, v)", undefined, "rt3u");
    await sql("INSERT INTO s VALUES ('a', 1)", undefined, "rt3u");
    expect((await sql("SELECT rowid, code FROM s", undefined, "rt3u")).rows).toEqual([[1, "a"]]);
  });
});

describe("a REAL literal is not the integer it equals in JavaScript", () => {
  it("INSERT of 1.0 into a TEXT vindex column (stored as '1.0') is refused instead of placed by the integer 1, where no query finds it", async () => {
    const { sharded, single } = await textKeyed("rt4");
    await sql("INSERT INTO s VALUES (1.0, 'real')", undefined, single);
    expect((await sql("SELECT code, v FROM s WHERE code = '1.0'", undefined, single)).rows).toEqual([["1.0", "real"]]);
    const e = await sqlError("INSERT INTO s VALUES (1.0, 'real')", undefined, sharded);
    expect({ code: e.code, id: e["id"] }).toEqual({ code: "UNSUPPORTED", id: "VD2602" });
    expect((await sql("SELECT count(*) FROM s", undefined, sharded)).rows).toEqual([[8]]);
    // Written as the text SQLite would store, the row is placed and found.
    await sql("INSERT INTO s VALUES ('1.0', 'real')", undefined, sharded);
    expect((await sql("SELECT code, v FROM s WHERE code = '1.0'", undefined, sharded)).rows).toEqual([["1.0", "real"]]);
  });

  it("WHERE code = 1.0 on a TEXT vindex column finds the row '1.0', as SQLite does (it compares the text '1.0')", async () => {
    const { sharded, single } = await textKeyed("rt5");
    for (const ks of [sharded, single]) await sql("INSERT INTO s VALUES ('1.0', 'real'), ('1', 'int')", undefined, ks);
    for (const q of [
      "SELECT code, v FROM s WHERE code = 1.0",
      "SELECT code, v FROM s WHERE code IN (1.0, 5e0)",
      "SELECT code, v FROM s WHERE code = -(-1.0)",
    ]) {
      const want = (await sql(q, undefined, single)).rows;
      expect(want.length).toBeGreaterThan(0);
      expect({ q, rows: (await sql(q, undefined, sharded)).rows }).toEqual({ q, rows: want });
    }
    const before = (await sql("SELECT count(*) FROM s WHERE v = 'changed'", undefined, sharded)).rows;
    expect(before).toEqual([[0]]);
    expect((await sql("UPDATE s SET v = 'changed' WHERE code = 1.0", undefined, sharded)).rowsAffected).toBe(1);
    expect((await sql("SELECT code FROM s WHERE v = 'changed'", undefined, sharded)).rows).toEqual([["1.0"]]);
  });

  it("a REAL literal for an INTEGER vindex column still lands where the integer does", async () => {
    await keyspace("rt6", 4);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "rt6");
    await sql("INSERT INTO t VALUES (7.0, 'seven')", undefined, "rt6");
    expect((await sql("SELECT id, v FROM t WHERE id = 7", undefined, "rt6")).rows).toEqual([[7, "seven"]]);
    expect((await sql("SELECT id, v FROM t WHERE id = 7.0", undefined, "rt6")).rows).toEqual([[7, "seven"]]);
  });
});

describe("virtual tables are refused in every keyspace", () => {
  it("CREATE VIRTUAL TABLE … USING fts5 in an unsharded keyspace is UNSUPPORTED, not a 500", async () => {
    await keyspace("rt7", 1);
    const r = await api<{ error: { code: string; id?: string } }>("POST", "/v1/sql", { keyspace: "rt7", sql: "CREATE VIRTUAL TABLE f USING fts5(x)" });
    expect({ status: r.status, code: r.body.error.code, id: r.body.error.id }).toEqual({ status: 400, code: "UNSUPPORTED", id: "VD2104" });
  });

  it("module arguments cannot name the system's tables: fts5 content= and fts5vocab over _vt_ tables are refused", async () => {
    await keyspace("rt8", 1);
    for (const q of [
      "CREATE VIRTUAL TABLE f USING fts5(kind, tbl, content='_vt_binlog', content_rowid='seq')",
      "CREATE VIRTUAL TABLE v USING fts5vocab('_vt_meta', 'row')",
    ]) {
      const e = await sqlError(q, undefined, "rt8");
      expect({ q, code: e.code, id: e["id"] }).toEqual({ q, code: "UNSUPPORTED", id: "VD2104" });
    }
    expect(
      (await api<{ keyspaces: { name: string; tables: string[] }[] }>("GET", "/v1/topology")).body.keyspaces.find((k) => k.name === "rt8")?.tables,
    ).toEqual([]);
  });
});

describe("values are never silently changed on the way in", () => {
  it("a JSON string param holding a lone surrogate is INVALID_ARGUMENT, not stored as U+FFFD", async () => {
    const r = await api<{ error: { code: string } }>("POST", "/v1/sql", '{"sql": "SELECT hex(?)", "params": ["a\\ud800b"]}');
    expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
  });

  it("SQL text holding a lone surrogate is INVALID_ARGUMENT", async () => {
    const r = await api<{ error: { code: string } }>("POST", "/v1/sql", '{"sql": "SELECT \'\\udc00\'"}');
    expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
  });

  it("a lone surrogate over capnweb is INVALID_ARGUMENT too; a paired one is kept", async () => {
    const res = await exports.default.fetch(new Request("http://gate/rpc", { headers: { upgrade: "websocket" } }));
    const ws = res.webSocket;
    if (!ws) throw new Error("no WebSocket");
    ws.accept();
    const gate = newWebSocketRpcSession<{ execute(req: unknown): Promise<{ rows: unknown[][] }> }>(ws);
    try {
      // Promise.resolve: expect() on a capnweb RpcPromise itself pipelines a call, which rejects whatever the answer.
      await expect(Promise.resolve(gate.execute({ sql: "SELECT ?", params: ["\ud800"] }))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(Promise.resolve(gate.execute({ sql: "SELECT ?", params: ["\ud83d\ude00"] }))).resolves.toMatchObject({ rows: [["\ud83d\ude00"]] });
    } finally {
      ws.close(1000, "done");
    }
  });

  it("an integer JSON number beyond 2^53 is taken exactly, not rounded to a REAL", async () => {
    const r = await api<{ rows: unknown[][] }>("POST", "/v1/sql", '{"sql": "SELECT ?1, typeof(?1)", "params": [1234567890123456789]}');
    expect(r.status).toBe(200);
    expect(r.body.rows).toEqual([[{ int: "1234567890123456789" }, "integer"]]);
    const exact = await api<{ rows: unknown[][] }>("POST", "/v1/sql", '{"sql": "SELECT ?1, typeof(?1)", "params": [-9223372036854775808]}');
    expect(exact.body.rows).toEqual([[{ int: "-9223372036854775808" }, "integer"]]);
    const beyond = await api<{ error: { code: string } }>("POST", "/v1/sql", '{"sql": "SELECT ?", "params": [92233720368547758080]}');
    expect({ status: beyond.status, code: beyond.body.error.code }).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
    // A REAL written as one stays a REAL.
    const real = await api<{ rows: unknown[][] }>("POST", "/v1/sql", '{"sql": "SELECT typeof(?)", "params": [1.2345678901234567e19]}');
    expect(real.body.rows).toEqual([["real"]]);
  });
});

describe("a REAL overflow (±Infinity) is one value over HTTP and capnweb", () => {
  it('SELECT 1e999 answers {"real": "Infinity"} over HTTP and Infinity over capnweb; each accepts it back as a param', async () => {
    const q = "SELECT 1e999, 9e999 * -1, typeof(1e999), 0.0 / 0";
    const http = await api<{ rows: unknown[][] }>("POST", "/v1/sql", { sql: q });
    expect(http.body.rows).toEqual([[{ real: "Infinity" }, { real: "-Infinity" }, "real", null]]);
    const back = await api<{ rows: unknown[][] }>("POST", "/v1/sql", {
      sql: "SELECT ?1, typeof(?1), ?2 < 0",
      params: [{ real: "Infinity" }, { real: "-Infinity" }],
    });
    expect(back.body.rows).toEqual([[{ real: "Infinity" }, "real", 1]]);
    const nan = await api<{ error: { code: string } }>("POST", "/v1/sql", { sql: "SELECT ?", params: [{ real: "NaN" }] });
    expect({ status: nan.status, code: nan.body.error.code }).toEqual({ status: 400, code: "INVALID_ARGUMENT" });

    const res = await exports.default.fetch(new Request("http://gate/rpc", { headers: { upgrade: "websocket" } }));
    const ws = res.webSocket;
    if (!ws) throw new Error("no WebSocket");
    ws.accept();
    const gate = newWebSocketRpcSession<{ execute(req: unknown): Promise<{ rows: unknown[][] }> }>(ws);
    try {
      await expect(Promise.resolve(gate.execute({ sql: q }))).resolves.toMatchObject({ rows: [[Infinity, -Infinity, "real", null]] });
      await expect(Promise.resolve(gate.execute({ sql: "SELECT ?1, typeof(?1)", params: [-Infinity] }))).resolves.toMatchObject({
        rows: [[-Infinity, "real"]],
      });
      await expect(Promise.resolve(gate.execute({ sql: "SELECT ?", params: [Number.NaN] }))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    } finally {
      ws.close(1000, "done");
    }
  });

  it("an UNSUPPORTED error body carries its refusal id", async () => {
    const r = await api<{ error: Record<string, unknown> }>("POST", "/v1/sql", { sql: "VACUUM" });
    expect({ status: r.status, code: r.body.error["code"], id: r.body.error["id"] }).toEqual({ status: 400, code: "UNSUPPORTED", id: "VD1084" });
  });
});

describe("result column names are SQLite's through the real gate", () => {
  it("a placeholder in a select or RETURNING item names its column as written, alone and in a transactional batch, as one SQLite does", async () => {
    const { sharded, single } = await textKeyed("rt7");
    const p = ["p", 5];
    const positional = "SELECT ?, ?1 || code, (?2)  +  1 FROM s WHERE code = 'a'";
    const want = (await sql(positional, p, single)).columns;
    expect(want).toEqual(["?", "?1 || code", "(?2)  +  1"]);
    expect((await sql(positional, p, sharded)).columns).toEqual(want);
    const ins = "INSERT INTO s VALUES ('z', 1) RETURNING code, ? + v";
    expect((await sql(ins, [1], sharded)).columns).toEqual((await sql(ins, [1], single)).columns);
    const batch = await api<{ results: { columns: string[] }[] }>("POST", "/v1/batch", {
      keyspace: sharded,
      transaction: true,
      statements: [{ sql: "SELECT ?, code FROM s WHERE code = 'b'", params: [3] }],
    });
    expect(batch.body.results.map((r) => r.columns)).toEqual([["?", "code"]]);
    // The keyspace's Catalog answers introspection; its columns are named the same way.
    const cat = "SELECT ?, name FROM sqlite_master WHERE name = 's'";
    expect((await sql(cat, [1], sharded)).columns).toEqual(["?", "name"]);
  });
});
