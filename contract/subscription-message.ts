// The message format of a queue subscription (⚑ once published): what a publisher puts on a Queue
// and what client/subscription.ts reads back. JSON, so row values keep the ⚑ value encoding of
// VStream events (`{"int"}` beyond 2^53, `{"base64"}` for BLOBs). A Queue message holds at most
// 128 KB: transactions are grouped whole into messages of at most `limit` bytes, and a transaction
// bigger than that is split into parts (k of n) carried by consecutive messages, never dropped.

import { VtError } from "./errors.ts";

export const SUBSCRIPTION_MESSAGE_VERSION = 1;
/** The default size bound of one message body (bytes of UTF-8 JSON), under the Queue's 128 KB. */
export const SUBSCRIPTION_MESSAGE_LIMIT = 120 * 1024;

/**
 * Where a transaction stands in its chain. `after` is the `seq` of the chain's transaction published
 * before it (the chain's `origin` for its first) and `seq` its commit's binlog sequence: per
 * (keyspace, shard, uid) they form a chain, so a consumer knows a duplicate (`seq` ≤ its last) from
 * a transaction that came early (`after` > its last). Transactions the subscription does not
 * publish (other tables) are not links of the chain.
 *
 * A subscription started from "start" also publishes its initial copy: pages of rows (ROW events
 * with `copy: true`), each consistent at the shard's position `seq`, between the chain's
 * transactions. Several pages can stand at one `seq`, so a link's place is the pair
 * (`seq`, `page`): `page` counts the chain's copy pages up to and including this link (a
 * transaction keeps the count of the pages before it), `afterPage` is its predecessor's. Absent
 * means 0: a subscription without a copy never carries them. Pairs compare by `seq`, then `page`.
 */
export interface SubscriptionChainLink {
  readonly shard: string;
  /** Set when the shard is of another keyspace than the subscription's (a MoveTables). */
  readonly keyspace?: string;
  /** The tablet's uid the positions belong to (a new tablet after a reshard starts its own chain). */
  readonly uid: string;
  /** The chain's first position: where the subscription started on it (or a reshard's journal named it). */
  readonly origin: number;
  readonly after: number;
  readonly seq: number;
  /** The copy pages of the chain up to and including this link (absent: 0). */
  readonly page?: number;
  /** The predecessor's `page` (absent: 0). */
  readonly afterPage?: number;
  /**
   * Set on the first transaction a chain publishes after a journal moved writes onto it (a
   * reshard's new shards, a MoveTables' target, the old shards again after a reverse): the
   * positions the other chains must have been handed out to before it, as the stream read them.
   */
  readonly deps?: readonly SubscriptionDep[];
}

/** "Chain (keyspace, shard, uid) handed out up to (`seq`, `page`)" (its link there was published). */
export interface SubscriptionDep {
  readonly shard: string;
  readonly keyspace?: string;
  readonly uid: string;
  readonly seq: number;
  /** Absent: 0. */
  readonly page?: number;
}

/** Where a link, or its predecessor, stands: `seq`, then the copy `page` count. */
export function linkAt(t: { readonly seq: number; readonly page?: number }): readonly [number, number] {
  return [t.seq, t.page ?? 0];
}

