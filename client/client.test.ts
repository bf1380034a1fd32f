// The client SDK against a fake gate served by capnweb's own server end
// (newHttpBatchRpcResponse) behind a fake fetch, and over a real WebSocket where the runtime has one.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { newHttpBatchRpcResponse, newWebSocketRpcSession } from "capnweb";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WebSocketServer } from "ws";
import { createClient, VitessError, type ClientConfig, type InValue } from "./index.ts";
import { FakeDb, FakeGate, TOPOLOGY } from "./fake-gate.test-helper.ts";

const URL_BASE = "http://gate.test";
const BIG = 2n ** 62n;

interface Harness {
  db: FakeDb;
  requests: Request[];
  config: ClientConfig;
}

/** A client config whose fetch serves each request with a fresh FakeGate session over `db`. */
function harness(db = new FakeDb(), extra: Partial<ClientConfig> = {}): Harness {
  const requests: Request[] = [];
  const fakeFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    requests.push(request.clone());
    if (new URL(request.url).pathname !== "/rpc") return new Response("not found", { status: 404 });
    return newHttpBatchRpcResponse(request, new FakeGate(db));
  };
  return { db, requests, config: { url: URL_BASE, keyspace: "main", fetch: fakeFetch as typeof fetch, ...extra } };
}

async function rejection(p: Promise<unknown>): Promise<VitessError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(VitessError);
    return e as VitessError;
  }
  throw new Error("expected a rejection");
}

describe("execute / query / batch", () => {
  it("round-trips bigint beyond 2^53 and Uint8Array exactly", async () => {
    const { config } = harness();
    const db = createClient(config);
    const blob = new Uint8Array([0, 1, 254, 255]);
    const ins = await db.execute("INSERT INTO t VALUES (?, ?)", [BIG, blob]);
    expect(ins).toEqual({ columns: [], rows: [], rowsAffected: 1, lastInsertRowid: BIG });

    const rs = await db.execute("SELECT id, v FROM t WHERE id = ?", [BIG]);
    expect(rs.columns).toEqual(["id", "v"]);
    expect(rs.rows).toHaveLength(1);
    const [id, v] = rs.rows[0] ?? [];
    expect(id).toBe(BIG);
    expect(v).toBeInstanceOf(Uint8Array);
    expect([...(v as Uint8Array)]).toEqual([0, 1, 254, 255]);
    expect(rs.rowsAffected).toBe(0);
    expect("lastInsertRowid" in rs).toBe(false);
  });

  it("sends the configured keyspace with every statement", async () => {
    const { config, db: fake } = harness();
    const db = createClient(config);
    await db.execute("SELECT id, v FROM t");
    await db.batch(["SELECT id, v FROM t"]);
    expect(fake.received.map((r) => r.keyspace)).toEqual(["main", "main"]);
    expect(fake.received[0]).not.toHaveProperty("params");
  });

  it("query returns row objects; a repeated column name keeps the last", async () => {
    const { config } = harness();
    const db = createClient(config);
    await db.execute("INSERT INTO t VALUES (?, ?)", [1, "one"]);
    await db.execute("INSERT INTO t VALUES (?, ?)", [BIG, "big"]);
    const rows = await db.query<{ id: number | bigint; v: string }>("SELECT id, v FROM t");
    expect(rows).toEqual([
      { id: 1, v: "one" },
      { id: BIG, v: "big" },
    ]);
    expect(await db.query("SELECT 1 AS a, 2 AS a")).toEqual([{ a: 2 }]);
  });

  it("takes named parameters, with or without the prefix", async () => {
    const { config, db: fake } = harness();
    const db = createClient(config);
    await db.execute("INSERT INTO t VALUES (:id, :v)", { id: 7n, v: "seven" });
    const rows = await db.query("SELECT id, v FROM t WHERE id = :id", { ":id": 7 });
    expect(rows).toEqual([{ id: 7, v: "seven" }]);
    expect(fake.received[0]).toMatchObject({ params: { id: 7n, v: "seven" } });
  });

  it("normalises booleans, undefined, ArrayBuffer and Buffer before sending", async () => {
    const { config } = harness();
    const db = createClient(config);
    const ab = new Uint8Array([9, 8]).buffer;
    const rs = await db.execute("SELECT ECHO", [true, false, undefined, null, ab, Buffer.from([7]), 1.5, Infinity, "s"]);
    const row = rs.rows[0] ?? [];
    expect(row.slice(0, 4)).toEqual([1, 0, null, null]);
    expect(row[4]).toBeInstanceOf(Uint8Array);
    expect([...(row[4] as Uint8Array)]).toEqual([9, 8]);
    expect([...(row[5] as Uint8Array)]).toEqual([7]);
    expect(row.slice(6)).toEqual([1.5, Infinity, "s"]);
  });

  it("batch returns one result per statement and accepts SQL strings", async () => {
    const { config, db: fake } = harness();
    const db = createClient(config);
    const results = await db.batch(
      [
        { sql: "INSERT INTO t VALUES (?, ?)", params: [1, "a"] },
        { sql: "INSERT INTO t VALUES (:id, :v)", params: { id: BIG, v: new Uint8Array([1]) } },
        "SELECT id, v FROM t",
      ],
      { transaction: true },
    );
    expect(results).toHaveLength(3);
    expect(results[0]?.rowsAffected).toBe(1);
    expect(results[2]?.rows).toEqual([
      [1, "a"],
      [BIG, new Uint8Array([1])],
    ]);
    expect(fake.received[0]).toMatchObject({ keyspace: "main", transaction: true });
    expect(await db.batch([])).toEqual([]);
  });
});

