// One publishing step of a queue subscription, independent of where it runs: collect a round from
// the stored cursor, send its messages in order, and only then store the cursor and the message
// counter. The publisher Durable Object (not built yet) will call it from its alarm.

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

export interface PublishStepIO {
  readonly name: string;
  readonly events: (cursor: SubscriptionCursor) => AsyncGenerator<VEvent>;
  readonly send: QueueSender;
  readonly store: (next: PublisherState) => Promise<void>;
}

/** A Queue batch holds at most 100 messages and 256 KB: messages go one by one past that. */
const BATCH_MESSAGES = 100;
const BATCH_BYTES = 250 * 1024;

/** Runs one step from `state`; returns the stored state (unchanged when nothing was sent). */
export async function publishStep(state: PublisherState, io: PublishStepIO, bounds: RoundBounds): Promise<PublisherState> {
  const gen = io.events(state.cursor);
  let round: Awaited<ReturnType<typeof collectRound>>;
  try {
    round = await collectRound(gen, state.cursor, bounds);
  } finally {
    await gen.return(undefined);
  }
  const bodies = packMessages(io.name, state.counter, round.items, SUBSCRIPTION_MESSAGE_LIMIT);
  let batch: string[] = [];
  let bytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await io.send.sendBatch(batch.map((body) => ({ body })));
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
  const next: PublisherState = {
    cursor: round.cursor,
    counter: state.counter + bodies.length,
    ts: round.ts ?? state.ts,
    published: state.published + round.items.length,
  };
  if (!Number.isSafeInteger(next.counter)) throw new VtError("INTERNAL", "subscription: the message counter overflowed");
  await io.store(next);
  return next;
}
