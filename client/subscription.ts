// The consumer side of a queue subscription: decodes message bodies (contract/subscription-message.ts),
// puts split transactions back together and hands out each transaction once, in commit order per
// shard, whatever order and however many times the Queue delivers the messages.

import type { SubscriptionMessage, SubscriptionPart, SubscriptionTx } from "../contract/subscription-message.ts";
import { comparePlaces, SUBSCRIPTION_MESSAGE_VERSION } from "../contract/subscription-message.ts";
import type { ChangeEvent } from "./api.ts";
import { decodeEvent } from "./vstream.ts";

export interface SubscriptionTransaction {
  readonly shard: string;
  readonly keyspace?: string;
  readonly seq: number;
  /** Set on a page of the initial copy (a subscription from "start"): its rows (ROW events with `copy: true`) as of `seq`; apply them as upserts. */
  readonly copy?: true;
  readonly ts: number | null;
  readonly events: readonly ChangeEvent[];
}

/**
 * What a reader must keep between batches (persist it with the consumer's own writes, e.g. in a
 * Durable Object): the last position handed out per (keyspace/shard@uid), and transactions that
 * came before their predecessor, or in parts not all arrived yet.
 */
export interface SubscriptionReaderState {
  last: Record<string, number>;
  /** Per chain, the copy pages handed out (a subscription from "start"); absent: none. */
  pages?: Record<string, number>;
  early: SubscriptionTx[];
  parts: Record<string, { size: number; got: Record<string, string> }>;
}

export interface SubscriptionBatchResult {
  /** Transactions to apply, in order per shard; none was handed out before. */
  readonly transactions: SubscriptionTransaction[];
  /** Indexes of the bodies that were not messages of this format (ack or dead-letter them). */
  readonly invalid: number[];
}

export function newSubscriptionReaderState(): SubscriptionReaderState {
  return { last: {}, early: [], parts: {} };
}

const chain = (t: { shard: string; keyspace?: string; uid: string }) => `${t.keyspace ?? ""}/${t.shard}@${t.uid}`;

function isDeps(v: unknown): boolean {
  if (v === undefined) return true;
  return (
    Array.isArray(v) &&
    v.every((d: unknown) => {
      const x = d as { shard?: unknown; keyspace?: unknown; uid?: unknown; seq?: unknown } | null;
      return (
        typeof x === "object" &&
        x !== null &&
        typeof x.shard === "string" &&
        (x.keyspace === undefined || typeof x.keyspace === "string") &&
        typeof x.uid === "string" &&
        Number.isSafeInteger(x.seq) &&
        count((x as { page?: unknown }).page)
      );
    })
  );
}

const count = (n: unknown) => n === undefined || (Number.isSafeInteger(n) && (n as number) >= 0);
const place = (seq: number, page: number | undefined): [number, number] => [seq, page ?? 0];

function isTx(v: unknown): v is SubscriptionTx {
  const t = v as SubscriptionTx;
  return (
    typeof t === "object" &&
    t !== null &&
    typeof t.shard === "string" &&
    typeof t.uid === "string" &&
    Number.isSafeInteger(t.origin) &&
    Number.isSafeInteger(t.after) &&
    t.after >= t.origin &&
    Number.isSafeInteger(t.seq) &&
    count(t.page) &&
    count(t.afterPage) &&
    comparePlaces(place(t.seq, t.page), place(t.after, t.afterPage)) > 0 &&
    isDeps(t.deps) &&
    Array.isArray(t.events)
  );
}

/** Where the reader stands on a chain: the last link handed out, or the chain's origin. */
function lastOf(state: SubscriptionReaderState, key: string, origin: number): [number, number] {
  const seq = state.last[key];
  return seq === undefined ? [origin, 0] : [seq, state.pages?.[key] ?? 0];
}

function parse(body: unknown): SubscriptionMessage | null {
  let m: unknown = body;
  if (typeof body === "string") {
    try {
      m = JSON.parse(body);
    } catch {
      return null;
    }
  }
  const msg = m as SubscriptionMessage;
  if (typeof msg !== "object" || msg === null || msg.v !== SUBSCRIPTION_MESSAGE_VERSION || !Array.isArray(msg.txs) || !msg.txs.every(isTx)) return null;
  return msg;
}