describe("errors", () => {
  it("keep the server's code, position and retryable", async () => {
    const { config } = harness();
    const db = createClient(config);
    const syntax = await rejection(db.execute("SELEC 1"));
    expect(syntax.code).toBe("SYNTAX_ERROR");
    expect(syntax.position).toBe(0);
    expect(syntax.retryable).toBe(false);
    expect(syntax.message).toContain("syntax error");

    const busy = await rejection(db.execute("BUSY"));
    expect(busy.code).toBe("NOT_SERVING");
    expect(busy.retryable).toBe(true);

    await db.execute("INSERT INTO t VALUES (?, ?)", [1, "a"]);
    const dup = await rejection(db.execute("INSERT INTO t VALUES (?, ?)", [1, "b"]));
    expect(dup.code).toBe("CONSTRAINT");
  });

  it("carry statementIndex from a batch, and a transaction applies nothing", async () => {
    const { config, db: fake } = harness();
    const db = createClient(config);
    const err = await rejection(
      db.batch(
        [
          { sql: "INSERT INTO t VALUES (?, ?)", params: [1, "a"] },
          { sql: "INSERT INTO t VALUES (?, ?)", params: [2, "b"] },
          { sql: "INSERT INTO t VALUES (?, ?)", params: [1, "again"] },
        ],
        { transaction: true },
      ),
    );
    expect(err.code).toBe("CONSTRAINT");
    expect(err.statementIndex).toBe(2);
    expect(fake.rows.size).toBe(0);
  });

  it("a server that cannot be reached is a retryable INTERNAL naming the url", async () => {
    const db = createClient({
      url: URL_BASE,
      fetch: (async () => {
        throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:1") });
      }) as typeof fetch,
    });
    const err = await rejection(db.execute("SELECT id, v FROM t"));
    expect(err.code).toBe("INTERNAL");
    expect(err.retryable).toBe(true);
    expect(err.message).toBe(`cannot reach ${URL_BASE}: fetch failed (connect ECONNREFUSED 127.0.0.1:1)`);
  });

  it("an HTTP error body from the gate keeps its code", async () => {
    const db = createClient({
      url: URL_BASE,
      fetch: (async () =>
        Response.json({ error: { code: "UNAUTHENTICATED", message: "missing bearer token", retryable: false } }, { status: 401 })) as typeof fetch,
    });
    const err = await rejection(db.topology());
    expect(err.code).toBe("UNAUTHENTICATED");
    expect(err.message).toBe("missing bearer token");
  });

  it("a non-JSON error answer is INTERNAL with the status", async () => {
    const { config } = harness(new FakeDb(), { url: `${URL_BASE}/wrong-prefix` });
    const err = await rejection(createClient(config).execute("SELECT id, v FROM t"));
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toContain("404");
  });
});

