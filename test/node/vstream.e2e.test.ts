// Change data capture as a user runs it against `wrangler dev`: `vtctl vstream` printing JSON
// lines, the SDK's async iterator over Node's fetch, and the SSE endpoint read by a plain HTTP
// client resuming from a token the SDK handed out. Each sees every committed change once.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../client/index.ts";
import { type DevServer, startDev, vtctl } from "./wrangler-dev.ts";

let dev: DevServer;

beforeAll(async () => {
  dev = await startDev();
}, 120_000);

afterAll(() => dev?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql(text: string, params: unknown[] = []): Promise<void> {
  const r = await fetch(`${dev.url}/v1/sql`, { method: "POST", body: JSON.stringify({ keyspace: "cdc", sql: text, params }) });
  if (r.status !== 200) throw new Error(`${text}: ${r.status} ${await r.text()}`);
}

describe("vstream through wrangler dev", () => {
  it("vtctl vstream, the SDK iterator and a plain SSE client each see every change once", async () => {
    const ks = await fetch(`${dev.url}/v1/keyspaces`, { method: "POST", body: JSON.stringify({ name: "cdc", shards: 2 }) });
    expect(ks.status).toBe(200);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");

    // vtctl: two inserts are BEGIN, ROW, COMMIT twice.
    const printed = vtctl(dev.url, "vstream", "--keyspace", "cdc", "--tables", "users", "--limit", "6");
    await sleep(1500);
    await sql("INSERT INTO users (id, name) VALUES (1, 'ada')");
    await sql("INSERT INTO users (id, name) VALUES (2, 'grace')");
    const out = await printed;
    expect(out.status, out.stderr).toBe(0);
    const lines = out.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; after?: { name: string } });
    expect(
      lines
        .filter((e) => e.type === "ROW")
        .map((e) => e.after?.name)
        .sort(),
    ).toEqual(["ada", "grace"]);

    // The SDK's iterator from "start": the two rows as they are, then a change.
    const db = createClient({ url: dev.url, keyspace: "cdc" });
    const stream = db.vstream({ tables: ["users"], from: "start" });
    const names: string[] = [];
    let token: string | null = null;
    let wrote = false;
    for await (const e of stream) {
      if (e.type === "ROW") names.push(`${e.copy ? "copy" : e.op}:${String(e.after?.["name"])}`);
      if (e.type === "COMMIT" && names.length === 2 && !wrote) {
        wrote = true;
        await sql("UPDATE users SET name = 'ada l.' WHERE id = 1");
      }
      if (e.type === "COMMIT" && names.length === 3) {
        token = e.token;
        break;
      }
    }
    await stream.close();
    await db.close();
    expect(names.slice(0, 2).sort()).toEqual(["copy:ada", "copy:grace"]);
    expect(names[2]).toBe("update:ada l.");

    // A plain HTTP client resumes from the SDK's token: only the later change.
    await sql("DELETE FROM users WHERE id = 2");
    const res = await fetch(`${dev.url}/v1/vstream?keyspace=cdc&tables=users&from=${token ?? ""}`);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while (!text.includes("event: COMMIT")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    const rows = text
      .split("\n\n")
      .filter((b) => b.startsWith("event: ROW"))
      .map(
        (b) =>
          JSON.parse(
            b
              .split("\n")
              .find((l) => l.startsWith("data: "))
              ?.slice(6) ?? "{}",
          ) as { op: string; before: { id: number } },
      );
    expect(rows.map((r) => [r.op, r.before.id])).toEqual([["delete", 2]]);
  }, 120_000);
});
