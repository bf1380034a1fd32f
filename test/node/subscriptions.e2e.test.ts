// Queue subscriptions as a user runs them against `wrangler dev`: `vtctl subscription create` onto
// the demo queue binding, writes across both shards, and the messages the queue delivered (to the
// gate's own demo consumer, read back from GET /v1/subscriptions/inbox) fed to the SDK's reader:
// every transaction comes out once, whole, in commit order per shard, each row's changes in the
// order they were made, also after `wrangler dev` restarted. `vtctl subscription show` and `vtctl topology` show it with its lag, and
// `vtctl subscription delete` stops it.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newSubscriptionReaderState, readSubscriptionBatch, type SubscriptionTransaction } from "../../client/index.ts";
import { type DevServer, startDev, vtctl } from "./wrangler-dev.ts";

let dev: DevServer;

beforeAll(async () => {
  dev = await startDev();
}, 120_000);

afterAll(() => dev?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql(text: string, params: unknown[] = []): Promise<void> {
  const r = await fetch(`${dev.url}/v1/sql`, { method: "POST", body: JSON.stringify({ keyspace: "subs", sql: text, params }) });
  if (r.status !== 200) throw new Error(`${text}: ${r.status} ${await r.text()}`);
}

/** Every body the demo queue delivered for `name`, in delivery order (repeats included). */
async function delivered(name: string): Promise<string[]> {
  const out: string[] = [];
  let after = 0;
  for (;;) {
    const r = await fetch(`${dev.url}/v1/subscriptions/inbox?after=${after}&limit=1000`);
    expect(r.status).toBe(200);
    const { messages } = (await r.json()) as { messages: { i: number; body: string }[] };
    if (messages.length === 0) return out;
    for (const m of messages) if ((JSON.parse(m.body) as { subscription: string }).subscription === name) out.push(m.body);
    after = messages[messages.length - 1]?.i ?? after;
  }
}

describe("queue subscriptions through wrangler dev", () => {
  it("a consumer of the queue gets every transaction once, in order per shard, across a restart", { timeout: 240_000 }, async () => {
    const ks = await fetch(`${dev.url}/v1/keyspaces`, { method: "POST", body: JSON.stringify({ name: "subs", shards: 2 }) });
    expect(ks.status).toBe(200);
    await sql("CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER)");
    await sql("INSERT INTO items (id, v) VALUES (999, 0)");
    const created = await vtctl(
      dev.url,
      "subscription",
      "create",
      "--keyspace",
      "subs",
      "--name",
      "e2e",
      "--binding",
      "SUBSCRIPTION_QUEUE",
      "--tables",
      "items",
    );
    expect(created.status, created.stderr).toBe(0);
    expect(created.stdout).toContain("created subscription e2e of keyspace subs onto SUBSCRIPTION_QUEUE");
    const refused = await vtctl(dev.url, "subscription", "create", "--keyspace", "subs", "--name", "e2e", "--binding", "SUBSCRIPTION_QUEUE");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^INVALID_ARGUMENT: .*exists already/);

    // Ten rows, each then updated twice: 30 transactions over both shards.
    for (let i = 1; i <= 10; i++) await sql("INSERT INTO items (id, v) VALUES (?, 0)", [i]);
    for (let round = 1; round <= 2; round++) for (let i = 1; i <= 10; i++) await sql("UPDATE items SET v = ? WHERE id = ?", [round, i]);

    /** Reads every delivery so far until `n` transactions come out; checks them per shard and per row. */
    const readAll = async (n: number, rounds: number[]) => {
      let txs: SubscriptionTransaction[] = [];
      const until = Date.now() + 60_000;
      while (txs.length < n && Date.now() < until) {
        await sleep(500);
        const r = readSubscriptionBatch(await delivered("e2e"), newSubscriptionReaderState());
        expect(r.invalid).toEqual([]);
        txs = r.transactions;
      }
      expect(txs).toHaveLength(n);
      const lastSeq = new Map<string, number>();
      const values = new Map<number, number[]>();
      for (const t of txs) {
        expect(t.seq).toBeGreaterThan(lastSeq.get(t.shard) ?? -1);
        lastSeq.set(t.shard, t.seq);
        expect(t.events.map((e) => e.type)).toEqual(["BEGIN", "ROW", "COMMIT"]);
        const row = t.events[1];
        if (row?.type !== "ROW") throw new Error("no row");
        const id = Number(row.after?.["id"]);
        values.set(id, [...(values.get(id) ?? []), Number(row.after?.["v"])]);
      }
      expect(lastSeq.size).toBe(2);
      expect([...values.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      for (const v of values.values()) expect(v).toEqual(rounds);
    };
    await readAll(30, [0, 1, 2]);

    // wrangler dev stopped and started again on its state: the publisher goes on from its stored
    // cursor by itself. (Local queues are in memory: everything sent was delivered before the stop.)
    const kept = dev.state;
    const oldUrl = dev.url;
    dev.stop(true);
    for (let i = 0; i < 100; i++) {
      if (
        !(await fetch(`${oldUrl}/healthz`).then(
          () => true,
          () => false,
        ))
      )
        break;
      await sleep(200);
    }
    dev = await startDev(90_000, kept);
    for (let i = 1; i <= 10; i++) await sql("UPDATE items SET v = 3 WHERE id = ?", [i]);
    await readAll(40, [0, 1, 2, 3]);

    const shown = await vtctl(dev.url, "subscription", "show", "--name", "e2e", "--json");
    expect(shown.status, shown.stderr).toBe(0);
    const [sub] = (JSON.parse(shown.stdout) as { subscriptions: { status: { running: boolean; published: number; lagMs: number; lastError: unknown } }[] })
      .subscriptions;
    expect(sub?.status).toEqual(expect.objectContaining({ running: true, lastError: null }));
    expect(sub?.status.published).toBeGreaterThanOrEqual(40);
    expect(typeof sub?.status.lagMs).toBe("number");
    const topo = await vtctl(dev.url, "topology");
    expect(topo.stdout).toMatch(/subscription e2e \(subs → SUBSCRIPTION_QUEUE\): lag \d+ ms/);

    const deleted = await vtctl(dev.url, "subscription", "delete", "--name", "e2e");
    expect(deleted.status, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain("its publisher stopped");
    const none = await vtctl(dev.url, "subscription", "show");
    expect(none.stdout).toBe("no subscriptions\n");
  });
});