describe("authentication", () => {
  it("the gate rejects a client without the token", async () => {
    const { config } = harness(new FakeDb("s3cret"));
    const err = await rejection(createClient(config).execute("SELECT id, v FROM t"));
    expect(err.code).toBe("UNAUTHENTICATED");
  });

  it("the gate rejects a wrong token", async () => {
    const { config } = harness(new FakeDb("s3cret"), { token: "nope" });
    const err = await rejection(createClient(config).execute("SELECT id, v FROM t"));
    expect(err.code).toBe("UNAUTHENTICATED");
  });

  it("authenticate is pipelined before the call in one request, with the bearer header too", async () => {
    const { config, db: fake, requests } = harness(new FakeDb("s3cret", "admin"), { token: "s3cret" });
    const db = createClient(config);
    await db.execute("INSERT INTO t VALUES (?, ?)", [1, "a"]);
    expect(await db.topology()).toEqual(TOPOLOGY);
    expect(requests).toHaveLength(2);
    expect(requests[0]?.method).toBe("POST");
    expect(requests[0]?.headers.get("authorization")).toBe("Bearer s3cret");
    expect(fake.calls).toEqual(["authenticate", "execute", "authenticate", "topology"]);

    const admin = createClient(harness(fake, { token: "admin" }).config);
    expect(await admin.query("SELECT id, v FROM t")).toEqual([{ id: 1, v: "a" }]);
  });
});

describe("bad parameters are rejected before anything is sent", () => {
  const bad: [string, unknown][] = [
    ["a Date", new Date()],
    ["a plain object", { a: 1 }],
    ["a nested array", [1]],
    ["a symbol", Symbol("s")],
    ["a function", () => 1],
    ["NaN", NaN],
    ["a bigint beyond int64", 2n ** 63n],
    ["an Int32Array", new Int32Array(2)],
  ];
  it.each(bad)("%s", async (_name, value) => {
    const { config, requests } = harness();
    const db = createClient(config);
    const err = await rejection(db.execute("SELECT ECHO", [value as InValue]));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/^params\[0\]: /);
    const named = await rejection(db.batch([{ sql: "SELECT ECHO", params: { x: value as InValue } }]));
    expect(named.message).toMatch(/^statements\[0\]\.params\.x: /);
    expect(requests).toHaveLength(0);
  });

  it("parameters that are neither an array nor a plain object, and empty SQL", async () => {
    const { config, requests } = harness();
    const db = createClient(config);
    expect((await rejection(db.execute("SELECT ECHO", new Map() as never))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(db.execute("  "))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(db.batch("SELECT 1" as never))).code).toBe("INVALID_ARGUMENT");
    expect(requests).toHaveLength(0);
  });
});

