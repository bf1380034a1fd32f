// One publishing round of a queue subscription: VStream events (gate/vstream.ts's merger) into
// whole transactions with their chain positions (contract/subscription-message.ts), up to a size
// or time bound, ending at a transaction boundary. The publisher sends what a round collected and
// only then stores the round's cursor (token, chains' origins, last transactions and journal
// waits): a crash in between resends those transactions, with the same chain links, (the
// consumer's reader drops them), never skips one. A subscription from "start" publishes its initial
// copy too: each page of rows a link of its shard's chain, placed by (seq, page). A page's position
// depends on when it was read, so a round holding pages is resent as it was first sent (the
// publisher keeps it until stored: RoundResult.pages), never collected again.

import { VtError } from "../contract/errors.ts";
import { comparePlaces, type PublishItem, type SubscriptionDep, type SubscriptionTx } from "../contract/subscription-message.ts";
import { decodeToken, type VEvent, type VGtid } from "../contract/vstream.ts";
import { eventJson } from "./vstream-request.ts";

/** What a subscription stores between rounds. */
export interface SubscriptionCursor {
  /** The token after the last transaction published (or the last heartbeat/journal passed). */
  readonly token: string;
  /** Each chain's first position (`keyspace/shard@uid` → seq): fixed once seen, so resends carry the same. */
  readonly origins: Readonly<Record<string, number>>;
  /** Each chain's last transaction published (its seq): the next one's `after`. Absent: none yet (`after` is the origin). */
  readonly last?: Readonly<Record<string, number>>;
  /** Per chain a journal moved writes onto: what its next transaction published must wait for (SubscriptionTx.deps). */
  readonly deps?: Readonly<Record<string, readonly SubscriptionDep[]>>;
  /** Each chain's copy pages published (the last link's `page`); absent: none. */
  readonly pages?: Readonly<Record<string, number>>;
}

export interface RoundResult {
  readonly items: PublishItem[];
  readonly cursor: SubscriptionCursor;
  /** The commit time of the last transaction collected, or of the last heartbeat (for lag). */
  readonly ts: number | null;
  /** Whether a page of the initial copy is among the items (the round must be resent as it is). */
  readonly pages: boolean;
}

export interface RoundBounds {
  /** Stop after this many bytes of transactions' JSON. */
  readonly maxBytes: number;
  /** Stop at the first transaction boundary at or after this time (ms). */
  readonly deadline: number;
  readonly now: () => number;
  /**
   * Once true (the subscription was updated), the round ends before the next transaction or
   * position move it would take: what it did not take is read again by the next round, with the
   * new setting.
   */
  readonly stop?: () => boolean;
}

const chainKey = (keyspace: string, shard: string, uid: string) => `${keyspace}/${shard}@${uid}`;

/**
 * What the chains a journal moved writes onto must wait for: each old chain at its last
 * transaction published, and what it was itself still to wait for (it may have published nothing
 * since a journal moved writes onto it).
 */
function journalDeps(
  stream: string,
  from: readonly string[],
  at: ReadonlyMap<string, { uid: string; seq: number }>,
  last: Readonly<Record<string, number>>,
  pages: Readonly<Record<string, number>>,
  deps: Readonly<Record<string, readonly SubscriptionDep[]>>,
): SubscriptionDep[] {
  const out = new Map<string, SubscriptionDep>();
  const add = (d: SubscriptionDep) => {
    const k = chainKey(d.keyspace ?? stream, d.shard, d.uid);
    const had = out.get(k);
    if (had === undefined || comparePlaces([had.seq, had.page ?? 0], [d.seq, d.page ?? 0]) < 0) out.set(k, d);
  };
  for (const name of from) {
    const slash = name.indexOf("/");
    const keyspace = slash < 0 ? stream : name.slice(0, slash);
    const shard = slash < 0 ? name : name.slice(slash + 1);
    const p = at.get(`${keyspace}/${shard}`);
    if (p === undefined) continue;
    const key = chainKey(keyspace, shard, p.uid);
    const seq = last[key];
    const page = pages[key] ?? 0;
    if (seq !== undefined) add({ shard, ...(keyspace !== stream ? { keyspace } : {}), uid: p.uid, seq, ...(page > 0 ? { page } : {}) });
    for (const d of deps[key] ?? []) add(d);
  }
  return [...out.values()];
}

function positions(g: VGtid): Map<string, { uid: string; seq: number }> {
  return new Map(g.shards.map((p) => [`${p.keyspace ?? g.keyspace}/${p.shard}`, { uid: p.uid, seq: p.seq }]));
}

