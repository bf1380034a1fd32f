// Tablet: one SQLite Durable Object per shard, named by the Topology (ShardGraph.tablet). It owns
// the shard's rows and the binlog of every change to them, and refuses work for a target it does
// not serve.

import { DurableObject } from "cloudflare:workers";
import { toVtError, VtError } from "../contract/errors.ts";
import { checkShardSql } from "../topology/shard-sql-guard.ts";
import { arrivalMarker, rejoinMarker } from "./vstreamer.ts";
import { appendCommit, appendJournal, formatPosition, journalSeqOf, lastSeq, parsePosition, readBinlog, upgradeTriggers } from "./binlog.ts";
import { catchUp, fenceHolds, nonEmptyTables, tableInfos, tryEntry, type Fence } from "./schema-change.ts";
import { runQuery } from "./run-query.ts";
import { checkDeniedTables, checkDenyWrites, checkFence, checkTarget } from "./write-gates.ts";
import { STREAM_SCHEMA, TABLET_SCHEMA, upgradeStreamSchema } from "./system-schema.ts";
import { dropEverything } from "./retire.ts";
import { StreamTarget } from "./stream-target.ts";
import { copierFor } from "./copier.ts";
import { StreamPump } from "./stream-pump.ts";
import { drainStream } from "./stream-drain.ts";
import { vdiffChunk } from "./stream-vdiff.ts";
import type {
  CopyCursor,
  StreamFilter,
  StreamLimits,
  StreamPart,
  StreamPartOutcome,
  StreamPos,
  StreamSpec,
  StreamState,
  StreamUnit,
  VDiffChunk,
} from "../contract/stream-rpc.ts";
import type { BinlogChunk, BoundQuery, DdlEntry, PreparedChange, QueryResult, TabletConfig, TabletRpc, TabletStatus, Target } from "../contract/tablet-rpc.ts";
import { streamUnit } from "./streamer.ts";
import { binlogRetentionRpc, checkRetained, streamHoldId, type BinlogRetentionStatus, type PurgeResult } from "./binlog-retention.ts";
import { vstreamRead } from "./vstreamer.ts";
import { alarmPurge, armPurge, purgeIsIdle, RetentionFigures, wakePurge } from "./retention-alarm.ts";
import { RowCounter } from "./row-count.ts";
import { CommitWaiters } from "./commit-waiters.ts";
import type { ShardJournal, ShardRead, ShardReadRequest } from "../contract/vstream.ts";

/** The longest a VStream read waits for a commit, and how often it looks while waiting. */
const VSTREAM_MAX_WAIT_MS = 30_000;
const VSTREAM_POLL_MS = 50;
import { envelope, envelopeAsync, unwrap, type Envelope } from "../contract/envelope.ts";

const MAX_BINLOG_CHUNK = 10_000;

