import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { handleHttp } from "../../gate/http.ts";
import { api, sql, sqlError } from "./helpers.ts";

describe("HTTP endpoints", () => {
  it("answers /healthz", async () => {
    const r = await api("GET", "/healthz");
    expect(r).toEqual({ status: 200, body: "ok" });
  });

  it("keeps 64-bit integers, BLOBs and text exact both ways", async () => {
    await sql("CREATE TABLE vals (id INTEGER PRIMARY KEY, big INTEGER, b BLOB, t TEXT, r REAL)");
    const big = "9223372036854775807";
    const ins = await sql("INSERT INTO vals (id, big, b, t, r) VALUES (?, ?, ?, ?, ?)", [
      { int: "-9223372036854775808" },
      { int: big },
      { base64: "AP8Q" },
      "42",
      0.1,
    ]);
    expect(ins.rowsAffected).toBe(1);
    expect(ins.lastInsertRowid).toEqual({ int: "-9223372036854775808" });
    const r = await sql("SELECT id, big, b, t, r, typeof(t) FROM vals WHERE id = ?", [{ int: "-9223372036854775808" }]);
    expect(r.rows).toEqual([[{ int: "-9223372036854775808" }, { int: big }, { base64: "AP8Q" }, "42", 0.1, "text"]]);
    // The binlog on that shard holds the same exact values.
    const topo = await api<{ keyspaces: { name: string; shards: { name: string; position: string }[] }[] }>("GET", "/v1/topology");
    const shards = topo.body.keyspaces.find((k) => k.name === "main")?.shards ?? [];
    let found = false;
    for (const s of shards) {
      const chunk = await env.TABLET.get(env.TABLET.idFromName(`main/${s.name}`)).readBinlog(null, 1000);
      if (!chunk.ok) continue;
      for (const e of chunk.value.events) {
        if (e.kind === "insert" && e.table === "vals") {
          expect(e.after).toEqual([-(2n ** 63n), 2n ** 63n - 1n, new Uint8Array([0, 255, 16]), "42", 0.1]);
          found = true;
        }
      }
    }
    expect(found).toBe(true);
  });

  it("accepts every placeholder style", async () => {
    await sql("CREATE TABLE ph (id INTEGER PRIMARY KEY, a TEXT, b TEXT)");
    await sql("INSERT INTO ph VALUES (?, ?, ?)", [1, "x", "y"]);
    await sql("INSERT INTO ph VALUES (?1, ?2, ?2)", [2, "z"]);
    await sql("INSERT INTO ph VALUES ($1, $2, $3)", [3, "p", "q"]);
    await sql("INSERT INTO ph VALUES (:id, @a, $b)", { id: 4, a: "m", b: "n" });
    await sql("INSERT INTO ph VALUES (:id, :a, :a)", { ":id": 5, ":a": "k" });
    const r = await sql("SELECT id, a, b FROM ph ORDER BY id");
    expect(r.rows).toEqual([
      [1, "x", "y"],
      [2, "z", "z"],
      [3, "p", "q"],
      [4, "m", "n"],
      [5, "k", "k"],
    ]);
  });

  it("runs a one-shard batch as a transaction: all or nothing", async () => {
    await sql("CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))");
    await sql("INSERT INTO acct VALUES (1, 100)");
    const ok = await api<{ results: { rowsAffected: number }[] }>("POST", "/v1/batch", {
      transaction: true,
      statements: [{ sql: "UPDATE acct SET bal = bal - 30 WHERE id = 1" }, { sql: "UPDATE acct SET bal = bal - 30 WHERE id = ?", params: [1] }],
    });
    expect(ok.status).toBe(200);
    expect(ok.body.results.map((r) => r.rowsAffected)).toEqual([1, 1]);
    const bad = await api<{ error: { code: string; statementIndex: number } }>("POST", "/v1/batch", {
      transaction: true,
      statements: [
        { sql: "UPDATE acct SET bal = bal - 30 WHERE id = 1" },
        { sql: "UPDATE acct SET bal = bal - 30 WHERE id = 1" },
        { sql: "UPDATE acct SET bal = bal - 30 WHERE id = 1" },
      ],
    });
    expect(bad.status).toBe(409);
    expect(bad.body.error.code).toBe("CONSTRAINT");
    expect(bad.body.error.statementIndex).toBe(1);
    expect((await sql("SELECT bal FROM acct WHERE id = 1")).rows).toEqual([[40]]);
    // Statements reaching two shards cannot share a transaction yet.
    const multi = await api<{ error: { code: string; id?: string } }>("POST", "/v1/batch", {
      transaction: true,
      statements: [
        { sql: "INSERT INTO acct VALUES (2, 1)" },
        { sql: "INSERT INTO acct VALUES (3, 1)" },
        { sql: "INSERT INTO acct VALUES (4, 1)" },
        { sql: "INSERT INTO acct VALUES (5, 1)" },
      ],
    });
    expect(multi.status).toBe(400);
    expect({ code: multi.body.error.code, id: multi.body.error.id }).toEqual({ code: "UNSUPPORTED", id: "VD1100" });
    expect((await sql("SELECT count(*) FROM acct")).rows).toEqual([[1]]);
    // Without a transaction each statement commits and the batch stops at the first error.
    const seq = await api<{ error: { code: string; statementIndex: number } }>("POST", "/v1/batch", {
      statements: [{ sql: "INSERT INTO acct VALUES (2, 1)" }, { sql: "INSERT INTO acct VALUES (2, 1)" }, { sql: "INSERT INTO acct VALUES (3, 1)" }],
    });
    expect(seq.body.error).toMatchObject({ code: "CONSTRAINT", statementIndex: 1 });
    expect((await sql("SELECT id FROM acct ORDER BY id")).rows).toEqual([[1], [2]]);
  });

  it("creates keyspaces and applies vschemas; bad ones are refused with INVALID_ARGUMENT", async () => {
    const created = await api<{ keyspaces: { name: string; shards: { name: string }[] }[] }>("POST", "/v1/keyspaces", { name: "k4", shards: 4 });
    expect(created.status).toBe(200);
    expect(created.body.keyspaces.find((k) => k.name === "k4")?.shards.map((s) => s.name)).toEqual(["-40", "40-80", "80-c0", "c0-"]);
    const listed = await api("POST", "/v1/keyspaces", { name: "k2", shards: ["80-", "-80"] });
    expect(listed.status).toBe(200);
    for (const [shards, msg] of [
      [["-80", "40-"], "overlap"],
      [["-40", "80-"], "gap"],
      [["-80"], "end"],
      [0, "count"],
      ["x", "shards"],
    ] as const) {
      const r = await api<{ error: { code: string; message: string } }>("POST", "/v1/keyspaces", { name: `bad${String(msg)}`, shards });
      expect(r.status, JSON.stringify(shards)).toBe(400);
      expect(r.body.error.code).toBe("INVALID_ARGUMENT");
      expect(r.body.error.message.toLowerCase()).toContain(msg);
    }
    const dup = await api<{ error: { code: string } }>("POST", "/v1/keyspaces", { name: "k4", shards: 2 });
    expect(dup.body.error.code).toBe("INVALID_ARGUMENT");

    const vschema = { sharded: true, vindexes: { hash: { type: "xxhash" } }, tables: { orders: { column_vindexes: [{ column: "user_id", name: "hash" }] } } };
    const applied = await api("POST", "/v1/vschema", { keyspace: "k4", vschema });
    expect(applied.status).toBe(200);
    await sql("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, total REAL)", undefined, "k4");
    for (let u = 1; u <= 20; u++) await sql("INSERT INTO orders (id, user_id, total) VALUES (?, ?, ?), (?, ?, ?)", [u * 10, u, u, u * 10 + 1, u, 1], "k4");
    expect((await sql("SELECT count(*), sum(total) FROM orders WHERE user_id = 7", undefined, "k4")).rows).toEqual([[2, 8]]);
    expect((await sql("SELECT count(*), sum(total) FROM orders", undefined, "k4")).rows).toEqual([[40, 230]]);
    const got = await api<{ vschema: unknown }>("GET", "/v1/vschema?keyspace=k4");
    expect(got.body.vschema).toEqual(vschema);
    for (const bad of [
      { sharded: true, vindexes: { h: { type: "nope" } } },
      { sharded: true, vindexes: { h: { type: "xxhash" } }, tables: { t: { column_vindexes: [{ column: "a", name: "missing" }] } } },
      { sharded: true, tables: { t: {} } },
      "not an object",
    ]) {
      const r = await api<{ error: { code: string } }>("POST", "/v1/vschema", { keyspace: "k4", vschema: bad });
      expect(r.body.error.code, JSON.stringify(bad)).toBe("INVALID_ARGUMENT");
    }
  });

  it("gives CREATE TABLE a vschema entry on its first primary key column, or says what to add", async () => {
    await sql("CREATE TABLE pk2 (a TEXT, b INTEGER, PRIMARY KEY (b, a))");
    const v = await api<{ vschema: { tables: Record<string, unknown> } }>("GET", "/v1/vschema?keyspace=main");
    expect(v.body.vschema.tables["pk2"]).toEqual({ column_vindexes: [{ column: "b", name: "xxhash" }] });
    const e = await sqlError("CREATE TABLE nopk (a TEXT, b INTEGER)");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain("vschema");
    expect((await sqlError("SELECT * FROM nopk")).code).toBe("UNKNOWN_TABLE");
  });
});

