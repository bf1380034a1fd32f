// The gate's edges under bad or hostile input, through the real Worker: authentication before
// routing, request bodies read under a byte cap, batch statement caps, and /rpc answering every
// mistake with a catalogue error (an HTTP error body, or an RPC error carrying `code`).

import { env, exports } from "cloudflare:workers";
import { newWebSocketRpcSession, RpcSession } from "capnweb";
import { afterEach, describe, expect, it, vi } from "vitest";
import { batchSender, HttpBatchTransport } from "../../client/rpc-transport.ts";
import { tokensEqual } from "../../gate/auth.ts";
import { MAX_BODY_BYTES } from "../../gate/body.ts";
import { handleHttp } from "../../gate/http.ts";
import { MAX_RPC_MESSAGE } from "../../gate/rpc-endpoint.ts";
import { MAX_BATCH_STATEMENTS } from "../../gate/wire.ts";
import { api } from "./helpers.ts";

function withTokens(tokens: { GATE_TOKEN?: string; ADMIN_TOKEN?: string }): Env {
  const e = Object.create(env) as Env;
  for (const [k, v] of Object.entries(tokens)) Object.defineProperty(e, k, { value: v });
  return e;
}

async function answer(res: Response): Promise<{ status: number; code: string | undefined }> {
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code };
}

const gateFetch = ((input: RequestInfo | URL, init?: RequestInit) => exports.default.fetch(new Request(input, init))) as typeof fetch;

/** A body stream of `total` bytes in `chunk`-byte pieces that counts what was pulled from it. */
function countingStream(total: number, chunk = 64 * 1024): { stream: ReadableStream<Uint8Array>; pulled: () => number; cancelled: () => boolean } {
  let sent = 0;
  let cancelled = false;
  const piece = new Uint8Array(chunk).fill(0x20);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (sent >= total) {
          controller.close();
          return;
        }
        const n = Math.min(chunk, total - sent);
        sent += n;
        controller.enqueue(n === chunk ? piece.slice() : piece.slice(0, n));
      },
      cancel() {
        cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: () => sent, cancelled: () => cancelled };
}

