// One publishing round of a queue subscription: VStream events (gate/vstream.ts's merger) into
// whole transactions with their chain positions (contract/subscription-message.ts), up to a size
// or time bound, ending at a transaction boundary. The publisher sends what a round collected and
// only then stores the round's token and origins: a crash in between resends those transactions
// (the consumer's reader drops them), never skips one.

import { VtError } from "../contract/errors.ts";
import type { PublishItem, SubscriptionTx } from "../contract/subscription-message.ts";
import { decodeToken, type VEvent, type VGtid } from "../contract/vstream.ts";
import { unsupportedError } from "../topology/refusals.ts";
import { eventJson } from "./vstream-request.ts";

/** What a subscription stores between rounds. */
export interface SubscriptionCursor {
  /** The token after the last transaction published (or the last heartbeat/journal passed). */
  readonly token: string;
  /** Each chain's first position (`keyspace/shard@uid` → seq): fixed once seen, so resends carry the same. */
  readonly origins: Readonly<Record<string, number>>;
}

export interface RoundResult {
  readonly items: PublishItem[];
  readonly cursor: SubscriptionCursor;
  /** The commit time of the last transaction collected, or of the last heartbeat (for lag). */
  readonly ts: number | null;
}

export interface RoundBounds {
  /** Stop after this many bytes of transactions' JSON. */
  readonly maxBytes: number;
  /** Stop at the first transaction boundary at or after this time (ms). */
  readonly deadline: number;
  readonly now: () => number;
}

const chainKey = (keyspace: string, shard: string, uid: string) => `${keyspace}/${shard}@${uid}`;

function positions(g: VGtid): Map<string, { uid: string; seq: number }> {
  return new Map(g.shards.map((p) => [`${p.keyspace ?? g.keyspace}/${p.shard}`, { uid: p.uid, seq: p.seq }]));
}

function withOrigins(origins: Record<string, number>, g: VGtid): void {
  for (const p of g.shards) {
    const key = chainKey(p.keyspace ?? g.keyspace, p.shard, p.uid);
    if (origins[key] === undefined) origins[key] = p.seq;
  }
}

/** The start cursor of a subscription from a resolved token (a VStream from "now" or a user's token). */
export function startCursor(token: string): SubscriptionCursor {
  const g = decodeToken(token);
  if (g.shards.some((p) => p.copy !== null)) {
    throw unsupportedError(
      "VD2810",
      "subscription: a token still in the initial copy (from start) cannot start a subscription; start from now or a token after the copy",
    );
  }
  const origins: Record<string, number> = {};
  withOrigins(origins, g);
  return { token, origins };
}

/** Collects one round from `events` (the merger started at `cursor.token`). */
export async function collectRound(events: AsyncIterator<VEvent>, cursor: SubscriptionCursor, bounds: RoundBounds): Promise<RoundResult> {
  const origins: Record<string, number> = { ...cursor.origins };
  let token = cursor.token;
  let at = positions(decodeToken(token));
  let ts: number | null = null;
  let bytes = 0;
  const items: PublishItem[] = [];
  let open: unknown[] | null = null;
  // Inside a transaction the round goes on to its COMMIT (a round ends whole).
  while (open !== null || (bytes < bounds.maxBytes && bounds.now() < bounds.deadline)) {
    const n = await events.next();
    if (n.done) break;
    const e = n.value;
    if (e.type === "BEGIN") open = [eventJson(e)];
    else if (e.type === "ROW" || e.type === "DDL") {
      if (e.type === "ROW" && e.copy) throw unsupportedError("VD2810", "subscription: rows of the initial copy are not published; start from now or a token");
      open?.push(eventJson(e));
    } else if (e.type === "COMMIT") {
      if (open === null) throw new VtError("INTERNAL", "subscription: a COMMIT without its BEGIN");
      open.push(eventJson(e));
      const g = decodeToken(e.token);
      const name = `${e.keyspace ?? g.keyspace}/${e.shard}`;
      const mine = positions(g).get(name);
      if (mine === undefined) throw new VtError("INTERNAL", `subscription: a COMMIT's token lacks its shard ${name}`);
      const before = at.get(name);
      const key = chainKey(e.keyspace ?? g.keyspace, e.shard, mine.uid);
      if (origins[key] === undefined) origins[key] = before !== undefined && before.uid === mine.uid ? before.seq : 0;
      const after = before !== undefined && before.uid === mine.uid ? before.seq : (origins[key] as number);
      if (mine.seq <= after) throw new VtError("INTERNAL", `subscription: shard ${name}'s position did not advance past ${after}`);
      const tx: SubscriptionTx = {
        shard: e.shard,
        ...(e.keyspace !== undefined ? { keyspace: e.keyspace } : {}),
        uid: mine.uid,
        origin: origins[key] as number,
        after,
        seq: mine.seq,
        ts: e.ts,
        events: open,
      };
      bytes += JSON.stringify(tx).length;
      items.push({ tx, token: e.token });
      token = e.token;
      at = positions(g);
      ts = e.ts;
      open = null;
    } else {
      // HEARTBEAT or JOURNAL: positions move on; a journal's new shards start their chains here.
      const g = decodeToken(e.token);
      withOrigins(origins, g);
      token = e.token;
      at = positions(g);
      if (e.type === "HEARTBEAT") ts = e.ts;
    }
  }
  return { items, cursor: { token, origins }, ts };
}
