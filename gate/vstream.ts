// VStream through the gate: one long-polling reader per shard, merged into one event stream.
// Per shard, transactions are handed out whole and in commit order, each COMMIT with the token
// (every shard's position) after it. A shard whose read reaches a journal (a reshard switched
// its writes away) hands over to the journal's new shards at the positions the journal names;
// a new shard starts only once every old shard it takes writes from has reached its journal, so
// no change of a row can overtake an older one of the same row. A MoveTables' journal (tables
// moved to another keyspace) ends the stream with VD2802 and the token to follow them there.

import { VtError, toVtError } from "../contract/errors.ts";
import { setOwn } from "../topology/own.ts";
import { unsupportedError } from "../topology/refusals.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { SqlValue } from "../contract/sql-values.ts";
import {
  encodeToken,
  type Row,
  type ShardJournal,
  type ShardPosition,
  type ShardRead,
  type ShardReadRequest,
  type ShardRowChange,
  type VEvent,
  type VStreamRequest,
} from "../contract/vstream.ts";

/** What the merger needs of the world. */
export interface VStreamTablets {
  /** The keyspace's serving graph (`fresh`: asked of the Topology now, not from a cache). */
  keyspace(name: string, fresh: boolean): Promise<KeyspaceGraph>;
  read(tablet: string, req: ShardReadRequest): Promise<ShardRead>;
  /** Every tablet of the keyspace that still has its binlog (the graph's and its open workflows'; TopologyRpc.keyspaceTablets). */
  known(keyspace: string): Promise<readonly string[]>;
}

export const DEFAULT_HEARTBEAT_MS = 1_000;
/** How long one read waits for a commit before it answers empty (the stream then reads again). */
const LONG_POLL_MS = 1_000;
/** A shard that cannot be read for this long ends the stream with the last error. */
const GIVE_UP_MS = 30_000;
const RETRY_PAUSE_MS = 100;

interface Pending {
  readonly pos: ShardPosition;
  /** The old shards whose journals it waits for. */
  readonly needs: ReadonlySet<string>;
}

function rowOf(columns: readonly string[], values: readonly SqlValue[] | null): Row | null {
  if (values === null) return null;
  const out: Record<string, SqlValue> = {};
  columns.forEach((c, i) => {
    setOwn(out, c, values[i] ?? null);
  });
  return out;
}

function pkOf(c: ShardRowChange, row: Row | null): Row {
  const out: Record<string, SqlValue> = {};
  for (const k of c.pk) setOwn(out, k, row && Object.hasOwn(row, k) ? (row[k] ?? null) : null);
  return out;
}