/** Compares two (seq, page) places: negative, 0 or positive. */
export function comparePlaces(a: readonly [number, number], b: readonly [number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

/** One committed transaction of one shard. */
export interface SubscriptionTx extends SubscriptionChainLink {
  readonly ts: number | null;
  /** BEGIN, ROW/DDL…, COMMIT as VStream events in JSON (eventJson). */
  readonly events: readonly unknown[];
}

/**
 * A part of a transaction too big for one message: base64 of its JSON's UTF-8 bytes, cut in `of`
 * pieces; `at` is the piece's offset in that text of `size` characters (a resend may cut it
 * elsewhere: the consumer joins pieces by offset).
 */
export interface SubscriptionPart extends SubscriptionChainLink {
  readonly k: number;
  readonly of: number;
  readonly at: number;
  readonly size: number;
  readonly data: string;
}

export interface SubscriptionMessage {
  readonly v: number;
  readonly subscription: string;
  /** The per-subscription message counter (0, 1, 2… in the order they were sent). */
  readonly n: number;
  readonly txs: readonly SubscriptionTx[];
  readonly part?: SubscriptionPart;
  /** The resume token after this message's last whole transaction (absent on a part but the last). */
  readonly token?: string;
}

/** A transaction to publish and the stream's token right after it. */
export interface PublishItem {
  readonly tx: SubscriptionTx;
  readonly token: string;
}

const utf8 = new TextEncoder();
const bytes = (s: string): number => utf8.encode(s).length;

function base64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * The message bodies for `items` in order, numbered from `counter`. Whole transactions share a
 * message while it stays within `limit`; a transaction that alone exceeds it becomes parts.
 */
export function packMessages(subscription: string, counter: number, items: readonly PublishItem[], limit = SUBSCRIPTION_MESSAGE_LIMIT): string[] {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new VtError("INVALID_ARGUMENT", "subscription: the message counter must be a non-negative integer");
  if (!Number.isSafeInteger(limit) || limit < 4096) throw new VtError("INVALID_ARGUMENT", "subscription: the message limit must be at least 4096 bytes");
  const out: string[] = [];
  let n = counter;
  let group: SubscriptionTx[] = [];
  let groupToken = "";
  const body = (txs: readonly SubscriptionTx[], token: string) =>
    JSON.stringify({ v: SUBSCRIPTION_MESSAGE_VERSION, subscription, n, txs, token } satisfies SubscriptionMessage);
  const flush = () => {
    if (group.length === 0) return;
    out.push(body(group, groupToken));
    n++;
    group = [];
  };
  for (const { tx, token } of items) {
    if (bytes(body([...group, tx], token)) <= limit) {
      group.push(tx);
      groupToken = token;
      continue;
    }
    flush();
    if (bytes(body([tx], token)) <= limit) {
      group = [tx];
      groupToken = token;
      continue;
    }
    out.push(...splitTx(subscription, n, tx, token, limit));
    n = counter + out.length;
  }
  flush();
  return out;
}

function splitTx(subscription: string, first: number, tx: SubscriptionTx, token: string, limit: number): string[] {
  const data = base64(utf8.encode(JSON.stringify(tx)));
  const head = {
    shard: tx.shard,
    ...(tx.keyspace !== undefined ? { keyspace: tx.keyspace } : {}),
    uid: tx.uid,
    origin: tx.origin,
    after: tx.after,
    seq: tx.seq,
    ...(tx.page !== undefined ? { page: tx.page } : {}),
    ...(tx.afterPage !== undefined ? { afterPage: tx.afterPage } : {}),
  };
  // Room for the data: the limit less the envelope (token included, its bound counted on every part).
  const envelope = bytes(
    JSON.stringify({
      v: SUBSCRIPTION_MESSAGE_VERSION,
      subscription,
      n: first + 1e6,
      txs: [],
      part: { ...head, k: 1e6, of: 1e6, at: 1e9, size: 1e9, data: "" },
      token,
    }),
  );
  const room = Math.floor((limit - envelope - 16) / 4) * 4;
  if (room < 1024) throw new VtError("INVALID_ARGUMENT", "subscription: the message limit leaves no room for a part (the token is too long)");
  const of = Math.ceil(data.length / room);
  const out: string[] = [];
  for (let k = 1; k <= of; k++) {
    const part: SubscriptionPart = { ...head, k, of, at: (k - 1) * room, size: data.length, data: data.slice((k - 1) * room, k * room) };
    const m: SubscriptionMessage = { v: SUBSCRIPTION_MESSAGE_VERSION, subscription, n: first + k - 1, txs: [], part, ...(k === of ? { token } : {}) };
    out.push(JSON.stringify(m));
  }
  return out;
}
