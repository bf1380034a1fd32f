// The streams a tablet is the target of: their state (`_vt_vreplication`), and the one door
// through which units reach the tablet's rows. A unit arrives as numbered parts (from the queue,
// or straight from the source during a drain); a part is taken only when it is the next one of the
// stream's current chain, and a unit is applied, in one transaction with its end position, only
// when its start is exactly where the stream stands. So a part delivered twice, late, early or
// from an abandoned chain is never applied twice or out of order.

import { VtError } from "../contract/errors.ts";
import type { RowChange, StreamPart, StreamPartOutcome, StreamPhase, StreamPos, StreamSpec, StreamState, StreamUnit } from "../contract/stream-rpc.ts";
import { muteBinlog } from "./binlog.ts";
import { UnitApplier } from "./stream-apply.ts";
import { joinParts } from "./stream-codec.ts";

type Row = {
  id: string;
  spec: string;
  phase: string;
  pos: string;
  epoch: number;
  step: number;
  base_step: number;
  unit: string | null;
  rows_copied: number;
  lag_ms: number;
  message: string | null;
  updated_at: number;
  copied_at: number | null;
};

/** A stream's record with its JSON fields read. */
export interface StreamRecord {
  readonly spec: StreamSpec;
  readonly phase: StreamPhase;
  readonly pos: StreamPos;
  readonly epoch: number;
  readonly step: number;
  readonly baseStep: number;
}

function samePos(a: StreamPos, b: StreamPos): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function toState(r: Row): StreamState {
  return {
    spec: JSON.parse(r.spec) as StreamSpec,
    phase: r.phase as StreamPhase,
    pos: JSON.parse(r.pos) as StreamPos,
    rowsCopied: r.rows_copied,
    lagMs: r.lag_ms,
    message: r.message,
    updatedAt: r.updated_at,
    copiedAt: r.copied_at,
  };
}