describe("lifecycle", () => {
  it("transaction() is UNSUPPORTED (VD1110) and points to batch", async () => {
    const { config, requests } = harness();
    const db = createClient(config);
    const fn = vi.fn(async () => 1);
    const err = await rejection(db.transaction(fn));
    expect({ code: err.code, id: err.id }).toEqual({ code: "UNSUPPORTED", id: "VD1110" });
    expect(fn).not.toHaveBeenCalled();
    expect(requests).toHaveLength(0);
  });

  it("close() is idempotent and later calls reject with 'client is closed'", async () => {
    const { config, requests } = harness();
    const db = createClient(config);
    expect(db.closed).toBe(false);
    await db.close();
    await db.close();
    expect(db.closed).toBe(true);
    for (const p of [db.execute("SELECT id, v FROM t"), db.query("SELECT id, v FROM t"), db.batch(["x"]), db.topology()]) {
      const err = await rejection(p);
      expect(err.code).toBe("INVALID_ARGUMENT");
      expect(err.message).toBe("client is closed");
    }
    expect(requests).toHaveLength(0);
  });

  it("rejects a malformed config synchronously", () => {
    expect(() => createClient({ url: "not a url" })).toThrow(VitessError);
    expect(() => createClient({ url: "ftp://x" })).toThrow(/http/);
    expect(() => createClient({ url: URL_BASE, transport: "carrier-pigeon" as never })).toThrow(/transport/);
  });

  it("transport websocket without a global WebSocket is INVALID_ARGUMENT", () => {
    vi.stubGlobal("WebSocket", undefined);
    try {
      let err: unknown;
      try {
        createClient({ url: URL_BASE, transport: "websocket" });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VitessError);
      expect((err as VitessError).code).toBe("INVALID_ARGUMENT");
      expect((err as VitessError).message).toContain("global WebSocket");
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe.runIf(typeof globalThis.WebSocket === "function")("transport websocket", () => {
  let server: Server | undefined;
  let wss: WebSocketServer | undefined;

  afterEach(async () => {
    wss?.clients.forEach((c) => {
      c.terminate();
    });
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    wss = undefined;
  });

  async function listen(db: FakeDb): Promise<{ url: string; connections: () => number }> {
    let count = 0;
    const s = createServer();
    const w = new WebSocketServer({ server: s, path: "/rpc" });
    w.on("connection", (socket) => {
      count++;
      newWebSocketRpcSession(socket as unknown as WebSocket, new FakeGate(db));
    });
    server = s;
    wss = w;
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    const { port } = s.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, connections: () => count };
  }

  it("keeps one authenticated session for many calls until close()", async () => {
    const fake = new FakeDb("s3cret");
    const { url, connections } = await listen(fake);
    const db = createClient({ url, token: "s3cret", transport: "websocket" });
    await db.execute("INSERT INTO t VALUES (?, ?)", [BIG, new Uint8Array([1, 2])]);
    const rows = await db.query("SELECT id, v FROM t");
    expect(rows).toEqual([{ id: BIG, v: new Uint8Array([1, 2]) }]);
    const err = await rejection(db.execute("SELEC"));
    expect(err).toMatchObject({ code: "SYNTAX_ERROR", position: 0 });
    expect(connections()).toBe(1);
    expect(fake.calls).toEqual(["authenticate", "execute", "execute", "execute"]);
    await db.close();
    expect((await rejection(db.execute("SELECT id, v FROM t"))).message).toBe("client is closed");
  });

  it("a wrong token is UNAUTHENTICATED", async () => {
    const { url } = await listen(new FakeDb("s3cret"));
    const db = createClient({ url, token: "nope", transport: "websocket" });
    expect((await rejection(db.execute("SELECT id, v FROM t"))).code).toBe("UNAUTHENTICATED");
    await db.close();
  });

  it("a dropped connection is a retryable INTERNAL, and the next call reconnects", async () => {
    const { url, connections } = await listen(new FakeDb());
    const db = createClient({ url, transport: "websocket" });
    await db.execute("SELECT id, v FROM t");
    wss?.clients.forEach((c) => {
      c.terminate();
    });
    // The call is written before the client sees the close, so it is the call that fails.
    const err = await rejection(db.execute("SELECT id, v FROM t"));
    expect(err).toMatchObject({ code: "INTERNAL", retryable: true });
    expect(err.message).toContain(`cannot reach ${url}`);
    expect((await db.execute("SELECT id, v FROM t")).columns).toEqual(["id", "v"]);
    expect(connections()).toBe(2);
    await db.close();
  });

  it("a server that is not listening is a retryable INTERNAL", async () => {
    const { url } = await listen(new FakeDb());
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    const db = createClient({ url, transport: "websocket" });
    const err = await rejection(db.topology());
    expect(err).toMatchObject({ code: "INTERNAL", retryable: true });
    expect(err.message).toContain(`cannot reach ${url}`);
    await db.close();
  });
});
