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
import { StreamPositions } from "./vstream-positions.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { SqlValue } from "../contract/sql-values.ts";
import type { Row, ShardPosition, ShardRead, ShardReadRequest, ShardRowChange, VEvent, VStreamRequest } from "../contract/vstream.ts";

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

/** `where`: the shard, and its keyspace when it is not the stream's. */
type Where = { readonly shard: string; readonly keyspace?: string };

function rowEvent(where: Where, c: ShardRowChange, copy: boolean): VEvent {
  const before = rowOf(c.columns, c.before);
  const after = rowOf(c.columns, c.after);
  const op = before === null ? "insert" : after === null ? "delete" : "update";
  return { type: "ROW", ...where, table: c.table, op, before, after, pk: pkOf(c, after ?? before), ...(copy ? { copy: true as const } : {}) };
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
  const { from } = await resolveStart(req, tablets);
  if (from === "now" || from === "start") throw new VtError("INTERNAL", "vstream: the start was not resolved");
  if (from.keyspace !== req.keyspace) {
    throw new VtError("INVALID_ARGUMENT", `vstream: the resume token is of keyspace ${from.keyspace}, not ${req.keyspace}`);
  }
  // A token names tablets: only those its keyspaces have now are read (a crafted token reaches no other object).
  for (const ks of new Set(from.shards.map((p) => p.keyspace ?? req.keyspace))) {
    const known = new Set(await tablets.known(ks));
    for (const p of from.shards) {
      if ((p.keyspace ?? req.keyspace) === ks && !known.has(p.tablet)) {
        throw new VtError(
          "INVALID_ARGUMENT",
          `vstream: the resume token is too old: it names tablet ${p.tablet}, which keyspace ${ks} no longer has (a reshard completed); start again from "now" or "start"`,
        );
      }
    }
  }
  const at = new StreamPositions(req.keyspace, tables, from.shards);
  let out: VEvent[] = [];
  // The subscriber holds a token from the first moment.
  out.push({ type: "HEARTBEAT", ts: now(), token: at.token() });

  const reads = new Map<string, Promise<{ key: string; read?: ShardRead; error?: unknown }>>();
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
      for (const [key, p] of at.readable()) {
        if (reads.has(key)) continue;
        reads.set(
          key,
          tablets.read(p.tablet, at.request(p, Math.min(LONG_POLL_MS, heartbeatMs))).then(
            (read) => ({ key, read }),
            (error: unknown) => ({ key, error }),
          ),
        );
      }
      if (reads.size === 0) throw new VtError("INTERNAL", "vstream: no shard left to read (a journal named shards that never started)");
      const done = await Promise.race(reads.values());
      const key = done.key;
      reads.delete(key);
      const pos = at.get(key);
      if (!pos) continue;
      if (done.error !== undefined || !done.read) {
        const e = toVtError(done.error);
        if (e.code === "INVALID_ARGUMENT" || e.code === "UNSUPPORTED" || e.code === "PERMISSION_DENIED") throw e;
        const since = failingSince.get(key) ?? now();
        failingSince.set(key, since);
        if (now() - since > GIVE_UP_MS) throw e;
        await sleep(RETRY_PAUSE_MS);
        continue;
      }
      failingSince.delete(key);
      const read = done.read;
      const where: Where = { shard: pos.shard, ...(pos.keyspace !== undefined && pos.keyspace !== req.keyspace ? { keyspace: pos.keyspace } : {}) };
      let emitted = false;
      for (const t of read.transactions) {
        out.push({ type: "BEGIN", ...where });
        for (const c of t.changes) out.push("ddl" in c ? { type: "DDL", ...where, ddl: c.ddl } : rowEvent(where, c, false));
        at.advance(key, { seq: t.seq });
        out.push({ type: "COMMIT", ...where, ts: t.ts, token: at.token() });
        emitted = true;
      }
      if (read.copy) {
        const { rows, to, seq } = read.copy;
        if (rows.length > 0) out.push({ type: "BEGIN", ...where });
        for (const c of rows) out.push(rowEvent(where, c, true));
        at.advance(key, { seq, copy: to });
        if (rows.length > 0) {
          out.push({ type: "COMMIT", ...where, ts: null, token: at.token() });
          emitted = true;
        }
      }
      at.advance(key, { seq: Math.max(read.seq, at.get(key)?.seq ?? pos.seq) });
      if (read.journal) {
        const moved = at.follow(key, read.journal, read.journalSeq ?? read.seq + 2);
        if (moved) {
          out.push(moved);
          emitted = true;
        }
      }
      if (emitted) {
        lastEvent = now();
        notServingSince.delete(key);
      } else if (now() - lastEvent >= heartbeatMs && !at.isJournaled(key)) {
        lastEvent = now();
        const since = await checkStillServing(pos.keyspace ?? req.keyspace, pos.shard, pos.tablet, tablets, notServingSince.get(key) ?? null, lastEvent);
        if (since === null) notServingSince.delete(key);
        else notServingSince.set(key, since);
        out.push({ type: "HEARTBEAT", ts: lastEvent, token: at.token() });
      }
    } catch (e) {
      if (out.length > 0) yield out;
      throw e;
    }
  }
}
