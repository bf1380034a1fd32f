// Change data capture as a user runs it against `wrangler dev`: `vtctl vstream` printing JSON
// lines, the SDK's async iterator over Node's fetch, and the SSE endpoint read by a plain HTTP
// client resuming from a token the SDK handed out. Each sees every committed change once; a
// subscriber connected while `vtctl reshard` splits the keyspace goes on through the journal, and
// `vtctl vstream --from` a token taken before the switch resumes with exactly the later changes.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../client/index.ts";
import { type DevServer, startDev, vtctl } from "./wrangler-dev.ts";

let dev: DevServer;

beforeAll(async () => {
  dev = await startDev();
}, 120_000);

afterAll(() => dev?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql(text: string, params: unknown[] = [], keyspace = "cdc"): Promise<void> {
  const r = await fetch(`${dev.url}/v1/sql`, { method: "POST", body: JSON.stringify({ keyspace, sql: text, params }) });
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

  it("a subscriber goes on through a split's journal; a token from before the switch resumes after it", async () => {
    const KS = "cdcsplit";
    const run = async (...args: string[]) => {
      const r = await vtctl(dev.url, ...args);
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    await run("keyspace", "create", KS, "--shards", "-");
    const vschema = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] } } };
    const vs = await fetch(`${dev.url}/v1/vschema`, { method: "POST", body: JSON.stringify({ keyspace: KS, vschema }) });
    expect(vs.status, await vs.clone().text()).toBe(200);
    await run("sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "--keyspace", KS);
    for (let i = 1; i <= 10; i++) await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `u${i}`], KS);

    const db = createClient({ url: dev.url, keyspace: KS });
    const stream = db.vstream({ tables: ["users"], from: "now" });
    const seen: string[] = [];
    const journals: string[] = [];
    let before: string | null = null;
    const reading = (async () => {
      for await (const e of stream) {
        if (e.type === "ROW") seen.push(`${String(e.after?.["id"])}=${String(e.after?.["name"])}`);
        if (e.type === "COMMIT" && seen.length === 2) before = e.token;
        if (e.type === "JOURNAL") journals.push(`${e.from.join(",")}>${e.to.join(",")}`);
        if (seen.length === 6) break;
      }
    })();
    await sleep(1000);
    await sql("UPDATE users SET name = 'pre' WHERE id = 1", [], KS);
    await sql("UPDATE users SET name = 'pre' WHERE id = 2", [], KS);
    await run("reshard", "create", "--keyspace", KS, "--workflow", "split", "--source-shards", "-", "--target-shards", "-80,80-", "--json");
    await sql("UPDATE users SET name = 'copying' WHERE id = 3", [], KS);
    for (let i = 0; ; i++) {
      const v = JSON.parse(await run("reshard", "show", "--keyspace", KS, "--workflow", "split", "--json")) as { streams: { phase: string; lagMs: number }[] };
      if (v.streams.length === 2 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000)) break;
      if (i > 200) throw new Error(`not caught up: ${JSON.stringify(v)}`);
      await sleep(100);
    }
    await run("reshard", "switchtraffic", "--keyspace", KS, "--workflow", "split", "--json");
    for (const id of [4, 5, 11]) await sql("INSERT INTO users (id, name) VALUES (?, 'post') ON CONFLICT (id) DO UPDATE SET name = 'post'", [id], KS);
    await reading;
    await stream.close();
    await db.close();
    expect(seen).toEqual(["1=pre", "2=pre", "3=copying", ...["4=post", "5=post", "11=post"].filter((x) => seen.includes(x))]);
    expect(seen.slice(3).sort()).toEqual(["11=post", "4=post", "5=post"]);
    expect(journals).toEqual(["->-80,80-"]);

    // From the token after the second change: the four changes after it, through the journal.
    const resumed = await vtctl(dev.url, "vstream", "--keyspace", KS, "--tables", "users", "--from", before ?? "", "--limit", "13");
    expect(resumed.status, resumed.stderr).toBe(0);
    const events = resumed.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; after?: { id: number; name: string } });
    expect(
      events
        .filter((e) => e.type === "ROW")
        .map((e) => `${e.after?.id}=${e.after?.name}`)
        .sort(),
    ).toEqual(["11=post", "3=copying", "4=post", "5=post"]);
    expect(events.filter((e) => e.type === "JOURNAL")).toHaveLength(1);
  }, 180_000);
});
