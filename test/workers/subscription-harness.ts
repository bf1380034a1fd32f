// Queue subscriptions in workerd: creating them over HTTP, what the demo queue delivered for one
// (GET /v1/subscriptions/inbox), read back through the SDK's reader, and the checks every test makes.

import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { newSubscriptionReaderState, readSubscriptionBatch, type SubscriptionTransaction } from "../../client/subscription.ts";
import type { Envelope } from "../../contract/envelope.ts";
import { type SqlValue, toJsonValue } from "../../contract/sql-values.ts";
import type { BinlogRetentionStatus } from "../../tablet/binlog-retention.ts";
import { api, sql } from "./helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export async function keyspace(ks: string): Promise<void> {
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-80", "80-"] })).status).toBe(200);
  await sql("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)", undefined, ks);
  await sql("CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT)", undefined, ks);
}

export type Answer = { status: number; body: Record<string, unknown> & { error?: { code: string; id?: string; message: string } } };
export const create = (body: Record<string, unknown>) => api("POST", "/v1/subscriptions", { action: "create", ...body }) as Promise<Answer>;

/** Every body the demo queue delivered for subscription `name`, in delivery order (repeats included). */
export async function delivered(name: string): Promise<string[]> {
  const out: string[] = [];
  let after = 0;
  for (;;) {
    const r = await api<{ messages: { i: number; body: string }[] }>("GET", `/v1/subscriptions/inbox?after=${after}&limit=1000`);
    expect(r.status).toBe(200);
    const ms = r.body.messages;
    if (ms.length === 0) return out;
    for (const m of ms) if ((JSON.parse(m.body) as { subscription: string }).subscription === name) out.push(m.body);
    after = ms[ms.length - 1]?.i ?? after;
  }
}

/** The reader's output over `bodies` (in the given order), and the ids its row events carry. */
export function read(bodies: readonly string[]): { txs: SubscriptionTransaction[]; ids: number[] } {
  const state = newSubscriptionReaderState();
  const { transactions, invalid } = readSubscriptionBatch(bodies, state);
  expect(invalid).toEqual([]);
  const ids = transactions.flatMap((t) => t.events.flatMap((e) => (e.type === "ROW" ? [Number((e.after ?? e.before)?.["id"])] : [])));
  return { txs: transactions, ids };
}

/** Per shard, the transactions' seqs grow (a page of the initial copy may stand at its predecessor's). */
export function expectOrderedPerShard(txs: readonly SubscriptionTransaction[]): void {
  const last = new Map<string, number>();
  for (const t of txs) {
    if (t.copy) expect(t.seq).toBeGreaterThanOrEqual(last.get(t.shard) ?? -1);
    else expect(t.seq).toBeGreaterThan(last.get(t.shard) ?? -1);
    last.set(t.shard, t.seq);
  }
}

/**
 * The rows of `table` a consumer holds after applying `txs` in order, by primary key `id`, each
 * row's values in the ⚑ JSON encoding: a copy row or an insert sets the row, an update replaces
 * its old key's row, a delete removes it.
 */
export function replay(txs: readonly SubscriptionTransaction[], table: string): Map<string, string> {
  const rows = new Map<string, string>();
  const key = (r: Record<string, SqlValue> | null) => JSON.stringify(toJsonValue(r?.["id"] ?? null));
  for (const t of txs) {
    for (const e of t.events) {
      if (e.type !== "ROW" || e.table.toLowerCase() !== table) continue;
      if (e.before !== null) rows.delete(key(e.before));
      if (e.after !== null) rows.set(key(e.after), JSON.stringify(Object.fromEntries(Object.entries(e.after).map(([k, v]) => [k, toJsonValue(v)]))));
    }
  }
  return rows;
}

/** The same map of what the gate answers for `SELECT * FROM <table>` now. */
export async function rowsNow(ks: string, table: string): Promise<Map<string, string>> {
  const r = await sql(`SELECT * FROM ${table}`, undefined, ks);
  const rows = new Map<string, string>();
  for (const row of r.rows) {
    const o = Object.fromEntries(r.columns.map((c, i) => [c, row[i]]));
    rows.set(JSON.stringify(o["id"]), JSON.stringify(o));
  }
  return rows;
}

export async function holds(tablet: string): Promise<string[]> {
  const r = (await env.TABLET.get(env.TABLET.idFromName(tablet)).binlogRetention()) as Envelope<BinlogRetentionStatus>;
  if (!r.ok) throw new Error(r.error.message);
  return r.value.holds.map((h) => h.id);
}

export const publisher = (name: string) => env.SUBSCRIPTION_PUBLISHER.get(env.SUBSCRIPTION_PUBLISHER.idFromName(name));
