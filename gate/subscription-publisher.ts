// The publisher of one queue subscription: a Durable Object (by the subscription's name) that runs
// publishing steps (subscription-publish.ts) from its alarm against the subscription's Queue
// binding, and stores its cursor and counter after each. Its own alarm keeps it going: an alarm
// is armed before each round (a round killed midway comes back), and re-armed after it, at once
// when the round published something, a little later when it only passed heartbeats, backing off
// after failures. Its VStream reads carry the binlog-retention hold `sub:<name>`, so retention
// never purges what it has not published. The Topology's record is the truth: a publisher whose
// record is gone or of another id stops by itself.

import { DurableObject } from "cloudflare:workers";
import { envelopeAsync, unwrap, type Envelope } from "../contract/envelope.ts";
import { toVtError, VtError } from "../contract/errors.ts";
import {
  subscriptionHoldId,
  type PublisherRpc,
  type SubscriptionError,
  type SubscriptionRecord,
  type SubscriptionStatus,
} from "../contract/subscription-rpc.ts";
import { tabletRpc } from "../contract/tablet-rpc.ts";
import { topologyRpc } from "../contract/topology-rpc.ts";
import { decodeToken } from "../contract/vstream.ts";
import { publishCrash } from "./failpoints.ts";
import { queueProducer } from "./subscription-binding.ts";
import { type Outbox, publishStep, type PublisherState } from "./subscription-publish.ts";
import { startCursor } from "./subscription-round.ts";
import { vstreamTablets } from "./vstream-http.ts";
import { vstreamEvents, type VStreamTablets } from "./vstream.ts";

/** A round collects transactions for this long (ending at a COMMIT), or up to ROUND_BYTES. */
const ROUND_MS = 1_000;
const ROUND_BYTES = 1024 * 1024;
/** The merger's heartbeat within a round, so an idle round ends soon after ROUND_MS. */
const HEARTBEAT_MS = 500;
/** After a round that only passed heartbeats. */
const IDLE_MS = 500;
/** The alarm armed before a round: a round stopped midway (a reset) runs again after this. */
const WATCHDOG_MS = 30_000;
/** How often a round first asks the Topology whether its subscription still stands. */
const CHECK_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
/** Storage keys of the outbox (subscription-publish.ts): its state, and each body (UTF-8, at most a message's 120 KB) under its index. */
const OUTBOX = "outbox";
const outboxKey = (i: number) => `outbox:${i}`;

interface Held {
  readonly record: SubscriptionRecord;
  readonly state: PublisherState;
  readonly error: SubscriptionError | null;
  /** Set once deleted: the holds are still being released. */
  readonly stopping: boolean;
}

function initialState(record: SubscriptionRecord): PublisherState {
  return { cursor: startCursor(record.token), counter: 0, ts: null, published: 0 };
}

export class SubscriptionPublisher extends DurableObject<Env> implements PublisherRpc {
  #round: Promise<void> | null = null;
  /** The newest record this instance was given (its id and revision): a round of another one, or an older revision, ends early (RoundBounds.stop). */
  #newest: { id: string; revision: number } | null = null;
  #checkedAt = 0;
  #failures = 0;