export class StreamTarget {
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  /** Streams a drain or a VDiff is working on: the pump and the queue leave them alone meanwhile. */
  readonly #held = new Set<string>();
  #applied = 0;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
    this.#sql = storage.sql;
  }

  #row(id: string): Row | undefined {
    return this.#sql.exec<Row>("SELECT * FROM _vt_vreplication WHERE id = ?", id).toArray()[0];
  }

  record(id: string): StreamRecord | undefined {
    const r = this.#row(id);
    if (!r) return undefined;
    return {
      spec: JSON.parse(r.spec) as StreamSpec,
      phase: r.phase as StreamPhase,
      pos: JSON.parse(r.pos) as StreamPos,
      epoch: r.epoch,
      step: r.step,
      baseStep: r.base_step,
    };
  }

  /**
   * Runs `fn` with the stream held: parts from the queue answer "early" and the pump skips it, so
   * only `fn` moves it. Two holders of one stream are refused.
   */
  async holding<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (this.#held.has(id)) throw new VtError("NOT_SERVING", `stream ${id} is being drained or compared; retry`);
    this.#held.add(id);
    try {
      return await fn();
    } finally {
      this.#held.delete(id);
    }
  }

  isHeld(id: string): boolean {
    return this.#held.has(id);
  }

  /** Streams that move (copy or running): what the pump drives. */
  active(): StreamRecord[] {
    return this.#sql
      .exec<{ id: string }>("SELECT id FROM _vt_vreplication WHERE phase IN ('copy', 'running') ORDER BY id")
      .toArray()
      .flatMap((r) => {
        const rec = this.record(r.id);
        return rec ? [rec] : [];
      });
  }

  list(): StreamState[] {
    return this.#sql.exec<Row>("SELECT * FROM _vt_vreplication ORDER BY id").toArray().map(toState);
  }

  state(id: string): StreamState {
    const r = this.#row(id);
    if (!r) throw new VtError("INVALID_ARGUMENT", `no stream ${id} on this tablet`);
    return toState(r);
  }

  /** Records a stream (idempotent: the same spec again answers its state; another spec under its id is refused). */
  start(spec: StreamSpec): StreamState {
    const r = this.#row(spec.id);
    if (r) {
      if (r.spec !== JSON.stringify(spec)) throw new VtError("INVALID_ARGUMENT", `stream ${spec.id} already exists with another definition`);
      return toState(r);
    }
    const phase: StreamPhase = spec.start.copy === null ? "running" : "copy";
    this.#sql.exec(
      "INSERT INTO _vt_vreplication (id, spec, phase, pos, epoch, step, base_step, unit, rows_copied, lag_ms, message, updated_at) VALUES (?, ?, ?, ?, 0, 0, 0, NULL, 0, 0, NULL, ?)",
      spec.id,
      JSON.stringify(spec),
      phase,
      JSON.stringify(spec.start),
      Date.now(),
    );
    return this.state(spec.id);
  }

  /** Stops a stream where it stands (it keeps its rows and position); `message` says why. */
  stop(id: string, message: string, phase: StreamPhase = "stopped"): StreamState {
    this.state(id);
    this.#sql.exec("UPDATE _vt_vreplication SET phase = ?, message = ?, updated_at = ? WHERE id = ?", phase, message, Date.now(), id);
    this.#sql.exec("DELETE FROM _vt_vrepl_parts WHERE stream = ?", id);
    return this.state(id);
  }

  /**
   * Lets a stopped stream move again from where it stands, on a new chain: the pump's chain from
   * before the stop read ahead of the stream's position and would otherwise stall first.
   */
  resume(id: string): StreamState {
    const s = this.state(id);
    if (s.phase === "stopped" || s.phase === "error") {
      this.newChain(id);
      this.#sql.exec(
        "UPDATE _vt_vreplication SET phase = ?, message = NULL, updated_at = ? WHERE id = ?",
        s.pos.copy === null ? "running" : "copy",
        Date.now(),
        id,
      );
    }
    return this.state(id);
  }

  /** Forgets a stream (its rows stay). */
  delete(id: string): void {
    this.#sql.exec("DELETE FROM _vt_vreplication WHERE id = ?", id);
    this.#sql.exec("DELETE FROM _vt_vrepl_parts WHERE stream = ?", id);
  }

  /**
   * A new chain of parts for the stream, starting again at its last unit boundary: parts of the
   * chains before are dropped from then on. Answers the chain's epoch and first step.
   */
  newChain(id: string): { epoch: number; step: number; pos: StreamPos } {
    const r = this.#row(id);
    if (!r) throw new VtError("INVALID_ARGUMENT", `no stream ${id} on this tablet`);
    const epoch = r.epoch + 1;
    this.#sql.exec("UPDATE _vt_vreplication SET epoch = ?, step = base_step, unit = NULL WHERE id = ?", epoch, id);
    this.#sql.exec("DELETE FROM _vt_vrepl_parts WHERE stream = ?", id);
    return { epoch, step: r.base_step, pos: JSON.parse(r.pos) as StreamPos };
  }

  /** Takes parts in order; each answers what became of it (see StreamPartOutcome). */
  accept(parts: readonly StreamPart[]): StreamPartOutcome[] {
    return parts.map((p) => this.#acceptOne(p));
  }

  #acceptOne(p: StreamPart): StreamPartOutcome {
    const r = this.#row(p.stream);
    if (!r) return "gone";
    if (this.#held.has(p.stream)) return "early";
    if (r.phase !== "copy" && r.phase !== "running") return p.epoch < r.epoch || p.step < r.step ? "duplicate" : "early";
    if (p.epoch < r.epoch || (p.epoch === r.epoch && p.step < r.step)) return "duplicate";
    if (p.epoch > r.epoch || p.step > r.step) return "early";
    // The next part of the current chain.
    if (p.part === 0) {
      if (!p.from || !samePos(p.from, JSON.parse(r.pos) as StreamPos)) return "duplicate";
    } else if (r.unit !== p.unit) return "duplicate";
    if (p.part < p.parts - 1) {
      this.#storage.transactionSync(() => {
        if (p.part === 0) this.#sql.exec("DELETE FROM _vt_vrepl_parts WHERE stream = ?", p.stream);
        this.#sql.exec("INSERT OR REPLACE INTO _vt_vrepl_parts (stream, part, bytes) VALUES (?, ?, ?)", p.stream, p.part, p.bytes);
        this.#sql.exec("UPDATE _vt_vreplication SET step = step + 1, unit = ? WHERE id = ?", p.unit, p.stream);
      });
      return "applied";
    }
    const stored =
      p.part === 0
        ? []
        : this.#sql.exec<{ part: number; bytes: ArrayBuffer }>("SELECT part, bytes FROM _vt_vrepl_parts WHERE stream = ? ORDER BY part", p.stream).toArray();
    const chunks = [
      ...stored.map((x) => ({ id: p.unit, index: x.part, count: p.parts, bytes: new Uint8Array(x.bytes) })),
      { id: p.unit, index: p.part, count: p.parts, bytes: p.bytes },
    ];
    if (chunks.length !== p.parts) return "duplicate";
    const unit = joinParts(chunks);
    this.applyUnit(p.stream, unit, 1);
    return "applied";
  }

  /**
   * Applies a whole unit when it starts where the stream stands, in one transaction with the new
   * position; `steps` is how many parts it took. Answers false (and changes nothing) otherwise.
   */
  applyUnit(id: string, unit: StreamUnit, steps: number): boolean {
    const r = this.#row(id);
    if (!r) return false;
    const pos = JSON.parse(r.pos) as StreamPos;
    if (!samePos(pos, unit.from)) return false;
    const spec = JSON.parse(r.spec) as StreamSpec;
    const ddl = unit.items.find((i) => "ddl" in i);
    if (ddl && "ddl" in ddl && spec.onDdl === "stop") {
      // As Vitess's on_ddl STOP: the position moves past the DDL (a unit holding one holds nothing
      // else) and the stream stops, so `workflow start` goes on after it once the user has seen to it.
      this.#storage.transactionSync(() => {
        this.#sql.exec("UPDATE _vt_vreplication SET pos = ? WHERE id = ?", JSON.stringify(unit.to), id);
        this.stop(id, `the source applied a DDL and the stream's on_ddl is "stop": ${ddl.ddl.slice(0, 200)}; start the workflow again to go on after it`);
      });
      return false;
    }
    const order = new Map(spec.filter.tables.map((t, i) => [t.table, i]));
    // Binlog changes of a table whose copy has not begun are carried by its copy, later.
    const begun = (table: string): boolean => pos.copy === null || (order.get(table) ?? Number.POSITIVE_INFINITY) <= pos.copy.table;
    const now = Date.now();
    try {
      this.#storage.transactionSync(() => {
        this.#sql.exec("PRAGMA defer_foreign_keys = ON");
        // The source's transactions are in the source's binlog: logging them here again would hand
        // them to this tablet's readers as changes of its own, glued to its next commit.
        muteBinlog(this.#sql, () => {
          const applier = new UnitApplier(this.#sql);
          applier.applyAll(unit.items.filter((item): item is RowChange => !("ddl" in item) && begun(item.table)));
          applier.applyAll(unit.rows);
        });
        this.#applied += 1;
        const lag = unit.lastCommitTs === null ? (unit.to.seq >= unit.headSeq ? 0 : r.lag_ms) : Math.max(0, now - unit.lastCommitTs);
        this.#sql.exec(
          "UPDATE _vt_vreplication SET pos = ?, phase = ?, step = step + ?, base_step = step + ?, unit = NULL, rows_copied = rows_copied + ?, lag_ms = ?, message = NULL, updated_at = ?, copied_at = ? WHERE id = ?",
          JSON.stringify(unit.to),
          unit.to.copy === null ? "running" : "copy",
          steps,
          steps,
          unit.rows.length,
          lag,
          now,
          pos.copy !== null && unit.to.copy === null ? now : r.copied_at,
          id,
        );
        this.#sql.exec("DELETE FROM _vt_vrepl_parts WHERE stream = ?", id);
      });
    } catch (e) {
      // The unit cannot be applied (the target's schema lacks a column, …): the stream stops with
      // the reason where it stands, and resumes once the cause is fixed.
      this.stop(id, `applying a unit failed: ${e instanceof Error ? e.message : String(e)}`, "error");
      throw e;
    }
    return true;
  }

  /**
   * Units applied by this instance. Their rows are not in the binlog, so whoever counts rows from
   * the binlog counts again when this moved.
   */
  get unitsApplied(): number {
    return this.#applied;
  }

  /** Records the lag as zero when the stream stands at the source's head. */
  caughtUp(id: string): void {
    this.#sql.exec("UPDATE _vt_vreplication SET lag_ms = 0, updated_at = ? WHERE id = ? AND phase = 'running'", Date.now(), id);
  }
}
