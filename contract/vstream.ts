// VStream (change data capture) as subscribers see it: the request, the events and the resume
// token (a VGTID: one position per shard). The gate merges the shards' streams (gate/vstream.ts);
// each tablet hands out whole transactions of its binlog through the one streamer the
// resharding streams use (tablet/streamer.ts).
//
// Order and repetition, exactly: per shard, transactions arrive whole (BEGIN, ROW…, COMMIT) in
// commit order; across shards they interleave. Every COMMIT carries the token after its
// transaction: resuming from it delivers every later change of every shard once. Only a
// transaction whose COMMIT the subscriber did not receive may come again, whole.

import { VtError } from "./errors.ts";
import { fromJsonValue, toJsonValue, type SqlValue } from "./sql-values.ts";

/**
 * Where the consistent copy of "start" stands: the table being copied (by name, so a table made
 * meanwhile cannot shift it; "" before the first) and the PRIMARY KEY of its last row handed out.
 */
export interface CopyAt {
  readonly table: string;
  readonly after: readonly SqlValue[] | null;
}

/** Where one shard's stream stands. */
export interface ShardPosition {
  readonly shard: string;
  /** The tablet (its Durable Object name) whose binlog the position is in. */
  readonly tablet: string;
  /** The tablet's uid (a retired and remade tablet has another: the position is then void). */
  readonly uid: string;
  /** Every change committed up to this binlog sequence has been delivered. */
  readonly seq: number;
  /** from "start": the consistent copy's cursor while it is not done (null: only changes follow). */
  readonly copy: CopyAt | null;
  /** The shard's keyspace when it is not the stream's: a MoveTables moved tables the stream reads there. */
  readonly keyspace?: string;
  /** Lower-cased: the only tables read at this position (those a MoveTables brought here); absent: the stream's tables. */
  readonly only?: readonly string[];
  /** Lower-cased: tables not read at this position any more (a MoveTables moved them to another keyspace). */
  readonly skip?: readonly string[];
}

/** The resume token's content (tokens travel as opaque text: encodeToken / decodeToken). */
export interface VGtid {
  readonly keyspace: string;
  readonly shards: readonly ShardPosition[];
}

export type VStreamFrom = "now" | "start" | VGtid;

export interface VStreamRequest {
  readonly keyspace: string;
  /** Lower-cased names; absent: every table of the keyspace. */
  readonly tables?: readonly string[];
  readonly from: VStreamFrom;
  /** How often an idle stream says it is alive (HEARTBEAT), ms. */
  readonly heartbeatMs?: number;
}

export type Row = Readonly<Record<string, SqlValue>>;

/**
 * `keyspace` is set on an event of a shard of another keyspace than the stream's (a MoveTables
 * moved the table there and the stream followed it).
 */
export type VEvent =
  | { readonly type: "BEGIN"; readonly shard: string; readonly keyspace?: string }
  | {
      readonly type: "ROW";
      readonly shard: string;
      readonly keyspace?: string;
      readonly table: string;
      /** insert: `after` only; delete: `before` only; update: both. A row of the initial copy is an insert with `copy: true`. */
      readonly op: "insert" | "update" | "delete";
      readonly before: Row | null;
      readonly after: Row | null;
      /** The row's PRIMARY KEY columns and values (of `after`, or `before` for a delete). */
      readonly pk: Row;
      readonly copy?: true;
    }
  | { readonly type: "DDL"; readonly shard: string; readonly keyspace?: string; readonly ddl: string }
  | { readonly type: "COMMIT"; readonly shard: string; readonly keyspace?: string; readonly ts: number | null; readonly token: string }
  | { readonly type: "HEARTBEAT"; readonly ts: number; readonly token: string }
  | {
      /**
       * A reshard (or a MoveTables) moved the shards' writes: the stream goes on from the new
       * shards, nothing lost or repeated. Shards of another keyspace are named `<keyspace>/<shard>`;
       * after a MoveTables the old shards stay (for the tables that did not move).
       */
      readonly type: "JOURNAL";
      readonly from: readonly string[];
      readonly to: readonly string[];
      readonly token: string;
    };