describe("authentication comes before routing", () => {
  const e = withTokens({ GATE_TOKEN: "user-secret" });
  const call = async (method: string, path: string, token?: string) =>
    answer(await handleHttp(new Request(`http://gate${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} }), e));

  it("a request without a token gets 401 on a known path with the wrong method, and on an unknown path", async () => {
    expect(await call("GET", "/v1/sql")).toEqual({ status: 401, code: "UNAUTHENTICATED" });
    expect(await call("DELETE", "/v1/topology")).toEqual({ status: 401, code: "UNAUTHENTICATED" });
    expect(await call("GET", "/nope")).toEqual({ status: 401, code: "UNAUTHENTICATED" });
    expect(await call("GET", "/v1/sql", "wrong")).toEqual({ status: 401, code: "UNAUTHENTICATED" });
    // /rpc admits a request without a token only to open a session (authenticate() comes inside it).
    expect(await call("GET", "/rpc")).toEqual({ status: 401, code: "UNAUTHENTICATED" });
    expect(await call("PUT", "/rpc")).toEqual({ status: 401, code: "UNAUTHENTICATED" });
    // With the token the same requests reach routing.
    expect(await call("GET", "/v1/sql", "user-secret")).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
    expect(await call("GET", "/nope", "user-secret")).toEqual({ status: 404, code: "INVALID_ARGUMENT" });
    expect((await handleHttp(new Request("http://gate/healthz"), e)).status).toBe(200);
  });

  it("/rpc with a wrong bearer token is refused with 401 before any capnweb message is read", async () => {
    const res = await handleHttp(new Request("http://gate/rpc", { method: "POST", headers: { authorization: "Bearer wrong" }, body: '["pull",1]' }), e);
    expect(await answer(res)).toEqual({ status: 401, code: "UNAUTHENTICATED" });
  });
});

describe("tokens compare in constant time", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("tokensEqual compares 32-byte SHA-256 digests with timingSafeEqual, whatever the lengths", async () => {
    const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
    expect(await tokensEqual("s3cret", "s3cret")).toBe(true);
    expect(await tokensEqual("s3cre", "s3cret")).toBe(false);
    expect(await tokensEqual("s3cret-and-more", "s3cret")).toBe(false);
    expect(await tokensEqual("s3cres", "s3cret")).toBe(false);
    expect(await tokensEqual("", "s3cret")).toBe(false);
    expect(spy).toHaveBeenCalledTimes(5);
    for (const [a, b] of spy.mock.calls) {
      expect([(a as ArrayBuffer).byteLength, (b as ArrayBuffer).byteLength]).toEqual([32, 32]);
    }
  });

  it("an HTTP request's token goes through the digest comparison (admin and gate tokens both checked)", async () => {
    const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
    const e = withTokens({ GATE_TOKEN: "user-secret", ADMIN_TOKEN: "admin-secret" });
    const res = await handleHttp(new Request("http://gate/v1/topology", { headers: { authorization: "Bearer x" } }), e);
    expect(res.status).toBe(401);
    expect(spy).toHaveBeenCalledTimes(2);
  });
});

describe("request bodies are read under a byte cap", () => {
  it("a chunked body (no Content-Length) over 8 MiB is refused after reading at most the cap plus one chunk", async () => {
    const body = countingStream(100 * 1024 * 1024);
    const res = await handleHttp(new Request("http://gate/v1/sql", { method: "POST", body: body.stream, duplex: "half" } as RequestInit), env);
    expect(await answer(res)).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
    expect(body.pulled()).toBeLessThanOrEqual(MAX_BODY_BYTES + 2 * 64 * 1024);
    expect(body.cancelled()).toBe(true);
  });

  it("a chunked body over the cap sent through the Worker's fetch is refused the same way", async () => {
    const body = countingStream(40 * 1024 * 1024);
    const res = await exports.default.fetch(new Request("http://gate/v1/sql", { method: "POST", body: body.stream, duplex: "half" } as RequestInit));
    expect(await answer(res)).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
    expect(body.pulled()).toBeLessThan(40 * 1024 * 1024);
  });

  it("a declared Content-Length over the cap is refused before any byte is read", async () => {
    const body = countingStream(MAX_BODY_BYTES + 1);
    const req = new Request("http://gate/v1/sql", {
      method: "POST",
      body: body.stream,
      headers: { "content-length": String(MAX_BODY_BYTES + 1) },
      duplex: "half",
    } as RequestInit);
    expect(await answer(await handleHttp(req, env))).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
    expect(body.pulled()).toBeLessThanOrEqual(64 * 1024);
  });

  it("a body longer than its Content-Length claims is still capped by what is read", async () => {
    const body = countingStream(20 * 1024 * 1024);
    const req = new Request("http://gate/v1/sql", { method: "POST", body: body.stream, headers: { "content-length": "100" }, duplex: "half" } as RequestInit);
    const got = await answer(await handleHttp(req, env));
    expect(got.status).toBe(400);
    expect(got.code).toBe("INVALID_ARGUMENT");
    expect(body.pulled()).toBeLessThanOrEqual(MAX_BODY_BYTES + 2 * 64 * 1024);
  });

  it("a body stream that fails mid-read is INVALID_ARGUMENT, not a 500", async () => {
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulls++ === 0) controller.enqueue(new TextEncoder().encode('{"sql": "SELE'));
        else controller.error(new Error("client went away"));
      },
    });
    const res = await handleHttp(new Request("http://gate/v1/sql", { method: "POST", body: stream, duplex: "half" } as RequestInit), env);
    expect(await answer(res)).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
  });

  it("a body that is not UTF-8 is INVALID_ARGUMENT, not text with replacement characters", async () => {
    const bytes = new Uint8Array([...new TextEncoder().encode('{"sql": "SELECT \''), 0xff, 0xfe, ...new TextEncoder().encode("'\"}")]);
    const res = await handleHttp(new Request("http://gate/v1/sql", { method: "POST", body: bytes }), env);
    expect(await answer(res)).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
  });

  it("a capnweb HTTP batch body over the cap is refused the same way", async () => {
    const body = countingStream(40 * 1024 * 1024);
    const res = await exports.default.fetch(new Request("http://gate/rpc", { method: "POST", body: body.stream, duplex: "half" } as RequestInit));
    expect(await answer(res)).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
    expect(body.pulled()).toBeLessThan(40 * 1024 * 1024);
  });
});

describe("batches have a statement cap", () => {
  it(`a batch of more than ${MAX_BATCH_STATEMENTS} statements is INVALID_ARGUMENT over HTTP, before anything runs`, async () => {
    const statements = Array.from({ length: MAX_BATCH_STATEMENTS + 1 }, () => ({ sql: "SELECT 1" }));
    const r = await api<{ error: { code: string; limit: number } }>("POST", "/v1/batch", { statements });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "INVALID_ARGUMENT", limit: MAX_BATCH_STATEMENTS });
    const ok = await api<{ results: unknown[] }>("POST", "/v1/batch", { statements: statements.slice(1, 4) });
    expect(ok.body.results).toHaveLength(3);
  });

  it("the same cap holds over capnweb", async () => {
    const gate = new RpcSession<{ batch(req: unknown): Promise<unknown> }>(
      new HttpBatchTransport(batchSender(gateFetch, "http://gate", undefined)),
    ).getRemoteMain();
    const statements = Array.from({ length: MAX_BATCH_STATEMENTS + 1 }, () => ({ sql: "SELECT 1" }));
    await expect(Promise.resolve(gate.batch({ statements }))).rejects.toMatchObject({ code: "INVALID_ARGUMENT", limit: MAX_BATCH_STATEMENTS });
  });
});

interface LooseGate {
  nope(): Promise<unknown>;
  execute(...args: unknown[]): Promise<unknown>;
  topology(...args: unknown[]): Promise<unknown>;
  batch(...args: unknown[]): Promise<unknown>;
  authenticate(...args: unknown[]): Promise<unknown>;
}

// expect() on a capnweb RpcPromise itself would call it (a pipelined call that always rejects), so
// every call below is wrapped in Promise.resolve: the assertion is about the call's own answer.
describe("/rpc answers every mistake with a catalogue error", () => {
  it("a garbage HTTP batch body is 400 INVALID_ARGUMENT, not 500", async () => {
    for (const body of ["garbage", '{"sql": "SELECT 1"}', '["nonsense", 1]', "[1,2,3]\nnot json"]) {
      const res = await exports.default.fetch(new Request("http://gate/rpc", { method: "POST", body, headers: { "content-type": "application/json" } }));
      expect({ body, ...(await answer(res)) }).toEqual({ body, status: 400, code: "INVALID_ARGUMENT" });
    }
  });

  it("a GET of /rpc that is not a WebSocket upgrade is a JSON INVALID_ARGUMENT", async () => {
    expect(await answer(await exports.default.fetch(new Request("http://gate/rpc")))).toEqual({ status: 400, code: "INVALID_ARGUMENT" });
    expect(await answer(await exports.default.fetch(new Request("http://gate/rpc", { method: "PUT", body: "x" })))).toEqual({
      status: 400,
      code: "INVALID_ARGUMENT",
    });
  });

  it("an unknown method over an HTTP batch rejects with code INVALID_ARGUMENT", async () => {
    const gate = new RpcSession<LooseGate>(new HttpBatchTransport(batchSender(gateFetch, "http://gate", undefined))).getRemoteMain();
    await expect(Promise.resolve(gate.nope())).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("an unknown method, extra arguments and wrong argument types over a WebSocket reject with codes", async () => {
    const res = await exports.default.fetch(new Request("http://gate/rpc", { headers: { upgrade: "websocket" } }));
    const ws = res.webSocket;
    if (!ws) throw new Error("no WebSocket");
    ws.accept();
    const gate = newWebSocketRpcSession<LooseGate>(ws);
    try {
      await expect(Promise.resolve(gate.nope())).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(Promise.resolve(gate.execute({ sql: "SELECT 1" }, "extra"))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(Promise.resolve(gate.topology(1))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(Promise.resolve(gate.execute("SELECT 1"))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(Promise.resolve(gate.execute())).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(Promise.resolve(gate.batch({ statements: [{ sql: "SELECT 1" }], transaction: "yes" }))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(Promise.resolve(gate.authenticate(42))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      // The session is still usable after every one of those.
      await expect(gate.execute({ sql: "SELECT 6 * 7" })).resolves.toMatchObject({ rows: [[42]] });
    } finally {
      ws.close(1000, "done");
    }
  });
});

describe("WebSocket messages are bounded", () => {
  it("a capnweb message over 8 MiB aborts the session with an INVALID_ARGUMENT error, and is never parsed", async () => {
    const res = await exports.default.fetch(new Request("http://gate/rpc", { headers: { upgrade: "websocket" } }));
    const ws = res.webSocket;
    if (!ws) throw new Error("no WebSocket");
    ws.accept();
    const first = new Promise<string>((resolve, reject) => {
      ws.addEventListener("message", (ev) => resolve(typeof ev.data === "string" ? ev.data : ""));
      ws.addEventListener("close", () => reject(new Error("closed without an abort message")));
    });
    ws.send(`["push",${JSON.stringify("x".repeat(MAX_RPC_MESSAGE))}]`);
    const msg = JSON.parse(await first) as unknown[];
    expect(msg[0]).toBe("abort");
    expect(JSON.stringify(msg[1])).toContain('"code":"INVALID_ARGUMENT"');
  });
});
