// A queue subscription delivering to a consumer Worker of its own (examples/subscription-consumer),
// both Workers under one `wrangler dev` as `npm run dev:consumer` runs them: the subscription, from
// "start", publishes onto the gate's CONSUMER_QUEUE binding; the consumer Worker reads that queue
// and its dead-letter queue with the SDK's reader and applies what it hands out to its own Durable
// Object. Its rows end exactly as the keyspace's (ints beyond 2^53 and BLOBs included), every
// transaction is applied once and in commit order per shard, and a stretch in which the consumer
// failed every delivery (so the queue gave those messages up to the dead-letter queue) loses nothing.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDev, vtctl } from "./wrangler-dev.ts";

let dev: DevServer;

beforeAll(async () => {
  dev = await startDev(120_000, undefined, ["examples/subscription-consumer/wrangler.toml", "wrangler.toml"]);
}, 150_000);

afterAll(() => dev?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql(text: string, params: unknown[] = []): Promise<unknown[][]> {
  const r = await fetch(`${dev.url}/v1/sql`, { method: "POST", body: JSON.stringify({ keyspace: "cons", sql: text, params }) });
  if (r.status !== 200) throw new Error(`${text}: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { rows: unknown[][] }).rows;
}

interface Applied {
  subscription: string;
  shard: string;
  seq: number;
  copy: number;
  via: string;
}

const applied = async () => ((await (await fetch(`${dev.url}/consumer/applied`)).json()) as { transactions: Applied[] }).transactions;

/** The keyspace's rows and the consumer's, both as [id, v, big, data] in id order. */
async function bothSides(): Promise<{ source: unknown[][]; mirror: unknown[][] }> {
  const source = await sql("SELECT id, v, big, data FROM items ORDER BY id");
  const r = await fetch(`${dev.url}/consumer/rows?table=items`);
  expect(r.status).toBe(200);
  const rows = ((await r.json()) as { rows: Record<string, unknown>[] }).rows;
  const mirror = rows.map((x) => [x["id"], x["v"], x["big"], x["data"]]).sort((a, b) => Number(a[0]) - Number(b[0]));
  return { source, mirror };
}

async function converged(what: string, extra: (a: Applied[]) => boolean = () => true): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const { source, mirror } = await bothSides();
    if (JSON.stringify(source) === JSON.stringify(mirror) && extra(await applied())) return;
    if (Date.now() > until) {
      expect(mirror, `${what}: the consumer's rows`).toEqual(source);
      throw new Error(`${what}: the rows match but the applied log does not`);
    }
    await sleep(300);
  }
}

describe("a queue subscription into a consumer Worker", () => {
  it("the consumer's rows end as the keyspace's; each transaction once, in order per shard; dead letters lose nothing", { timeout: 240_000 }, async () => {
    const ks = await fetch(`${dev.url}/v1/keyspaces`, { method: "POST", body: JSON.stringify({ name: "cons", shards: 2 }) });
    expect(ks.status).toBe(200);
    await sql("CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER, big INTEGER, data BLOB)");
    for (let i = 1; i <= 30; i++)
      await sql("INSERT INTO items (id, v, big, data) VALUES (?, 0, ?, ?)", [i, { int: `${2n ** 60n + BigInt(i)}` }, { base64: "AAEC/w==" }]);

    const created = await vtctl(
      dev.url,
      "subscription",
      "create",
      "--keyspace",
      "cons",
      "--name",
      "mirror",
      "--binding",
      "CONSUMER_QUEUE",
      "--tables",
      "items",
      "--from",
      "start",
    );
    expect(created.status, created.stderr).toBe(0);

    // Changes while the copy goes out and after: updates, deletes, inserts, a transaction of two statements.
    for (let i = 1; i <= 30; i++) await sql("UPDATE items SET v = v + 1 WHERE id = ?", [i]);
    for (let i = 1; i <= 30; i += 7) await sql("DELETE FROM items WHERE id = ?", [i]);
    for (let i = 31; i <= 40; i++) await sql("INSERT INTO items (id, v, big, data) VALUES (?, ?, NULL, NULL)", [i, i]);
    const batch = await fetch(`${dev.url}/v1/batch`, {
      method: "POST",
      body: JSON.stringify({
        keyspace: "cons",
        transaction: true,
        statements: [{ sql: "UPDATE items SET v = 100 WHERE id = 2" }, { sql: "UPDATE items SET v = v + 1, data = x'0a0b' WHERE id = 2" }],
      }),
    });
    expect(batch.status, await batch.clone().text()).toBe(200);
    await converged("after the copy and the first changes");
    const copies = (await applied()).filter((t) => t.copy === 1);
    expect(new Set(copies.map((t) => t.shard))).toEqual(new Set(["-80", "80-"]));

    // The consumer fails every delivery until the queue gives a batch up to the dead-letter queue.
    const fail = await fetch(`${dev.url}/consumer/fail`, { method: "POST", body: JSON.stringify({ untilDeadLetter: true }) });
    expect(fail.status).toBe(200);
    const deletedIds = new Set([1, 8, 15, 22, 29]); // every update below changes a row
    for (let i = 2; i <= 40; i += 3) if (!deletedIds.has(i)) await sql("UPDATE items SET v = v * 2 WHERE id = ?", [i]);
    await converged("after the dead letters", (a) => a.some((t) => t.via === "vitess-do-consumer-dlq"));
    for (let i = 3; i <= 40; i += 5) if (!deletedIds.has(i)) await sql("UPDATE items SET v = -v WHERE id = ?", [i]);
    await converged("after the consumer is back");

    // Each transaction once, in commit order per shard (a shard's copy pages stand at one position).
    const log = await applied();
    const changes = log.filter((t) => t.copy === 0).map((t) => `${t.shard}@${t.seq}`);
    expect(new Set(changes).size).toBe(changes.length);
    const last = new Map<string, number>();
    for (const t of log) {
      const before = last.get(t.shard) ?? -1;
      if (t.copy === 1) expect(t.seq).toBeGreaterThanOrEqual(before);
      else expect(t.seq).toBeGreaterThan(before);
      last.set(t.shard, t.seq);
    }
    // 30 updates, 5 deletes, 10 inserts, the batch, 11 and 7 updates: every write was a transaction of items.
    expect(changes).toHaveLength(30 + 5 + 10 + 1 + 11 + 7);

    const deleted = await vtctl(dev.url, "subscription", "delete", "--name", "mirror");
    expect(deleted.status, deleted.stderr).toBe(0);
  });
});
