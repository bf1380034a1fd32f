// One publishing step of a queue subscription, independent of where it runs: collect a round from
// the stored cursor, send its messages in order, and only then store the cursor and the message
// counter. A round holding pages of the initial copy is kept (the outbox) before it is sent: a
// crash before its store sends those same messages again instead of collecting the round anew
// (a page read again could stand elsewhere, and the consumer's reader would wait for the first
// one's successor for ever). The publisher Durable Object calls it from its alarm.

import { VtError } from "../contract/errors.ts";
import { packMessages, SUBSCRIPTION_MESSAGE_LIMIT } from "../contract/subscription-message.ts";
import type { VEvent } from "../contract/vstream.ts";
import { collectRound, type RoundBounds, type SubscriptionCursor } from "./subscription-round.ts";

export interface PublisherState {
  readonly cursor: SubscriptionCursor;
  /** The number of the next message. */
  readonly counter: number;
  /** The commit (or heartbeat) time of the last transaction published, for lag. */
  readonly ts: number | null;
  readonly published: number;
}

/** A Queue producer's shape (Cloudflare's `Queue.sendBatch`), so tests can pass their own. */
export interface QueueSender {
  sendBatch(messages: Iterable<{ body: string }>): Promise<unknown>;
}

/** A round sent (or being sent) and the state to store once it was. */
export interface Outbox {
  readonly bodies: readonly string[];
  readonly next: PublisherState;
}

export interface PublishStepIO {
  readonly name: string;
  readonly events: (cursor: SubscriptionCursor) => AsyncGenerator<VEvent>;
  readonly send: QueueSender;
  /** Stores the state after a round; also forgets the outbox (in the same write). */
  readonly store: (next: PublisherState) => Promise<void>;
  /** Keeps a round before it is sent and hands it back until its state is stored. */
  readonly outbox: { load(): Promise<Outbox | null>; save(o: Outbox): Promise<void> };
}

/** A Queue batch holds at most 100 messages and 256 KB: messages go one by one past that. */
const BATCH_MESSAGES = 100;
const BATCH_BYTES = 250 * 1024;

/** Runs one step from `state`; returns the stored state (unchanged when nothing was sent). */
export async function publishStep(state: PublisherState, io: PublishStepIO, bounds: RoundBounds): Promise<PublisherState> {
  const kept = await io.outbox.load();
  if (kept !== null) {
    // A round sent (perhaps partly) before a crash: the same messages again, then its state.
    if (kept.next.counter !== state.counter + kept.bodies.length) throw new VtError("INTERNAL", "subscription: the outbox does not follow the stored state");
    await sendAll(io.send, kept.bodies);
    await io.store(kept.next);
    return kept.next;
  }
  const gen = io.events(state.cursor);
  let round: Awaited<ReturnType<typeof collectRound>>;
  try {
    round = await collectRound(gen, state.cursor, bounds);
  } finally {
    await gen.return(undefined);
  }
  const bodies = packMessages(io.name, state.counter, round.items, SUBSCRIPTION_MESSAGE_LIMIT);
  const next: PublisherState = {
    cursor: round.cursor,
    counter: state.counter + bodies.length,
    ts: round.ts ?? state.ts,
    published: state.published + round.items.length,
  };
  if (!Number.isSafeInteger(next.counter)) throw new VtError("INTERNAL", "subscription: the message counter overflowed");
  if (round.pages) await io.outbox.save({ bodies, next });
  await sendAll(io.send, bodies);
  await io.store(next);
  return next;
}

/** Sends `bodies` in order, in Queue batches within the batch bounds. */
async function sendAll(send: QueueSender, bodies: readonly string[]): Promise<void> {
  let batch: string[] = [];
  let bytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await send.sendBatch(batch.map((body) => ({ body })));
    batch = [];
    bytes = 0;
  };
  const utf8 = new TextEncoder();
  for (const b of bodies) {
    const size = utf8.encode(b).length;
    if (batch.length === BATCH_MESSAGES || bytes + size > BATCH_BYTES) await flush();
    batch.push(b);
    bytes += size;
  }
  await flush();
}