function withOrigins(origins: Record<string, number>, g: VGtid): void {
  for (const p of g.shards) {
    const key = chainKey(p.keyspace ?? g.keyspace, p.shard, p.uid);
    if (origins[key] === undefined) origins[key] = p.seq;
  }
}

/** The start cursor of a subscription from a resolved token (a VStream from "now" or "start", or a user's token). */
export function startCursor(token: string): SubscriptionCursor {
  const g = decodeToken(token);
  const origins: Record<string, number> = {};
  withOrigins(origins, g);
  return { token, origins };
}

/** Collects one round from `events` (the merger started at `cursor.token`). */
export async function collectRound(events: AsyncIterator<VEvent>, cursor: SubscriptionCursor, bounds: RoundBounds): Promise<RoundResult> {
  const origins: Record<string, number> = { ...cursor.origins };
  const last: Record<string, number> = { ...cursor.last };
  const deps: Record<string, readonly SubscriptionDep[]> = { ...cursor.deps };
  const pages: Record<string, number> = { ...cursor.pages };
  let copied = false;
  let token = cursor.token;
  let at = positions(decodeToken(token));
  let ts: number | null = null;
  let bytes = 0;
  const items: PublishItem[] = [];
  let open: unknown[] | null = null;
  let openCopy = false;
  // Inside a transaction the round goes on to its COMMIT (a round ends whole).
  while (open !== null || (bytes < bounds.maxBytes && bounds.now() < bounds.deadline)) {
    const n = await events.next();
    if (n.done) break;
    if (open === null && bounds.stop?.() === true) break;
    const e = n.value;
    if (e.type === "BEGIN") {
      open = [eventJson(e)];
      openCopy = false;
    } else if (e.type === "ROW" || e.type === "DDL") {
      if (e.type === "ROW" && e.copy) openCopy = true;
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
      // The chain's previous link published (transactions of other tables are not links); a copy
      // page may stand at its predecessor's seq, one page further.
      const after = last[key] ?? (origins[key] as number);
      const afterPage = pages[key] ?? 0;
      const page = openCopy ? afterPage + 1 : afterPage;
      if (comparePlaces([mine.seq, page], [after, afterPage]) <= 0 || (!openCopy && mine.seq <= after)) {
        throw new VtError("INTERNAL", `subscription: shard ${name}'s position did not advance past ${after}`);
      }
      const waits = deps[key];
      const tx: SubscriptionTx = {
        shard: e.shard,
        ...(e.keyspace !== undefined ? { keyspace: e.keyspace } : {}),
        uid: mine.uid,
        origin: origins[key] as number,
        after,
        seq: mine.seq,
        ...(page > 0 ? { page } : {}),
        ...(afterPage > 0 ? { afterPage } : {}),
        ...(waits !== undefined && waits.length > 0 ? { deps: waits } : {}),
        ts: e.ts,
        events: open,
      };
      last[key] = mine.seq;
      if (page > 0) pages[key] = page;
      if (openCopy) copied = true;
      delete deps[key];
      bytes += JSON.stringify(tx).length;
      items.push({ tx, token: e.token });
      token = e.token;
      at = positions(g);
      if (e.ts !== null) ts = e.ts;
      open = null;
    } else {
      // HEARTBEAT or JOURNAL: positions move on; a journal's new shards start their chains here,
      // and the next transaction of each shard it moved writes onto waits for the old ones'.
      const g = decodeToken(e.token);
      if (e.type === "JOURNAL") {
        const waits = journalDeps(g.keyspace, e.from, at, last, pages, deps);
        const next = positions(g);
        for (const name of e.to) {
          const slash = name.indexOf("/");
          const keyspace = slash < 0 ? g.keyspace : name.slice(0, slash);
          const p = next.get(slash < 0 ? `${g.keyspace}/${name}` : name);
          if (p === undefined) continue;
          const key = chainKey(keyspace, slash < 0 ? name : name.slice(slash + 1), p.uid);
          const merged = new Map<string, SubscriptionDep>();
          for (const d of [...(deps[key] ?? []), ...waits]) merged.set(chainKey(d.keyspace ?? g.keyspace, d.shard, d.uid), d);
          if (merged.size > 0) deps[key] = [...merged.values()];
        }
      }
      withOrigins(origins, g);
      token = e.token;
      at = positions(g);
      if (e.type === "HEARTBEAT") ts = e.ts;
    }
  }
  return { items, cursor: { token, origins, last, deps, ...(Object.keys(pages).length > 0 ? { pages } : {}) }, ts, pages: copied };
}