const TOKEN_VERSION = 1;

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array {
  const s = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** The token text of a VGTID (base64url JSON; opaque to subscribers). */
export function encodeToken(g: VGtid): string {
  const copy = (c: CopyAt | null) => (c === null ? null : { t: c.table, a: c.after === null ? null : c.after.map(toJsonValue) });
  const extra = (p: ShardPosition) =>
    p.keyspace === undefined && p.only === undefined && p.skip === undefined
      ? []
      : [{ ...(p.keyspace !== undefined ? { k: p.keyspace } : {}), ...(p.only ? { o: p.only } : {}), ...(p.skip ? { x: p.skip } : {}) }];
  const body = { v: TOKEN_VERSION, ks: g.keyspace, s: g.shards.map((p) => [p.shard, p.tablet, p.uid, p.seq, copy(p.copy), ...extra(p)]) };
  return base64url(new TextEncoder().encode(JSON.stringify(body)));
}

const bad = (why: string) =>
  new VtError("INVALID_ARGUMENT", `vstream: the resume token is not one this server handed out (${why}); use a COMMIT's token, or from "now" or "start"`);

function copyOf(v: unknown): CopyAt | null {
  if (v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) throw bad("a copy cursor is malformed");
  const c = v as Record<string, unknown>;
  const after = c["a"];
  if (typeof c["t"] !== "string" || (after !== null && !Array.isArray(after))) throw bad("a copy cursor is malformed");
  try {
    return { table: c["t"], after: after === null ? null : (after as unknown[]).map((x) => fromJsonValue(x, "the resume token")) };
  } catch {
    throw bad("a copy cursor's key is malformed");
  }
}

function names(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > 1000 || !v.every((t) => typeof t === "string" && t.length > 0 && t.length <= 256)) throw bad("a table list is malformed");
  return v as string[];
}

function extraOf(v: unknown): Pick<ShardPosition, "keyspace" | "only" | "skip"> {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("a shard entry is malformed");
  const x = v as Record<string, unknown>;
  if (Object.keys(x).some((k) => k !== "k" && k !== "o" && k !== "x")) throw bad("a shard entry is malformed");
  if (x["k"] !== undefined && typeof x["k"] !== "string") throw bad("a shard entry is malformed");
  const only = names(x["o"]);
  const skip = names(x["x"]);
  return { ...(typeof x["k"] === "string" ? { keyspace: x["k"] } : {}), ...(only ? { only } : {}), ...(skip ? { skip } : {}) };
}

/** The VGTID of a token; INVALID_ARGUMENT for anything else. */
export function decodeToken(token: unknown): VGtid {
  if (typeof token !== "string" || token.length === 0 || token.length > 64 * 1024 || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad("not token text");
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(fromBase64url(token)));
  } catch {
    throw bad("not decodable");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("not an object");
  const b = body as Record<string, unknown>;
  if (b["v"] !== TOKEN_VERSION) throw bad("unknown version");
  if (typeof b["ks"] !== "string" || !Array.isArray(b["s"]) || b["s"].length === 0) throw bad("no shards");
  const shards = (b["s"] as unknown[]).map((e): ShardPosition => {
    if (!Array.isArray(e) || (e.length !== 5 && e.length !== 6)) throw bad("a shard entry is malformed");
    const [shard, tablet, uid, seq, copy, extra] = e as unknown[];
    if (typeof shard !== "string" || typeof tablet !== "string" || typeof uid !== "string") throw bad("a shard entry is malformed");
    if (!Number.isSafeInteger(seq) || (seq as number) < 0) throw bad("a position is not a binlog sequence");
    return { shard, tablet, uid, seq: seq as number, copy: copyOf(copy), ...extraOf(extra) };
  });
  if (new Set(shards.map((s) => `${s.keyspace ?? b["ks"]}/${s.shard}`)).size !== shards.length) throw bad("a shard appears twice");
  return { keyspace: b["ks"], shards };
}

/** One read of a tablet's binlog for a VStream (TabletRpc.vstreamRead). */
export interface ShardReadRequest {
  /** Lower-cased table names; null: every user table. */
  readonly tables: readonly string[] | null;
  /** The tablet's uid the position belongs to (null: a position of "now" or "start" on this tablet). */
  readonly uid: string | null;
  /** -1: answers only where the binlog head is now (uid and seq), nothing else: where "now" and "start" begin. */
  readonly seq: number;
  readonly copy: CopyAt | null;
  /** With nothing to hand out, wait up to this long for a commit (a long poll), ms. */
  readonly waitMs: number;
  /** Lower-cased tables left out (a MoveTables moved them away); absent: none. */
  readonly skip?: readonly string[];
  /**
   * A reader id (a subscription's): the tablet records a binlog-retention hold at this read's
   * position, so its purge never deletes what the reader has not read; a hold not advanced for 7
   * days (or the retention window, when longer) is released, and the reader's next read below the floor names it.
   */
  readonly hold?: string;
}

