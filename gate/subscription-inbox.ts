// The demo consumer of a subscription queue: the gate's queue handler hands every batch of the demo
// queue (wrangler.toml: vitess-do-changes) to this Durable Object, one per queue, which keeps the
// message bodies as delivered (duplicates and all) for GET /v1/subscriptions/inbox to read back.
// It does not decode them: a consumer does that with client/subscription.ts's reader, so what is
// kept is exactly what a consumer of the queue would see. Only the newest MAX_KEPT are kept.

import { DurableObject } from "cloudflare:workers";
import { envelope, type Envelope } from "../contract/envelope.ts";
import { VtError } from "../contract/errors.ts";
import type { InboxMessage, InboxRpc } from "../contract/subscription-rpc.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_inbox (
  i INTEGER PRIMARY KEY AUTOINCREMENT, -- delivery order here (1, 2, …), never reused
  body TEXT NOT NULL,                  -- the message body as delivered (JSON text)
  attempts INTEGER NOT NULL,           -- the Queue's delivery attempt (1: first delivery)
  at INTEGER NOT NULL                  -- unix ms it was kept
);
`;

export const MAX_KEPT = 20_000;
const MAX_READ = 1_000;

export class SubscriptionInbox extends DurableObject<Env> implements InboxRpc {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(SCHEMA);
  }

  take(messages: readonly { readonly body: string; readonly attempts: number }[]): Envelope<{ readonly kept: number }> {
    return envelope(() => {
      const now = Date.now();
      this.ctx.storage.transactionSync(() => {
        for (const m of messages) this.#sql.exec("INSERT INTO _vt_inbox (body, attempts, at) VALUES (?, ?, ?)", m.body, m.attempts, now);
        const top = this.#sql.exec<{ i: number | null }>("SELECT max(i) AS i FROM _vt_inbox").one().i ?? 0;
        this.#sql.exec("DELETE FROM _vt_inbox WHERE i <= ?", top - MAX_KEPT);
      });
      return { kept: messages.length };
    });
  }

  read(after: number, limit: number): Envelope<{ readonly messages: InboxMessage[] }> {
    return envelope(() => {
      if (!Number.isSafeInteger(after) || after < 0) throw new VtError("INVALID_ARGUMENT", '"after" must be a non-negative integer');
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_READ) throw new VtError("INVALID_ARGUMENT", `"limit" must be 1 to ${MAX_READ}`);
      const messages = this.#sql
        .exec<{ i: number; body: string; attempts: number }>("SELECT i, body, attempts FROM _vt_inbox WHERE i > ? ORDER BY i LIMIT ?", after, limit)
        .toArray();
      return { messages };
    });
  }
}