function joinPart(state: SubscriptionReaderState, p: SubscriptionPart): SubscriptionTx | null {
  const key = `${chain(p)}#${p.seq}${p.page ? `.${p.page}` : ""}`;
  const ok = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  if (!ok(p.at) || !ok(p.size) || typeof p.data !== "string" || p.data.length === 0 || p.at + p.data.length > p.size) return null;
  if (!count(p.page)) return null;
  if (state.last[chain(p)] !== undefined && comparePlaces(place(p.seq, p.page), lastOf(state, chain(p), p.origin)) <= 0) return null; // handed out already
  const entry = state.parts[key] ?? { size: p.size, got: {} };
  if (entry.size !== p.size) return null;
  entry.got[String(p.at)] = p.data;
  state.parts[key] = entry;
  let data = "";
  while (data.length < entry.size) {
    const piece = entry.got[String(data.length)];
    if (piece === undefined) return null;
    data += piece;
  }
  delete state.parts[key];
  try {
    const raw = atob(data);
    const tx: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(raw, (c) => c.charCodeAt(0))));
    return isTx(tx) ? tx : null;
  } catch {
    return null;
  }
}

/**
 * Reads a batch of message bodies (strings or already-parsed objects, e.g. a Queue batch's
 * `messages.map(m => m.body)`). `state` is updated in place; a transaction is handed out when it
 * follows the last one handed out of its shard's chain (or the chain's origin) and, the first after a
 * journal (a reshard, a MoveTables), once the chains it names in `deps` were handed out that far;
 * one at or before it is a duplicate and dropped; one further on waits in `state.early` for the
 * ones before it.
 */
export function readSubscriptionBatch(bodies: readonly unknown[], state: SubscriptionReaderState): SubscriptionBatchResult {
  const invalid: number[] = [];
  const pending: SubscriptionTx[] = [...state.early];
  bodies.forEach((b, i) => {
    const m = parse(b);
    if (m === null) {
      invalid.push(i);
      return;
    }
    pending.push(...m.txs);
    if (m.part !== undefined) {
      const whole = joinPart(state, m.part);
      if (whole !== null) pending.push(whole);
    }
  });
  const transactions: SubscriptionTransaction[] = [];
  const early: SubscriptionTx[] = [];
  pending.sort((a, b) => comparePlaces(place(a.after, a.afterPage), place(b.after, b.afterPage)));
  let progress = true;
  let rest = pending;
  while (progress) {
    progress = false;
    const next: SubscriptionTx[] = [];
    for (const tx of rest) {
      const key = chain(tx);
      const last = lastOf(state, key, tx.origin);
      if (comparePlaces(place(tx.seq, tx.page), last) <= 0) continue; // a duplicate
      // After a journal: the chains that had the writes before must have been handed out that far.
      const ready = (tx.deps ?? []).every((d) => state.last[chain(d)] !== undefined && comparePlaces(lastOf(state, chain(d), 0), place(d.seq, d.page)) >= 0);
      if (comparePlaces(place(tx.after, tx.afterPage), last) === 0 && ready) {
        state.last[key] = tx.seq;
        if ((tx.page ?? 0) > 0) {
          state.pages ??= {};
          state.pages[key] = tx.page as number;
        }
        const copy = (tx.page ?? 0) > (tx.afterPage ?? 0);
        transactions.push({
          shard: tx.shard,
          ...(tx.keyspace !== undefined ? { keyspace: tx.keyspace } : {}),
          seq: tx.seq,
          ...(copy ? { copy: true as const } : {}),
          ts: tx.ts,
          events: tx.events.map(decodeEvent),
        });
        progress = true;
      } else next.push(tx);
    }
    rest = next;
  }
  early.push(...rest.filter((t, i, a) => a.findIndex((x) => chain(x) === chain(t) && x.seq === t.seq && x.page === t.page) === i));
  state.early = early;
  return { transactions, invalid };
}