describe("bad input: a clear error from the catalogue and nothing written", () => {
  it("maps each kind of bad request to its code", async () => {
    await sql("CREATE TABLE bad (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER) ");
    await sql("INSERT INTO bad VALUES (1, 'one', 1)");
    const cases: [string, unknown, string, number][] = [
      ["SELEC * FROM bad", undefined, "SYNTAX_ERROR", 400],
      ["SELECT * FROM nothere", undefined, "UNKNOWN_TABLE", 400],
      ["SELECT * FROM _vt_binlog", undefined, "PERMISSION_DENIED", 403],
      ["INSERT INTO _vt_meta VALUES ('x', 'y')", undefined, "PERMISSION_DENIED", 403],
      // sqlite_master and pragma_table_info(…) answer from the keyspace's Catalog (orm.e2e.test.ts).
      ["SELECT * FROM sqlite_sequence", undefined, "UNSUPPORTED", 400],
      ["SELECT * FROM pragma_compile_options()", undefined, "UNSUPPORTED", 400],
      ["SELECT * FROM bad, sqlite_master", undefined, "UNSUPPORTED", 400],
      ["PRAGMA recursive_triggers = OFF", undefined, "UNSUPPORTED", 400],
      ["BEGIN", undefined, "UNSUPPORTED", 400],
      ["INSERT INTO bad VALUES (1, 'dup', 1)", undefined, "CONSTRAINT", 409],
      ["INSERT INTO bad VALUES (2, NULL, 1)", undefined, "CONSTRAINT", 409],
      ["INSERT INTO bad (name) VALUES ('two', 'values')", undefined, "INVALID_ARGUMENT", 400],
      ["SELECT * FROM bad WHERE id = ?", [], "INVALID_ARGUMENT", 400],
      ["SELECT * FROM bad WHERE id = ?", [1, 2], "INVALID_ARGUMENT", 400],
      ["SELECT * FROM bad WHERE id = :id", [1], "INVALID_ARGUMENT", 400],
      ["SELECT * FROM bad WHERE id = ?", [{ nope: 1 }], "INVALID_ARGUMENT", 400],
      ["SELECT * FROM bad WHERE id = ?", [{ int: "12x" }], "INVALID_ARGUMENT", 400],
      ["SELECT * FROM bad WHERE id = ?", [{ int: "99999999999999999999" }], "INVALID_ARGUMENT", 400],
      ["SELECT 1; SELECT 2", undefined, "INVALID_ARGUMENT", 400],
      ["", undefined, "INVALID_ARGUMENT", 400],
      ["INSERT INTO bad VALUES (3, ?, 1)", ["x".repeat(2_000_001)], "INVALID_ARGUMENT", 400],
      ["SELECT * FROM bad WHERE EXISTS (SELECT 1 FROM bad AS b2 WHERE b2.n = bad.id)", undefined, "UNSUPPORTED", 400],
    ];
    for (const [text, params, code, status] of cases) {
      const e = await sqlError(text, params);
      expect({ text, code: e.code, status: e.status }).toEqual({ text, code, status });
      expect(typeof e.message).toBe("string");
      expect(typeof e["retryable"]).toBe("boolean");
    }
    const syn = await sqlError("SELECT * FROM bad WHERE");
    expect(syn.code).toBe("SYNTAX_ERROR");
    expect(syn["position"]).toBe(23);
    expect((await sql("SELECT id, name, n FROM bad ORDER BY id")).rows).toEqual([[1, "one", 1]]);
  });

  it("rejects malformed bodies", async () => {
    for (const [body, code] of [
      ["", "INVALID_ARGUMENT"],
      ["{not json", "INVALID_ARGUMENT"],
      ["[1,2]", "INVALID_ARGUMENT"],
      [JSON.stringify({ sql: 42 }), "INVALID_ARGUMENT"],
      [JSON.stringify({ sql: "SELECT 1", params: "x" }), "INVALID_ARGUMENT"],
      [JSON.stringify({ sql: "SELECT 1", keyspace: 7 }), "INVALID_ARGUMENT"],
      [JSON.stringify({ sql: "SELECT 1", keyspace: "nope" }), "INVALID_ARGUMENT"],
    ] as const) {
      const r = await api<{ error: { code: string } }>("POST", "/v1/sql", body);
      expect({ body, code: r.body.error.code, status: r.status }).toEqual({ body, code, status: 400 });
    }
    const wrongMethod = await api<{ error: { code: string } }>("GET", "/v1/sql");
    expect(wrongMethod.body.error.code).toBe("INVALID_ARGUMENT");
    const missing = await api("GET", "/nope");
    expect(missing.status).toBe(404);
  });
});

