// A consumer Worker of a vitess-do queue subscription, written as an application would write it:
// the queue handler hands each batch's bodies to one Durable Object, which runs the SDK's reader on
// its stored state and applies what the reader hands out (copy rows and inserts set a row, updates
// replace it, deletes remove it) to its own SQLite table, the state and the rows in one
// transaction. So a batch delivered twice, out of order, or retried after a crash changes nothing
// twice, and the rows here are the keyspace's rows as of the last transaction applied.
//
// The dead-letter queue goes to the same handler: a message the subscription's queue gave up on
// (after max_retries) arrives from there, and whatever waited behind it in the reader's state goes
// out with it, so nothing is skipped. (Rows are kept by table name: one keyspace's subscriptions
// per store.) Every request the Worker does not answer itself goes on to
// the gate through the VITESS service binding (so one port serves both in `npm run dev:consumer`).
//
//   GET  /consumer/rows?table=T       the rows applied, {"rows": [...]}, in the order of their key's JSON text
//   GET  /consumer/applied            every transaction applied, in the order applied
//   POST /consumer/fail               {"untilDeadLetter": true}: fail every delivery of the
//                                     subscription's queue until a dead-letter batch arrives (a demo
//                                     of a consumer that is down long enough for the queue to give up)

import { DurableObject } from "cloudflare:workers";
import { type ChangeEvent, type ChangeRow, newSubscriptionReaderState, readSubscriptionBatch, type SubscriptionReaderState } from "../../client/index.ts";

export interface ConsumerEnv {
  readonly VITESS: Fetcher;
  readonly CONSUMER_STORE: DurableObjectNamespace<ConsumerStore>;
}

const DEAD_LETTERS = "vitess-do-consumer-dlq";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS reader (subscription TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (tbl TEXT NOT NULL, pk TEXT NOT NULL, row TEXT NOT NULL, PRIMARY KEY (tbl, pk));
CREATE TABLE IF NOT EXISTS applied (
  n INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL, keyspace TEXT, shard TEXT NOT NULL,
  seq INTEGER NOT NULL, copy INTEGER NOT NULL, via TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
`;

/** Row values as JSON text, in the VStream value encoding ({"int"} beyond 2^53, {"base64"} for BLOBs). */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === "bigint") return { int: x.toString() };
    if (x instanceof Uint8Array) return { base64: btoa(String.fromCharCode(...x)) };
    return x;
  });
}

/** A row's key: its primary key columns (those of the event's `pk`), in name order. */
function keyOf(row: ChangeRow, pkColumns: readonly string[]): string {
  return toJson(pkColumns.map((c) => row[c] ?? null));
}

export class ConsumerStore extends DurableObject<ConsumerEnv> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: ConsumerEnv) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(SCHEMA);
  }

  /** One delivery of `queue`: its bodies read and applied; throws (so the batch is retried) while failing on purpose. */
  take(queue: string, bodies: unknown[]): { applied: number; invalid: number } {
    const failing = this.#sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = 'fail'").toArray().length > 0;
    if (failing && queue !== DEAD_LETTERS) throw new Error("the consumer is failing on purpose (POST /consumer/fail)");
    // One reader state per subscription: every body names its subscription.
    const bySubscription = new Map<string, unknown[]>();
    for (const b of bodies) {
      let name = "";
      try {
        const m: unknown = typeof b === "string" ? JSON.parse(b) : b;
        if (typeof m === "object" && m !== null && typeof (m as { subscription?: unknown }).subscription === "string") {
          name = (m as { subscription: string }).subscription;
        }
      } catch {
        // not JSON: the reader reports it as invalid
      }
      bySubscription.set(name, [...(bySubscription.get(name) ?? []), b]);
    }
    let applied = 0;
    let invalid = 0;
    this.ctx.storage.transactionSync(() => {
      if (queue === DEAD_LETTERS) this.#sql.exec("DELETE FROM meta WHERE k = 'fail'");
      for (const [name, group] of bySubscription) {
        const kept = this.#sql.exec<{ state: string }>("SELECT state FROM reader WHERE subscription = ?", name).toArray()[0];
        const state: SubscriptionReaderState = kept ? JSON.parse(kept.state) : newSubscriptionReaderState();
        const out = readSubscriptionBatch(group, state);
        invalid += out.invalid.length;
        for (const tx of out.transactions) {
          for (const e of tx.events) this.#apply(e);
          this.#sql.exec(
            "INSERT INTO applied (subscription, keyspace, shard, seq, copy, via) VALUES (?, ?, ?, ?, ?, ?)",
            name,
            tx.keyspace ?? null,
            tx.shard,
            tx.seq,
            tx.copy ? 1 : 0,
            queue,
          );
          applied++;
        }
        this.#sql.exec("INSERT OR REPLACE INTO reader (subscription, state) VALUES (?, ?)", name, JSON.stringify(state));
      }
    });
    return { applied, invalid };
  }

  #apply(e: ChangeEvent): void {
    if (e.type !== "ROW") return;
    const pkColumns = Object.keys(e.pk).sort();
    if (e.before !== null) this.#sql.exec("DELETE FROM rows WHERE tbl = ? AND pk = ?", e.table, keyOf(e.before, pkColumns));
    if (e.after !== null) {
      this.#sql.exec("INSERT OR REPLACE INTO rows (tbl, pk, row) VALUES (?, ?, ?)", e.table, keyOf(e.after, pkColumns), toJson(e.after));
    }
  }

  rows(table: string): unknown[] {
    return this.#sql
      .exec<{ row: string }>("SELECT row FROM rows WHERE tbl = ? ORDER BY pk", table)
      .toArray()
      .map((r) => JSON.parse(r.row));
  }

  applied(): unknown[] {
    return this.#sql.exec("SELECT subscription, keyspace, shard, seq, copy, via FROM applied ORDER BY n").toArray();
  }

  failUntilDeadLetter(): void {
    this.#sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES ('fail', 'until-dead-letter')");
  }
}

const store = (env: ConsumerEnv) => env.CONSUMER_STORE.get(env.CONSUMER_STORE.idFromName("store"));

export default {
  async queue(batch, env) {
    // A throw retries the whole batch (then dead-letters it); the store's transaction makes that safe.
    await store(env).take(
      batch.queue,
      batch.messages.map((m) => m.body),
    );
    batch.ackAll();
  },

  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname === "/consumer/rows" && req.method === "GET") {
      return Response.json({ rows: await store(env).rows(url.searchParams.get("table") ?? "") });
    }
    if (url.pathname === "/consumer/applied" && req.method === "GET") return Response.json({ transactions: await store(env).applied() });
    if (url.pathname === "/consumer/fail" && req.method === "POST") {
      const body = (await req.json().catch(() => null)) as { untilDeadLetter?: unknown } | null;
      if (body?.untilDeadLetter !== true) return Response.json({ error: 'expected {"untilDeadLetter": true}' }, { status: 400 });
      await store(env).failUntilDeadLetter();
      return Response.json({ failing: true });
    }
    return env.VITESS.fetch(req);
  },
} satisfies ExportedHandler<ConsumerEnv>;
