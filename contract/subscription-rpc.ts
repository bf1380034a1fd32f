// Queue subscriptions as the Topology stores them and as their publisher Durable Object (one per
// subscription, by name) answers. The Topology's record is the truth: a publisher whose record is
// gone (or was replaced by a new subscription of the same name) stops by itself.

import type { Awaitable, RpcNamespace } from "./tablet-rpc.ts";
import type { Envelope } from "./envelope.ts";

/** A subscription's name: letters, digits, `_` and `-`, starting with a letter or digit, at most 64. */
export const SUBSCRIPTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** What a create asks for, once the gate resolved `from` to a token. */
export interface SubscriptionSpec {
  readonly name: string;
  readonly keyspace: string;
  /** Lower-cased table names; null: every table of the keyspace. */
  readonly tables: readonly string[] | null;
  /** The Queue producer binding of the Worker's env the messages go to. */
  readonly binding: string;
  /** The VStream token the subscription starts at (from "now", resolved at create, or the user's). */
  readonly token: string;
}

export interface SubscriptionRecord extends SubscriptionSpec {
  /** Unique per create: a subscription deleted and created again under its name is another one. */
  readonly id: string;
  readonly createdAt: number;
  /** 1 at create, one more per update (its tables changed in place); absent in records from before updates: 1. */
  readonly revision?: number;
}

/** Why an update naming `binding` is refused (INVALID_ARGUMENT): the way to move a subscription to another queue. */
export const BINDING_IN_PLACE =
  "subscription: the binding does not change in place: create a subscription onto the new binding from this one's token (vtctl subscription show), then delete this one";

/** An update in place: the subscription's new tables (null: every table). */
export interface SubscriptionChange {
  readonly name: string;
  readonly tables: readonly string[] | null;
}

export interface SubscriptionError {
  readonly code: string;
  readonly message: string;
  /** Unix ms. */
  readonly at: number;
}

/** A publisher's state as `vtctl subscription show` and GET /v1/topology show it. */
export interface SubscriptionStatus {
  readonly name: string;
  readonly id: string;
  /** False once stopped (deleted) or when the publisher holds no record. */
  readonly running: boolean;
  /** True while the initial copy of a subscription from "start" is still being published. */
  readonly copying: boolean;
  /** Transactions published (a resend after a crash counts again). */
  readonly published: number;
  /** Messages sent: the next message's `n`. */
  readonly messages: number;
  /** The commit (or heartbeat) time of the last transaction published or position passed; null before the first. */
  readonly lastTs: number | null;
  /** ms from `lastTs` to now (null before the first round). */
  readonly lagMs: number | null;
  /** The resume token after the last transaction published. */
  readonly token: string | null;
  /** The last round's failure, cleared by the next round that succeeds. */
  readonly lastError: SubscriptionError | null;
}

/** A subscription as GET /v1/topology lists it (null where its publisher did not answer). */
export interface SubscriptionSummary {
  readonly name: string;
  readonly keyspace: string;
  readonly tables: readonly string[] | null;
  readonly binding: string;
  readonly createdAt: number;
  readonly running: boolean | null;
  readonly copying: boolean | null;
  readonly lagMs: number | null;
  readonly published: number | null;
  readonly messages: number | null;
  readonly lastError: SubscriptionError | null;
}

/** The publisher Durable Object's methods (gate/subscription-publisher.ts). */
export interface PublisherRpc {
  /**
   * Starts publishing `record` (idempotent; a record of another id replaces the one held; one of
   * the same id and a higher revision is an update: its tables apply from the next round) and
   * answers its status.
   */
  ensure(record: SubscriptionRecord): Awaitable<Envelope<SubscriptionStatus>>;
  /** The status, or null when the publisher holds no subscription. */
  status(): Awaitable<Envelope<SubscriptionStatus | null>>;
  /** Stops the subscription `id` for good: no alarm, storage deleted, binlog holds released. */
  stop(id: string): Awaitable<Envelope<{ readonly stopped: boolean }>>;
}

/** The binlog-retention hold id of a subscription's reads (ShardReadRequest.hold). */
export function subscriptionHoldId(name: string): string {
  return `sub:${name}`;
}

/** A message the demo consumer kept (gate/subscription-inbox.ts), as the Queue delivered it. */
export interface InboxMessage {
  readonly i: number;
  readonly body: string;
  readonly attempts: number;
}

export interface InboxRpc {
  /** Keeps the bodies, in order, as one transaction. */
  take(messages: readonly { readonly body: string; readonly attempts: number }[]): Awaitable<Envelope<{ readonly kept: number }>>;
  /** The messages kept after `after` (at most `limit`, in order). */
  read(after: number, limit: number): Awaitable<Envelope<{ readonly messages: InboxMessage[] }>>;
}

/** The Durable Object of `name` in namespace `ns` (the SUBSCRIPTION_PUBLISHER or SUBSCRIPTION_INBOX binding). */
export function byName<T, Id>(ns: RpcNamespace<T, Id>, name: string): T {
  return ns.get(ns.idFromName(name));
}