describe("auth", () => {
  function withTokens(tokens: { GATE_TOKEN?: string; ADMIN_TOKEN?: string }): Env {
    const e = Object.create(env) as Env;
    for (const [k, v] of Object.entries(tokens)) Object.defineProperty(e, k, { value: v });
    return e;
  }
  const call = async (e: Env, method: string, path: string, body?: unknown, token?: string) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token) headers["authorization"] = `Bearer ${token}`;
    const res = await handleHttp(new Request(`http://gate${path}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) }), e);
    return { status: res.status, body: (await res.json().catch(() => null)) as { error?: { code: string } } | null };
  };

  it("needs GATE_TOKEN on every request but /healthz, and ADMIN_TOKEN for admin operations", async () => {
    const e = withTokens({ GATE_TOKEN: "user-secret", ADMIN_TOKEN: "admin-secret" });
    expect((await handleHttp(new Request("http://gate/healthz"), e)).status).toBe(200);
    expect(await call(e, "POST", "/v1/sql", { sql: "SELECT 1" })).toMatchObject({ status: 401, body: { error: { code: "UNAUTHENTICATED" } } });
    expect(await call(e, "POST", "/v1/sql", { sql: "SELECT 1" }, "wrong")).toMatchObject({ status: 401 });
    expect(await call(e, "POST", "/v1/sql", { sql: "SELECT 1" }, "user-secret")).toMatchObject({ status: 200 });
    expect(await call(e, "POST", "/v1/sql", { sql: "SELECT 1" }, "admin-secret")).toMatchObject({ status: 200 });
    expect(await call(e, "POST", "/v1/keyspaces", { name: "authks", shards: 2 }, "user-secret")).toMatchObject({
      status: 403,
      body: { error: { code: "PERMISSION_DENIED" } },
    });
    expect(await call(e, "POST", "/v1/keyspaces", { name: "authks", shards: 2 }, "admin-secret")).toMatchObject({ status: 200 });
  });

  it("with only GATE_TOKEN, that token is enough for admin operations", async () => {
    const e = withTokens({ GATE_TOKEN: "only" });
    expect(
      await call(e, "POST", "/v1/vschema", { keyspace: "main", vschema: { sharded: true, vindexes: { xxhash: { type: "xxhash" } } } }, "only"),
    ).toMatchObject({ status: 200 });
    expect(await call(e, "GET", "/v1/topology")).toMatchObject({ status: 401 });
  });

  it("exports.default is the same handler", () => {
    expect(typeof exports.default.fetch).toBe("function");
  });
});