/** A row change as a tablet hands it to a VStream: images by column name, exact values. */
export interface ShardRowChange {
  readonly table: string;
  readonly columns: readonly string[];
  readonly pk: readonly string[];
  readonly before: readonly SqlValue[] | null;
  readonly after: readonly SqlValue[] | null;
}

export interface ShardTransaction {
  /** The binlog sequence of its commit. */
  readonly seq: number;
  readonly ts: number | null;
  readonly changes: readonly (ShardRowChange | { readonly ddl: string })[];
}

/**
 * Where a switch moved a shard's writes: the journal SwitchTraffic (or ReverseTraffic) writes at
 * the end of the binlogs of the shards that stopped taking them, once the serving graph flipped.
 */
export interface ShardJournal {
  /** The workflow whose switch wrote it. */
  readonly workflow: string;
  /** The keyspace the writes moved to (the same keyspace for a Reshard, the target keyspace for a MoveTables). */
  readonly keyspace: string;
  /** The tables whose writes moved (a MoveTables); null: every table of the shard (a Reshard). */
  readonly tables: readonly string[] | null;
  /** Every shard that stopped taking these writes (a merge has several). */
  readonly sources: readonly string[];
  /** The new shards, each at the binlog position holding exactly the old shards' rows of its range. */
  readonly targets: readonly {
    readonly shard: string;
    readonly tablet: string;
    readonly uid: string;
    readonly seq: number;
    /** With `arrivals`: the commit seq of this switch's arrival marker on the shard. */
    readonly arrival?: number;
  }[];
  /**
   * A marker, not a move: a reversed MoveTables gave `tables` back to this shard, whose binlog
   * holds their writes again from here on (written before the tablet took any; `keyspace` is the
   * shard's own, `sources` and `targets` are empty). A reader that reads those tables elsewhere
   * (it followed the MoveTables' journal) waits here until it has read them there up to the
   * reverse's journals, then reads them here again.
   */
  readonly rejoin?: true;
  /**
   * Set on a MoveTables' SwitchTraffic journal (a forward move; absent on a ReverseTraffic's and
   * on journals written before it existed): its target shards write no rejoin markers, so a
   * stream that reads them without those tables cannot take them back there as from a reverse.
   */
  readonly forward?: true;
  /**
   * A marker, not a move: a MoveTables' switch brought `tables` to this shard of its target
   * keyspace, whose binlog holds their writes from here on (written in the config push that lifts
   * their deny, before the tablet took any; `keyspace` is the shard's own, `sources` and `targets`
   * are empty). A reader of this shard that does not read those tables here but on the source
   * shards waits here until it has read them there up to the switch's journal, then reads them
   * here too.
   */
  readonly arrival?: true;
  /** On an arrival marker: the keyspace the tables came from (where a stream reads them until the switch's journal). */
  readonly sourceKeyspace?: string;
  /** On a MoveTables switch's journal: its targets wrote arrival markers (switches from before them did not). */
  readonly arrivals?: true;
}

export interface ShardRead {
  readonly uid: string;
  /** Whole transactions after the position, in commit order. */
  readonly transactions: readonly ShardTransaction[];
  /** from "start": a page of the consistent copy at `seq` (after the transactions), and the cursor past it. */
  readonly copy?: { readonly rows: readonly ShardRowChange[]; readonly to: CopyAt | null; readonly seq: number };
  /**
   * Set when the read reached a journal naming tables the reader asked for, after the
   * transactions: those writes moved. `seq` then stays before the journal (a reader resuming
   * there meets the journal again) and the read hands out nothing past it.
   */
  readonly journal?: ShardJournal;
  /** With `journal`: the journal's commit seq (a reader that follows a MoveTables goes on past it there). */
  readonly journalSeq?: number;
  /** The position after this read (the last commit handed out, or where it stood). */
  readonly seq: number;
}