function randomUid(): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export class Tablet extends DurableObject<Env> implements TabletRpc {
  readonly #sql: SqlStorage;
  #uid: string;
  #config: TabletConfig | null;
  /** VStream reads waiting for the next commit. */
  readonly #commitWaiters = new CommitWaiters();
  #schemaIndex: number;
  /** The write fence of an unresolved schema/vschema change (see schema-change.ts), or null. */
  #fence: Fence | null;
  /** Statements executed since this instance started (operational counter, not persisted). */
  #served = 0;
  /** The row count of the status (row-count.ts). */
  readonly #rows = new RowCounter();
  /** total_changes() after our last write: a write transaction changed user rows iff it moved. */
  #tc = 0;
  #seenTc = 0;
  readonly #streams: StreamTarget;
  readonly #pump: StreamPump;
  /** The retention figures of the status (retention-alarm.ts). */
  readonly #figures = new RetentionFigures();
  /** Whether the next purge waits for something to age out (the tablet was idle); null: not read yet. */
  #purgeIdle: boolean | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(TABLET_SCHEMA);
    this.#sql.exec(STREAM_SCHEMA);
    upgradeStreamSchema(this.#sql);
    this.#streams = new StreamTarget(ctx.storage);
    this.#pump = new StreamPump(this.#streams, {
      source: (name) => env.TABLET.get(env.TABLET.idFromName(name)),
      send: async (part) => {
        // A round that was reading its source when the stream went (deleted, or the tablet
        // retired) sends nothing of it.
        if (!this.#streams.record(part.stream)) return;
        // v8, not the default JSON: a part carries bytes.
        await env.VREPL_QUEUE.send(part, { contentType: "v8" });
      },
      // Rows a copy applied moved total_changes(); a user write must not take them for its own.
      applied: () => {
        this.#ownChangesSeen();
      },
    });
    // REPLACE deletes fire DELETE triggers (and so reach the binlog) only with this on.
    this.#sql.exec("PRAGMA recursive_triggers = ON");
    const meta = new Map(
      this.#sql
        .exec<{ k: string; v: string }>("SELECT k, v FROM _vt_meta")
        .toArray()
        .map((r) => [r.k, r.v]),
    );
    let uid = meta.get("uid");
    if (uid === undefined) {
      uid = randomUid();
      this.#sql.exec("INSERT INTO _vt_meta (k, v) VALUES ('uid', ?)", uid);
    }
    this.#uid = uid;
    const cfg = meta.get("config");
    this.#config = cfg === undefined ? null : (JSON.parse(cfg) as TabletConfig);
    this.#schemaIndex = Number(meta.get("schema_index") ?? "0");
    ctx.storage.transactionSync(() => upgradeTriggers(this.#sql, meta.get("triggers")));
    const fence = meta.get("fence");
    this.#fence = fence === undefined ? null : (JSON.parse(fence) as Fence);
    this.#ownChangesSeen();
  }

  #totalChanges(): number {
    return this.#sql.exec<{ tc: number }>("SELECT total_changes() AS tc").one().tc;
  }

  #setMeta(k: string, v: string): void {
    this.#sql.exec("INSERT INTO _vt_meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v);
  }

  #setFence(fence: Fence | null): void {
    if (fence === null) this.#sql.exec("DELETE FROM _vt_meta WHERE k = 'fence'");
    else this.#setMeta("fence", JSON.stringify(fence));
    this.#fence = fence;
  }

  /**
   * Runs the statements as one transaction: all commit (with their binlog) or none do. Each is
   * checked again here, whatever the caller checked (shard-sql-guard.ts): one row statement
   * naming none of the system's objects, so it cannot change the schema (schema changes arrive
   * only through `sync`) and a binlog trigger can never silently disappear. Nothing runs unless
   * every query passes.
   */
  execute(target: Target, queries: BoundQuery[]): Envelope<QueryResult[]> {
    const out = this.#execute(target, queries);
    if (out.ok && this.#purgeIdle !== false && queries.some((q) => q.kind !== "read")) this.#wakeIdlePurge();
    return out;
  }

  /**
   * The first write after an idle spell brings the purge's interval back (retention-alarm.ts).
   * The batch has committed: a failure here is logged, never answered (the alarm comes anyway).
   */
  #wakeIdlePurge(): void {
    if (this.#config === null) return;
    try {
      const now = Date.now();
      this.#purgeIdle ??= purgeIsIdle(this.#sql, now);
      if (!this.#purgeIdle) return;
      this.#purgeIdle = false;
      const at = wakePurge(this.#sql, now);
      this.ctx.waitUntil(this.#alarmBy(at).catch((e: unknown) => console.warn(`tablet ${this.#uid}: purge alarm not set: ${String(e)}`)));
    } catch (e) {
      console.warn(`tablet ${this.#uid}: purge not woken: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.#ownChangesSeen();
    }
  }

  #execute(target: Target, queries: BoundQuery[]): Envelope<QueryResult[]> {
    return envelope(() => {
      const readsOnly = checkTarget(this.#config, this.#uid, target, queries);
      queries.forEach((q, i) => {
        try {
          checkShardSql(q.sql, q.params.length);
        } catch (e) {
          const vt = toVtError(e);
          if (queries.length > 1) vt["statementIndex"] = i;
          throw vt;
        }
      });
      checkDenyWrites(this.#config, target, queries);
      checkFence(this.#fence, this.#config, target, queries);
      this.#served += queries.length;
      const writes = queries.some((q) => q.kind !== "read");
      const denied = writes ? (this.#config?.deniedTables ?? []) : [];
      const from = denied.length > 0 ? lastSeq(this.#sql) : 0;
      let ok = false;
      try {
        const out = this.ctx.storage.transactionSync(() => {
          const results = queries.map((q, i) => {
            try {
              const { result, totalChanges } = runQuery(this.#sql, q);
              if (totalChanges !== undefined) this.#seenTc = totalChanges;
              return result;
            } catch (e) {
              const vt = toVtError(e);
              if (queries.length > 1) vt["statementIndex"] = i;
              throw vt;
            }
          });
          if (readsOnly && this.#totalChanges() !== this.#tc) {
            // Thrown inside the transaction: whatever the batch changed rolls back.
            throw new VtError("NOT_SERVING", `${target.keyspace}/${target.shard}: this tablet serves reads only; the batch changed rows`, {
              servingVersion: this.#config?.version ?? 0,
              shard: target.shard,
            });
          }
          // Any change to a user table fired a binlog trigger, and only then did total_changes() move.
          if (writes && this.#seenTc > this.#tc) {
            if (denied.length > 0) checkDeniedTables(this.#sql, this.#config, target, denied, from);
            appendCommit(this.#sql);
            this.#seenTc += 1;
          }
          return results;
        });
        ok = true;
        if (writes) this.#commitWaiters.wake();
        return out;
      } finally {
        // After a rollback total_changes() still counts the undone changes: read it again.
        this.#tc = ok ? this.#seenTc : this.#totalChanges();
        this.#seenTc = this.#tc;
      }
    });
  }

  /**
   * Brings the tablet to `config` and applies the schema entries it has not applied yet, in
   * order, each with its binlog event in its own transaction. An entry that fails is reported
   * and nothing of it stays. `keep` is the token of the keyspace's unresolved change as the
   * Topology knows it (null: none); a fence it does not name, or whose entry is now applied, is
   * dropped.
   */
  async sync(config: TabletConfig, ddl: DdlEntry[], keep: string | null = null): Promise<Envelope<TabletStatus>> {
    const out = this.#schemaWork(() => {
      this.#adopt(config, ddl);
      if (this.#fence !== null && !fenceHolds(this.#fence, keep, this.#schemaIndex)) this.#setFence(null);
      return this.#status();
    });
    if (out.ok) {
      // A tablet with a config purges its binlog from its alarm (retention-alarm.ts).
      const at = armPurge(this.#sql, Date.now());
      this.#purgeIdle = false;
      this.#ownChangesSeen();
      await this.#alarmBy(at);
    }
    return out;
  }

  /**
   * Phase one of a change: catches up on `ddl`, tries `entry` (when given) in a transaction that
   * is rolled back, and only if it succeeds holds the write fence `token` until a later sync
   * releases it. Answers the tables as they would be after the entry and the tables holding rows.
   */
  prepareChange(config: TabletConfig, ddl: DdlEntry[], token: string, entry: DdlEntry | null): Envelope<PreparedChange> {
    return this.#schemaWork(() => {
      this.#adopt(config, ddl);
      if (entry !== null && entry.index !== this.#schemaIndex + 1) {
        throw new VtError("INTERNAL", `schema entry ${entry.index} prepared at schema index ${this.#schemaIndex}`);
      }
      const tables = entry === null ? tableInfos(this.#sql) : tryEntry(this.ctx.storage, entry);
      this.#setFence({ token, index: entry?.index ?? null });
      return { status: this.#status(), tables, nonEmpty: nonEmptyTables(this.#sql) };
    });
  }

  #schemaWork<T>(fn: () => T): Envelope<T> {
    try {
      return envelope(fn);
    } finally {
      this.#ownChangesSeen();
    }
  }

  #adopt(config: TabletConfig, ddl: readonly DdlEntry[]): void {
    if (this.#config !== null && (this.#config.keyspace !== config.keyspace || this.#config.shard !== config.shard)) {
      throw new VtError("INVALID_ARGUMENT", `tablet ${this.#uid} already belongs to ${this.#config.keyspace}/${this.#config.shard}`);
    }
    this.#schemaIndex = catchUp(this.ctx.storage, ddl, this.#schemaIndex, (index) => {
      this.#setMeta("schema_index", String(index));
      this.#schemaIndex = index;
    });
    if (JSON.stringify(config) !== JSON.stringify(this.#config)) {
      this.ctx.storage.transactionSync(() => {
        // Before the tables come back, or arrive (their deny lifted in this same config), the marker saying so.
        for (const r of config.rejoins ?? []) appendJournal(this.#sql, r.id, JSON.stringify(rejoinMarker(config, r)));
        for (const a of config.arrivals ?? []) appendJournal(this.#sql, a.id, JSON.stringify(arrivalMarker(config, a)));
        this.#setMeta("config", JSON.stringify(config));
      });
      this.#config = config;
    }
  }

  /**
   * Retires the tablet (a workflow moved its shard to other tablets, or cancelled it): every
   * table, its binlog, config and streams, and its alarm are deleted, so it holds nothing and
   * serves nothing. It answers with a fresh uid: positions in its old binlog no longer apply.
   */
  async retire(): Promise<Envelope<TabletStatus>> {
    const out = this.#schemaWork(() => {
      const uid = randomUid();
      this.ctx.storage.transactionSync(() => {
        dropEverything(this.#sql);
        this.#sql.exec(TABLET_SCHEMA);
        this.#sql.exec(STREAM_SCHEMA);
        upgradeStreamSchema(this.#sql);
        this.#sql.exec("INSERT INTO _vt_meta (k, v) VALUES ('uid', ?)", uid);
        upgradeTriggers(this.#sql, undefined);
      });
      this.#uid = uid;
      this.#config = null;
      this.#schemaIndex = 0;
      this.#fence = null;
      this.#rows.reset();
      this.#figures.reset();
      return this.#status();
    });
    await this.ctx.storage.deleteAlarm();
    return out;
  }

  readBinlog(from: string | null, limit = 1000): Envelope<BinlogChunk> {
    return envelope(() => {
      const fromSeq = from === null ? 0 : parsePosition(this.#uid, from);
      const n = Math.max(1, Math.min(MAX_BINLOG_CHUNK, Math.floor(limit)));
      checkRetained(this.#sql, this.#uid, fromSeq, "readBinlog");
      return readBinlog(this.#sql, this.#uid, fromSeq, n);
    });
  }

  /**
   * One bounded binlog purge under `policy` (tablet/binlog-retention.ts), as one transaction;
   * `now` (unix ms, default the clock) is where the time window is measured from.
   */
  purgeBinlog(policy: unknown, now?: number): Envelope<PurgeResult> {
    return envelope(() => {
      const r = binlogRetentionRpc.purge(this.ctx.storage, this.#sql, policy, now);
      // The row count is kept from the binlog since the last count: recount once it is purged.
      if (r.deleted > 0) {
        this.#rows.reset();
        this.#figures.purged(r);
      }
      this.#ownChangesSeen();
      return r;
    });
  }

  /** The binlog's size, floor, holds and readers cut off. */
  binlogRetention(): Envelope<BinlogRetentionStatus> {
    return envelope(() => binlogRetentionRpc.status(this.#sql));
  }

  /** Records the hold `id` at `seq` (a stream about to read from there; see TabletRpc). */
  holdBinlog(id: string, seq: number): Envelope<{ readonly seq: number }> {
    try {
      return envelope(() => binlogRetentionRpc.hold(this.#sql, this.#uid, id, seq, Date.now()));
    } finally {
      this.#ownChangesSeen();
    }
  }

  /** Forgets the hold (and cut-off record) of reader `id`: its reads no longer keep the binlog. */
  releaseHold(id: string): Envelope<{ readonly released: boolean }> {
    return envelope(() => {
      const r = binlogRetentionRpc.release(this.#sql, id);
      this.#ownChangesSeen();
      return r;
    });
  }

  status(): Envelope<TabletStatus> {
    return envelope(() => this.#status());
  }

  /** The next unit of a stream of this tablet's rows (tablet/streamer.ts); served whatever the tablet's serving state. */
  streamUnit(filter: StreamFilter, from: StreamPos, limits?: StreamLimits): Envelope<StreamUnit> {
    try {
      return envelope(() => streamUnit(this.#sql, this.#uid, filter, from, limits));
    } finally {
      this.#ownChangesSeen();
    }
  }

  /**
   * After changes that are not a user batch's (a stream's applied units, a reader's hold, a schema
   * change): total_changes() moved, and execute must not take that for its batch's changes.
   */
  #ownChangesSeen(): void {
    this.#tc = this.#totalChanges();
    this.#seenTc = this.#tc;
  }

  /**
   * Records a stream. A new one first takes its hold on the source at its start position
   * (streamHoldId), so no purge there passes where it starts before its first read; a source that
   * purged past it already refuses (INVALID_ARGUMENT, too old) and nothing is recorded.
   */
  async startStream(spec: StreamSpec): Promise<Envelope<StreamState>> {
    const held = this.#streams.record(spec.id) === undefined ? await envelopeAsync(() => this.#holdOnSource(spec)) : null;
    if (held !== null && !held.ok) return held;
    const out = envelope(() => this.#streams.start({ ...spec, start: copierFor(this.ctx.storage).begin(spec) }));
    if (out.ok) {
      await this.#wakePump();
      // The copy starts now rather than when the alarm comes (the alarm's round waits for this one).
      this.ctx.waitUntil(this.#pumpRound());
    }
    return out;
  }

  streams(): Envelope<StreamState[]> {
    return envelope(() => this.#streams.list());
  }

  async #holdOnSource(spec: StreamSpec): Promise<void> {
    if (typeof spec?.sourceTablet !== "string" || typeof spec.start?.seq !== "number")
      throw new VtError("INVALID_ARGUMENT", "startStream: a spec needs sourceTablet and start");
    const source: TabletRpc = this.env.TABLET.get(this.env.TABLET.idFromName(spec.sourceTablet));
    unwrap(await source.holdBinlog(streamHoldId(spec), spec.start.seq));
  }

  /** Stops, resumes or forgets a stream; forgetting it first releases its hold on its source (so a retry releases it again). */
  async controlStream(id: string, action: "stop" | "resume" | "delete"): Promise<Envelope<StreamState | null>> {
    const out = await envelopeAsync(async () => {
      if (action === "stop") return this.#streams.stop(id, "stopped by request");
      if (action === "resume") return this.#streams.resume(id);
      const rec = this.#streams.record(id);
      if (rec) unwrap(await this.env.TABLET.get(this.env.TABLET.idFromName(rec.spec.sourceTablet)).releaseHold(streamHoldId(rec.spec)));
      this.#streams.delete(id);
      return null;
    });
    if (out.ok && action === "resume") await this.#wakePump();
    return out;
  }

  applyStreamParts(parts: StreamPart[]): Envelope<StreamPartOutcome[]> {
    return this.#schemaWork(() => this.#streams.accept(parts));
  }

  async drainStream(id: string, untilSeq: number, then?: "stop"): Promise<Envelope<StreamState>> {
    try {
      return await envelopeAsync(() =>
        drainStream(this.#streams, id, untilSeq, (name) => this.env.TABLET.get(this.env.TABLET.idFromName(name)), then === "stop"),
      );
    } finally {
      this.#ownChangesSeen();
    }
  }

  async vdiffStream(id: string, cursor: CopyCursor, maxRows: number): Promise<Envelope<VDiffChunk>> {
    try {
      return await envelopeAsync(() =>
        vdiffChunk(this.#streams, this.ctx.storage, id, cursor, (name) => this.env.TABLET.get(this.env.TABLET.idFromName(name)), maxRows),
      );
    } finally {
      this.#ownChangesSeen();
    }
  }

  journalSeq(id: string): Envelope<{ readonly seq: number | null }> {
    return envelope(() => {
      if (typeof id !== "string" || id === "") throw new VtError("INVALID_ARGUMENT", "journalSeq: name the journal's id");
      return { seq: journalSeqOf(this.#sql, id) };
    });
  }

  /** A switch's journal at the end of this tablet's binlog (binlog.ts appendJournal), once per id. */
  appendJournal(id: string, journal: ShardJournal): Envelope<{ readonly seq: number }> {
    try {
      const out = envelope(() => {
        if (typeof id !== "string" || id === "") throw new VtError("INVALID_ARGUMENT", "appendJournal: the journal needs an id");
        return { seq: this.ctx.storage.transactionSync(() => appendJournal(this.#sql, id, JSON.stringify(journal))) };
      });
      if (out.ok) this.#commitWaiters.wake();
      return out;
    } finally {
      this.#ownChangesSeen();
    }
  }

  /**
   * One VStream read (tablet/vstreamer.ts). With nothing to hand out it waits for a commit (a
   * write through execute wakes it at once; any other binlog change is seen within POLL_MS) for
   * up to `waitMs`, then answers where it stands.
   */
  async vstreamRead(req: ShardReadRequest): Promise<Envelope<ShardRead>> {
    return envelopeAsync(async () => {
      const until = Date.now() + Math.min(Math.max(0, Number(req.waitMs) || 0), VSTREAM_MAX_WAIT_MS);
      for (;;) {
        let r: ShardRead | null;
        try {
          r = vstreamRead(this.#sql, this.#uid, req);
        } finally {
          this.#ownChangesSeen();
        }
        if (r) return r;
        const left = until - Date.now();
        if (left <= 0) return { uid: this.#uid, transactions: [], seq: req.seq };
        await this.#commitWaiters.next(Math.min(left, VSTREAM_POLL_MS));
      }
    });
  }

  /** Runs the pump soon (the alarm is the pump's only driver, so it survives any restart). */
  async #wakePump(): Promise<void> {
    await this.#alarmBy(Date.now(), 10);
  }

  /** Arms the one alarm for `at` unless it is armed already for then or earlier (within `slack` ms). */
  async #alarmBy(at: number, slack = 0): Promise<void> {
    const armed = await this.ctx.storage.getAlarm();
    if (armed === null || armed > at + slack) await this.ctx.storage.setAlarm(at);
  }

  /** One round of the pump; answers ms until the next one (null: no stream moves). */
  async #pumpRound(): Promise<number | null> {
    try {
      return await this.#pump.run();
    } catch (e) {
      console.warn(`tablet ${this.#uid}: stream pump failed: ${e instanceof Error ? e.message : String(e)}`);
      return 1_000;
    } finally {
      // Rows written by applied units moved total_changes(); user writes must not take it for theirs.
      this.#ownChangesSeen();
    }
  }

  /**
   * The tablet's one alarm: a round of the stream pump, then a binlog purge when one is due; armed
   * again for the earlier of the two. A retire (or the last stream's stop) during the round leaves
   * nothing to pump, and a tablet without config nothing to purge: the alarm then stays off.
   */
  override async alarm(): Promise<void> {
    const next = await this.#pumpRound();
    const pumpAt = next !== null && this.#streams.active().length > 0 ? Date.now() + next : null;
    const purge = alarmPurge(this.ctx.storage, this.#config, Date.now());
    if (purge.idle !== undefined) this.#purgeIdle = purge.idle;
    if (purge.purged && purge.purged.deleted > 0) {
      this.#rows.reset();
      this.#figures.purged(purge.purged);
    }
    // The purge (and its due time) moved total_changes(); user writes must not take it for theirs.
    this.#ownChangesSeen();
    const at = pumpAt === null ? purge.next : purge.next === null ? pumpAt : Math.min(pumpAt, purge.next);
    if (at !== null) await this.ctx.storage.setAlarm(at);
  }

  #status(): TabletStatus {
    const tables = tableInfos(this.#sql);
    return {
      uid: this.#uid,
      config: this.#config,
      position: formatPosition(this.#uid, lastSeq(this.#sql)),
      rowCount: this.#rows.read(this.#sql, this.#streams.unitsApplied),
      bytes: this.#sql.databaseSize,
      schemaIndex: this.#schemaIndex,
      fence: this.#fence?.token ?? null,
      served: this.#served,
      tables,
      retention: this.#figures.read(this.#sql),
    };
  }
}
