// VStream through the SDK (async iterator and callback, over SSE) and through capnweb
// (vstream(req, onEvent) over a WebSocket). The invariant: each committed change arrives once,
// its transaction whole, values exact (bigint, Uint8Array); a stored token resumes after it.

import { newWebSocketRpcSession } from "capnweb";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createClient, type ChangeEvent } from "../../client/index.ts";
import { api, sql } from "./helpers.ts";

const gateFetch = ((input: RequestInfo | URL, init?: RequestInit) => exports.default.fetch(new Request(input, init))) as typeof fetch;

async function keyspace(ks: string): Promise<void> {
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-80", "80-"] })).status).toBe(200);
  await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, big INTEGER, data BLOB)", undefined, ks);
}

describe("vstream through the SDK and capnweb", () => {
  it("the SDK's iterator hands out exact values, whole transactions, and a token that resumes", async () => {
    const KS = "vsk1";
    await keyspace(KS);
    const db = createClient({ url: "http://gate", fetch: gateFetch, keyspace: KS });
    const stream = db.vstream({ tables: ["users"] });
    const it = stream[Symbol.asyncIterator]();
    // The first event is a HEARTBEAT with the starting token.
    expect((await it.next()).value).toMatchObject({ type: "HEARTBEAT" });
    await db.execute("INSERT INTO users (id, name, big, data) VALUES (?, ?, ?, ?)", [1, "ada", 2n ** 60n, new Uint8Array([1, 2])]);
    await db.batch([{ sql: "UPDATE users SET name = 'grace' WHERE id = 1" }, { sql: "UPDATE users SET big = big + 1 WHERE id = 1" }], { transaction: true });
    const got: ChangeEvent[] = [];
    while (got.filter((e) => e.type === "COMMIT").length < 2) {
      const n = await it.next();
      if (n.done) throw new Error("stream ended");
      if (n.value.type !== "HEARTBEAT") got.push(n.value);
    }
    expect(got.map((e) => e.type)).toEqual(["BEGIN", "ROW", "COMMIT", "BEGIN", "ROW", "ROW", "COMMIT"]);
    const insert = got[1];
    expect(insert?.type === "ROW" ? insert.after : null).toEqual({ id: 1, name: "ada", big: 2n ** 60n, data: new Uint8Array([1, 2]) });
    const mid = got[2];
    const token = mid?.type === "COMMIT" ? mid.token : "";
    expect(stream.token).toBe(got[6]?.type === "COMMIT" ? got[6].token : null);
    await stream.close();

    // The callback form from the first commit's token: the batch's transaction, then stop.
    const seen: ChangeEvent[] = [];
    const end = await db.vstream({ tables: ["users"], from: token }, (e) => {
      if (e.type !== "HEARTBEAT") seen.push(e);
      return !(e.type === "COMMIT");
    });
    expect(seen.map((e) => e.type)).toEqual(["BEGIN", "ROW", "ROW", "COMMIT"]);
    expect(end.token).toBe(seen[3]?.type === "COMMIT" ? seen[3].token : null);
    await db.close();
  }, 60_000);

  it("capnweb's vstream(req, onEvent) calls back for each event with native values", async () => {
    const KS = "vsk2";
    await keyspace(KS);
    const res = await exports.default.fetch(new Request("http://gate/rpc", { headers: { upgrade: "websocket" } }));
    const ws = res.webSocket;
    if (!ws) throw new Error("no WebSocket");
    ws.accept();
    type Gate = { vstream(req: unknown, onEvent: (e: ChangeEvent) => unknown): Promise<{ token: string | null }> };
    const gate = newWebSocketRpcSession<Gate>(ws as unknown as WebSocket);
    const seen: ChangeEvent[] = [];
    const done = gate.vstream({ keyspace: KS, tables: ["users"] }, (e) => {
      seen.push(e);
      return e.type !== "COMMIT";
    });
    // Give the stream its start, then write.
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    await sql("INSERT INTO users (id, big) VALUES (5, 9007199254740993)", undefined, KS);
    const answer = await done;
    const row = seen.find((e) => e.type === "ROW");
    expect(row?.type === "ROW" ? row.after?.["big"] : null).toBe(9007199254740993n);
    expect(answer.token).toBe(seen.at(-1)?.type === "COMMIT" ? (seen.at(-1) as { token: string }).token : "");
    await expect(Promise.resolve(gate.vstream({ keyspace: KS }, "not a function" as never))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    ws.close();
  }, 60_000);
});