function rowEvent(shard: string, c: ShardRowChange, copy: boolean): VEvent {
  const before = rowOf(c.columns, c.before);
  const after = rowOf(c.columns, c.after);
  const op = before === null ? "insert" : after === null ? "delete" : "update";
  return { type: "ROW", shard, table: c.table, op, before, after, pk: pkOf(c, after ?? before), ...(copy ? { copy: true as const } : {}) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A shard read to its end whose tablet no longer serves, with no journal there, had its writes
 * moved by a switch that wrote none, or whose journal is not written yet (a switch writes it just
 * after its flip). Past JOURNAL_GRACE_MS the stream would silently miss what the new shards take:
 * it ends with a clear error instead. Answers when the shard first stopped serving (null: it serves).
 */
async function checkStillServing(
  keyspace: string,
  shard: string,
  tablet: string,
  tablets: VStreamTablets,
  since: number | null,
  now: number,
): Promise<number | null> {
  const ks = await tablets.keyspace(keyspace, since !== null);
  if (ks.shards.some((s) => s.serving && s.tablet === tablet)) return null;
  if (since === null || now - since < JOURNAL_GRACE_MS) return since ?? now;
  throw unsupportedError(
    "VD2801",
    `vstream: shard ${shard} of keyspace ${keyspace} no longer serves and its binlog holds no journal saying where its writes went; start a new stream from "now" (or "start")`,
    { shard },
  );
}

/** How long a shard may be seen not serving with no journal before the stream gives up on it (a switch writes its journal right after its flip). */
export const JOURNAL_GRACE_MS = 10_000;

/**
 * A MoveTables' journal moved tables of this stream to another keyspace: a stream reads one
 * keyspace, so it ends there with VD2802, carrying the token of the positions the moved tables
 * start from in the keyspace they went to (with `tables` set to them) and this stream's own
 * token, taken just before the journal, for the tables that stayed.
 */
function movedTablesError(shard: string, j: ShardJournal, wanted: readonly string[] | null, token: string): VtError {
  const moved = j.tables ?? [];
  const mine = wanted === null ? moved : moved.filter((t) => wanted.includes(t.toLowerCase()));
  const follow = encodeToken({
    keyspace: j.keyspace,
    shards: j.targets.map((t) => ({ shard: t.shard, tablet: t.tablet, uid: t.uid, seq: t.seq, copy: null })),
  });
  return unsupportedError(
    "VD2802",
    `vstream: MoveTables ${j.workflow} moved table(s) ${mine.join(", ")} to keyspace ${j.keyspace} (shard ${shard} of this keyspace journaled it); a stream reads one keyspace: go on with those tables from the token in "follow" (keyspace ${j.keyspace}), and with the others from the token in "resume"`,
    { shard, keyspace: j.keyspace, tables: mine, follow, resume: token },
  );
}

/**
 * The copy cursor the new shards go on with (a stream from "start" still copying): a split's (one
 * old shard) as it stood; a merge's, when its old shards stood at different points, the start of
 * the first table any of them was still copying (tables are copied in name order), so nothing is
 * skipped, and rows one old shard had copied already may be copied again (a copy row is the row
 * as it is then: applying by primary key gives the same rows).
 */
function carriedCopy(sources: readonly string[], positions: ReadonlyMap<string, ShardPosition>): ShardPosition["copy"] {
  const cursors = sources.map((s) => positions.get(s)?.copy ?? null);
  const first = cursors[0] ?? null;
  if (cursors.every((c) => JSON.stringify(c) === JSON.stringify(first))) return first;
  const copying = cursors.filter((c): c is NonNullable<typeof c> => c !== null).map((c) => c.table);
  const table = copying.reduce((a, b) => (b.toLowerCase() < a.toLowerCase() ? b : a));
  return { table, after: null };
}

/**
 * The request with "now" or "start" made a token: every serving shard's binlog head, read at once
 * (a token is kept as it is). A stream started from it begins at one point of each shard.
 */
export async function resolveStart(req: VStreamRequest, tablets: VStreamTablets): Promise<VStreamRequest> {
  if (req.from !== "now" && req.from !== "start") return req;
  const ks = await tablets.keyspace(req.keyspace, true);
  const copy = req.from === "start" ? { table: "", after: null } : null;
  const shards = await Promise.all(
    ks.shards
      .filter((s) => s.serving)
      .map(async (s): Promise<ShardPosition> => {
        const head = await tablets.read(s.tablet, { tables: req.tables ?? null, uid: null, seq: -1, copy: null, waitMs: 0 });
        return { shard: s.name, tablet: s.tablet, uid: head.uid, seq: head.seq, copy };
      }),
  );
  return { ...req, from: { keyspace: req.keyspace, shards } };
}

/**
 * The events of `req`, until the consumer stops (breaks out of the loop) or a shard cannot be
 * read for GIVE_UP_MS (then its last error is thrown). `now` is the clock (tests pass their own).
 */
export async function* vstreamEvents(req: VStreamRequest, tablets: VStreamTablets, now: () => number = Date.now): AsyncGenerator<VEvent> {
  for await (const batch of vstreamBatches(req, tablets, now)) yield* batch;
}

/**
 * The same events in batches, one per shard read (what one read handed out, in order), so that a
 * transport writes them at once (SSE: one chunk per batch). Before an error is thrown, the events
 * before it are handed out.
 */
export async function* vstreamBatches(req: VStreamRequest, tablets: VStreamTablets, now: () => number = Date.now): AsyncGenerator<VEvent[]> {
  const tables = req.tables ?? null;
  const heartbeatMs = req.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const positions = new Map<string, ShardPosition>();
  const { from } = await resolveStart(req, tablets);
  if (from === "now" || from === "start") throw new VtError("INTERNAL", "vstream: the start was not resolved");
  if (from.keyspace !== req.keyspace) {
    throw new VtError("INVALID_ARGUMENT", `vstream: the resume token is of keyspace ${from.keyspace}, not ${req.keyspace}`);
  }
  // A token names tablets: only those the keyspace has now are read (a crafted token reaches no other object).
  const known = new Set(await tablets.known(req.keyspace));
  for (const p of from.shards) {
    if (!known.has(p.tablet)) {
      throw new VtError(
        "INVALID_ARGUMENT",
        `vstream: the resume token is too old: it names tablet ${p.tablet}, which keyspace ${req.keyspace} no longer has (a reshard completed); start again from "now" or "start"`,
      );
    }
    positions.set(p.shard, p);
  }
  const journaled = new Set<string>();
  const pending = new Map<string, Pending>();
  const token = () => encodeToken({ keyspace: req.keyspace, shards: [...positions.values()].sort((a, b) => a.shard.localeCompare(b.shard)) });

  const request = (p: ShardPosition, waitMs: number): ShardReadRequest => ({ tables, uid: p.uid, seq: p.seq, copy: p.copy, waitMs });
  let out: VEvent[] = [];
  // The subscriber holds a token from the first moment.
  out.push({ type: "HEARTBEAT", ts: now(), token: token() });

  const reads = new Map<string, Promise<{ shard: string; read?: ShardRead; error?: unknown }>>();
  const failingSince = new Map<string, number>();
  const notServingSince = new Map<string, number>();
  let lastEvent = now();
  for (;;) {
    if (out.length > 0) {
      const batch = out;
      out = [];
      yield batch;
    }
    try {
      for (const p of positions.values()) {
        if (journaled.has(p.shard) || reads.has(p.shard)) continue;
        reads.set(
          p.shard,
          tablets.read(p.tablet, request(p, Math.min(LONG_POLL_MS, heartbeatMs))).then(
            (read) => ({ shard: p.shard, read }),
            (error: unknown) => ({ shard: p.shard, error }),
          ),
        );
      }
      if (reads.size === 0) throw new VtError("INTERNAL", "vstream: no shard left to read (a journal named shards that never started)");
      const done = await Promise.race(reads.values());
      reads.delete(done.shard);
      const pos = positions.get(done.shard);
      if (!pos) continue;
      if (done.error !== undefined || !done.read) {
        const e = toVtError(done.error);
        if (e.code === "INVALID_ARGUMENT" || e.code === "UNSUPPORTED" || e.code === "PERMISSION_DENIED") throw e;
        const since = failingSince.get(done.shard) ?? now();
        failingSince.set(done.shard, since);
        if (now() - since > GIVE_UP_MS) throw e;
        await sleep(RETRY_PAUSE_MS);
        continue;
      }
      failingSince.delete(done.shard);
      const read = done.read;
      const shard = done.shard;
      let emitted = false;
      for (const t of read.transactions) {
        out.push({ type: "BEGIN", shard });
        for (const c of t.changes) out.push("ddl" in c ? { type: "DDL", shard, ddl: c.ddl } : rowEvent(shard, c, false));
        positions.set(shard, { ...(positions.get(shard) ?? pos), seq: t.seq });
        out.push({ type: "COMMIT", shard, ts: t.ts, token: token() });
        emitted = true;
      }
      if (read.copy) {
        const { rows, to, seq } = read.copy;
        if (rows.length > 0) out.push({ type: "BEGIN", shard });
        for (const c of rows) out.push(rowEvent(shard, c, true));
        positions.set(shard, { ...(positions.get(shard) ?? pos), seq, copy: to });
        if (rows.length > 0) {
          out.push({ type: "COMMIT", shard, ts: null, token: token() });
          emitted = true;
        }
      }
      positions.set(shard, { ...(positions.get(shard) ?? pos), seq: Math.max(read.seq, positions.get(shard)?.seq ?? pos.seq) });
      if (read.journal) {
        const j = read.journal;
        if (j.keyspace !== req.keyspace || j.tables !== null) throw movedTablesError(shard, j, tables, token());
        journaled.add(shard);
        for (const t of j.targets) {
          if (!pending.has(t.shard) && !positions.has(t.shard)) {
            pending.set(t.shard, { pos: { shard: t.shard, tablet: t.tablet, uid: t.uid, seq: t.seq, copy: null }, needs: new Set(j.sources) });
          }
        }
        const ready = [...pending.values()].filter((p) => [...p.needs].every((s) => journaled.has(s) || !positions.has(s)));
        if (ready.length > 0) {
          const from = new Set<string>();
          for (const p of ready) {
            pending.delete(p.pos.shard);
            positions.set(p.pos.shard, {
              ...p.pos,
              copy: carriedCopy(
                [...p.needs].filter((s) => positions.has(s)),
                positions,
              ),
            });
            for (const s of p.needs) from.add(s);
          }
          // An old shard goes once no new shard still waits for it.
          for (const s of from) {
            if (![...pending.values()].some((p) => p.needs.has(s))) {
              positions.delete(s);
              journaled.delete(s);
            }
          }
          out.push({ type: "JOURNAL", from: [...from].sort(), to: ready.map((p) => p.pos.shard).sort(), token: token() });
          emitted = true;
        }
      }
      if (emitted) {
        lastEvent = now();
        notServingSince.delete(shard);
      } else if (now() - lastEvent >= heartbeatMs && !journaled.has(shard)) {
        lastEvent = now();
        const since = await checkStillServing(req.keyspace, shard, pos.tablet, tablets, notServingSince.get(shard) ?? null, lastEvent);
        if (since === null) notServingSince.delete(shard);
        else notServingSince.set(shard, since);
        out.push({ type: "HEARTBEAT", ts: lastEvent, token: token() });
      }
    } catch (e) {
      if (out.length > 0) yield out;
      throw e;
    }
  }
}