  async #held(): Promise<Held | null> {
    const m = await this.ctx.storage.get<unknown>(["record", "state", "error", "stopping"]);
    const record = m.get("record") as SubscriptionRecord | undefined;
    const state = m.get("state") as PublisherState | undefined;
    if (record === undefined || state === undefined) return null;
    return { record, state, error: (m.get("error") as SubscriptionError | undefined) ?? null, stopping: m.get("stopping") === true };
  }

  #status(h: Held): SubscriptionStatus {
    return {
      name: h.record.name,
      id: h.record.id,
      running: !h.stopping,
      copying: decodeToken(h.state.cursor.token).shards.some((p) => p.copy !== null),
      published: h.state.published,
      messages: h.state.counter,
      lastTs: h.state.ts,
      lagMs: h.state.ts === null ? null : Math.max(0, Date.now() - h.state.ts),
      token: h.state.cursor.token,
      lastError: h.error,
    };
  }

  ensure(record: SubscriptionRecord): Promise<Envelope<SubscriptionStatus>> {
    return envelopeAsync(async () => {
      if (typeof record?.id !== "string" || typeof record.name !== "string" || typeof record.token !== "string") {
        throw new VtError("INVALID_ARGUMENT", "subscription: not a subscription record");
      }
      let h = await this.#held();
      if (h === null || h.record.id !== record.id) {
        // A new subscription (or a new one under this name): it starts at its own token.
        h = { record, state: initialState(record), error: null, stopping: false };
        this.#newest = { id: record.id, revision: record.revision ?? 1 };
        await this.ctx.storage.put({ record, state: h.state, error: null, stopping: false });
        await this.ctx.storage.delete(OUTBOX); // a replaced subscription's round is not this one's
        this.#checkedAt = Date.now();
        await this.ctx.storage.setAlarm(Date.now());
      } else {
        if (!h.stopping && (record.revision ?? 1) > (h.record.revision ?? 1)) {
          // An update (its tables): a round in flight ends before whatever it reads next, and the
          // next round reads with them; the cursor and the chains go on. So every change committed
          // after this answers is read with the new tables.
          this.#newest = { id: record.id, revision: record.revision ?? 1 };
          h = { ...h, record };
          await this.ctx.storage.put("record", record);
        }
        if (!h.stopping && (await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now());
      }
      return this.#status(h);
    });
  }

  status(): Promise<Envelope<SubscriptionStatus | null>> {
    return envelopeAsync(async () => {
      const h = await this.#held();
      return h === null ? null : this.#status(h);
    });
  }

  stop(id: string): Promise<Envelope<{ readonly stopped: boolean }>> {
    return envelopeAsync(async () => {
      const h = await this.#held();
      if (h === null || h.record.id !== id) return { stopped: false };
      await this.#stop(h, false);
      return { stopped: true };
    });
  }

  /**
   * Stops for good: marks stopping (no round stores again), waits for a round in flight (its reads
   * would set the holds again), releases the holds on every tablet the subscription can have
   * read, then deletes everything. A release that fails leaves the mark and an alarm to go on.
   */
  async #stop(h: Held, inRound: boolean): Promise<void> {
    await this.ctx.storage.put("stopping", true);
    await this.ctx.storage.deleteAlarm();
    if (!inRound && this.#round !== null) {
      await this.#round.catch(() => undefined);
      // Reads the round left behind (a merger's long polls) may still be on their way to a tablet.
      await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS));
    }
    try {
      const hold = subscriptionHoldId(h.record.name);
      const tablets = new Set<string>();
      const keyspaces = new Set<string>([h.record.keyspace]);
      for (const token of [h.record.token, h.state.cursor.token]) {
        const g = decodeToken(token);
        for (const p of g.shards) {
          tablets.add(p.tablet);
          keyspaces.add(p.keyspace ?? g.keyspace);
        }
      }
      for (const ks of keyspaces) for (const t of unwrap(await topologyRpc(this.env.TOPOLOGY).keyspaceTablets(ks))) tablets.add(t);
      await Promise.all([...tablets].map(async (t) => unwrap(await tabletRpc(this.env.TABLET, t).releaseHold(hold))));
    } catch (e) {
      await this.ctx.storage.setAlarm(Date.now() + MAX_BACKOFF_MS);
      throw e;
    }
    await this.ctx.storage.deleteAll();
    await this.ctx.storage.deleteAlarm();
  }

  override async alarm(): Promise<void> {
    if (this.#round !== null) {
      // A round still running past its watchdog (a read that does not answer): look again later.
      await this.ctx.storage.setAlarm(Date.now() + WATCHDOG_MS);
      return;
    }
    this.#round = this.#run();
    try {
      await this.#round;
    } finally {
      this.#round = null;
    }
  }

  async #run(): Promise<void> {
    const h = await this.#held();
    if (h === null) return;
    if (h.stopping) {
      await this.#stop(h, true);
      return;
    }
    await this.ctx.storage.setAlarm(Date.now() + WATCHDOG_MS);
    if (Date.now() - this.#checkedAt >= CHECK_MS) {
      let current: SubscriptionRecord | null | undefined;
      try {
        current = unwrap(await topologyRpc(this.env.TOPOLOGY).getSubscription(h.record.name));
        this.#checkedAt = Date.now();
      } catch {
        current = undefined; // the Topology did not answer: publish on, ask again next round
      }
      if (current === null || (current !== undefined && current.id !== h.record.id)) {
        await this.#stop(h, true);
        return;
      }
      // An update whose ensure did not arrive: this round reads with it.
      if (current !== undefined && (current.revision ?? 1) > (h.record.revision ?? 1)) {
        // Stored unless an ensure stored a newer one while the Topology answered.
        const stored = (await this.#held())?.record;
        if (stored?.id === current.id && (stored.revision ?? 1) < (current.revision ?? 1)) {
          this.#newest = { id: current.id, revision: current.revision ?? 1 };
          await this.ctx.storage.put("record", current);
        }
        return this.#run();
      }
    }
    let delay: number;
    try {
      const after = await this.#publish(h);
      this.#failures = 0;
      delay = after.published > h.state.published ? 0 : IDLE_MS;
    } catch (e) {
      const vt = toVtError(e);
      if ((await this.#held())?.record.id !== h.record.id) return;
      await this.ctx.storage.put("error", { code: vt.code, message: vt.message, at: Date.now() } satisfies SubscriptionError);
      this.#failures++;
      delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.#failures, 10));
    }
    const still = await this.#held();
    if (still !== null && still.record.id === h.record.id && !still.stopping) await this.ctx.storage.setAlarm(Date.now() + delay);
  }

  /** Whether `record` is no longer the newest this instance was given (another id, or a later revision). */
  #superseded(record: SubscriptionRecord): boolean {
    const n = this.#newest;
    return n !== null && (n.id !== record.id || n.revision > (record.revision ?? 1));
  }

  async #publish(h: Held): Promise<PublisherState> {
    const { record } = h;
    const send = queueProducer(this.env, record.binding);
    const base = vstreamTablets(this.env);
    const hold = subscriptionHoldId(record.name);
    const tablets: VStreamTablets = { ...base, read: (tablet, req) => base.read(tablet, { ...req, hold }) };
    const events = (cursor: PublisherState["cursor"]) =>
      vstreamEvents(
        { keyspace: record.keyspace, ...(record.tables ? { tables: record.tables } : {}), from: decodeToken(cursor.token), heartbeatMs: HEARTBEAT_MS },
        tablets,
      );
    const store = async (next: PublisherState) => {
      if (publishCrash(record.name)) throw new VtError("INTERNAL", "subscription: injected crash between send and store");
      const now = await this.#held();
      // Deleted (or replaced) while the round ran: nothing of it is stored.
      if (now === null || now.record.id !== record.id || now.stopping) throw new VtError("INVALID_ARGUMENT", `subscription: ${record.name} was deleted`);
      await this.ctx.storage.transaction(async (txn) => {
        await txn.put({ state: next, error: null });
        await txn.delete(OUTBOX);
      });
    };
    return publishStep(
      h.state,
      { name: record.name, events, send, store, outbox: this.#outbox() },
      { maxBytes: ROUND_BYTES, deadline: Date.now() + ROUND_MS, now: Date.now, stop: () => this.#superseded(record) },
    );
  }

  /** The outbox in this object's storage: the bodies first, then the entry naming them (a save cut midway is no outbox). */
  #outbox(): { load(): Promise<Outbox | null>; save(o: Outbox): Promise<void> } {
    const storage = this.ctx.storage;
    return {
      load: async () => {
        const kept = await storage.get<{ count: number; next: PublisherState }>(OUTBOX);
        if (kept === undefined) return null;
        const bodies: string[] = [];
        const utf8 = new TextDecoder();
        for (let i = 0; i < kept.count; i += 100) {
          const keys = Array.from({ length: Math.min(100, kept.count - i) }, (_, j) => outboxKey(i + j));
          const got = await storage.get<Uint8Array>(keys);
          for (const k of keys) {
            const b = got.get(k);
            if (b === undefined) throw new VtError("INTERNAL", `subscription: the outbox lacks ${k}`);
            bodies.push(utf8.decode(b));
          }
        }
        return { bodies, next: kept.next };
      },
      save: async (o) => {
        const utf8 = new TextEncoder();
        for (let i = 0; i < o.bodies.length; i += 100) {
          const entries: Record<string, Uint8Array> = {};
          o.bodies.slice(i, i + 100).forEach((b, j) => {
            entries[outboxKey(i + j)] = utf8.encode(b);
          });
          await storage.put(entries);
        }
        await storage.put(OUTBOX, { count: o.bodies.length, next: o.next });
      },
    };
  }
}
