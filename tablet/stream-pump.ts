// What keeps a target's streams moving: the tablet's alarm. A stream in its copy phase pulls its
// units straight from the source tablet over RPC (as Vitess's vcopier streams from the source):
// each unit is applied in one transaction with its end position, and the next one is read while
// the current one is applied (stream-copy.ts). A running stream (catch-up, then following) reads
// the next unit, cuts it into parts and sends them to the vreplication queue, whose consumer hands
// them back to this tablet (stream-target.ts applies them in order). The pump reads ahead of what
// is applied, up to a bound; when parts stop being applied (a lost message, a restart of this
// object) it starts a new chain from the last applied unit, which outdates every part still
// travelling. Nothing here needs a person: the alarm is durable, and a restart simply starts new
// chains (a copy starts one too, so no part of a chain from before it can apply).

import { unwrap } from "../contract/envelope.ts";
import type { StreamPart, StreamPos, StreamUnit } from "../contract/stream-rpc.ts";
import type { TabletRpc } from "../contract/tablet-rpc.ts";
import { unitParts } from "./stream-codec.ts";
import { copyDirect } from "./stream-copy.ts";
import { isRetentionRefusal, streamHoldId } from "./binlog-retention.ts";
import type { StreamRecord, StreamTarget } from "./stream-target.ts";
import { streamFaults, takeRestart } from "./stream-faults.ts";

/** Parts a stream may have sent and not yet applied. */
const MAX_IN_FLIGHT = 16;
/** With parts in flight and none applied for this long, the chain is started again. */
export const STALL_MS = 5_000;
/** How often an idle stream asks its source for news. */
export const IDLE_MS = 50;
/** Bytes of row images per unit the pump asks for. */
export const UNIT_BYTES = 512 * 1024;
/** How long one round of the alarm copies before it lets the alarm run again (the queue's streams wait meanwhile). */
const COPY_SLICE_MS = 2_000;

/** What the pump needs of the world: the tablet namespace and the queue. */
export interface PumpEnv {
  source(tabletName: string): TabletRpc;
  send(part: StreamPart): Promise<void>;
  /** Called after the pump applied a unit itself (a copy's), before it awaits anything else. */
  applied?(): void;
}

interface Chain {
  epoch: number;
  /** The step of the next part to send. */
  next: number;
  /** Where the next unit to read starts (the end of the last unit sent). */
  pos: StreamPos;
  /** The stream's applied step when last seen, and when it last moved. */
  applied: number;
  movedAt: number;
}

function isEmpty(u: StreamUnit): boolean {
  return u.items.length === 0 && u.rows.length === 0 && JSON.stringify(u.from) === JSON.stringify(u.to);
}

export class StreamPump {
  readonly #target: StreamTarget;
  readonly #env: PumpEnv;
  readonly #chains = new Map<string, Chain>();
  /** Parts held back by the reorder failpoint. */
  #held: StreamPart[] = [];
  /** The round under way (or the last one): rounds run one after another, never two at once. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(target: StreamTarget, env: PumpEnv) {
    this.#target = target;
    this.#env = env;
  }

  #restart(id: string, now: number): Chain {
    const c = this.#target.newChain(id);
    const chain = { epoch: c.epoch, next: c.step, pos: c.pos, applied: c.step, movedAt: now };
    this.#chains.set(id, chain);
    return chain;
  }

  /**
   * One round over the active streams, after any round under way; answers ms until the next
   * round, or null when none is active.
   */
  run(): Promise<number | null> {
    const round = this.#tail.then(() => this.#round());
    this.#tail = round.catch(() => undefined);
    return round;
  }

  async #round(): Promise<number | null> {
    if (takeRestart()) this.#chains.clear();
    const streams = this.#target.active();
    for (const id of this.#chains.keys()) if (!streams.some((s) => s.spec.id === id)) this.#chains.delete(id);
    if (streams.length === 0) return null;
    let busy = false;
    const warn = (id: string, e: unknown): void => {
      // The source purged what the stream still needed: retrying cannot help; the stream fails, saying so.
      if (isRetentionRefusal(e)) this.#target.stop(id, (e as Error).message, "error");
      else console.warn(`vreplication ${id}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}; trying again`);
    };
    // Copies run side by side (a merge copies from several sources at once), next to the queue's streams.
    const copies = streams
      .filter((s) => s.phase === "copy" && !this.#target.isHeld(s.spec.id))
      .map(async (s) => {
        // The queue chain restarts from wherever the copy leaves the stream.
        this.#chains.delete(s.spec.id);
        try {
          if (
            await copyDirect(this.#target, s.spec, (name) => this.#env.source(name), {
              sliceMs: COPY_SLICE_MS,
              applied: () => this.#env.applied?.(),
            })
          )
            busy = true;
        } catch (e) {
          warn(s.spec.id, e);
        }
      });
    const queued = (async () => {
      for (const s of streams) {
        if (s.phase === "copy" || this.#target.isHeld(s.spec.id)) continue;
        try {
          if (await this.#pumpOne(s)) busy = true;
        } catch (e) {
          warn(s.spec.id, e);
        }
      }
    })();
    await Promise.all([...copies, queued]);
    return busy ? 0 : IDLE_MS;
  }

  /** Sends the stream's next unit; answers whether it sent anything. */
  async #pumpOne(s: StreamRecord): Promise<boolean> {
    const now = Date.now();
    let c = this.#chains.get(s.spec.id);
    if (!c || c.epoch !== s.epoch) c = this.#restart(s.spec.id, now);
    if (s.step !== c.applied) {
      c.applied = s.step;
      c.movedAt = now;
    }
    if (c.next > s.step && now - c.movedAt > (streamFaults().stallMs ?? STALL_MS)) c = this.#restart(s.spec.id, now);
    if (c.next - s.step >= MAX_IN_FLIGHT) return false;
    const unit = unwrap(
      await this.#env
        .source(s.spec.sourceTablet)
        .streamUnit(s.spec.filter, c.pos, { maxBytes: UNIT_BYTES, hold: { id: streamHoldId(s.spec), seq: s.pos.seq } }),
    );
    if (this.#chains.get(s.spec.id) !== c || this.#target.isHeld(s.spec.id)) return false; // restarted or held meanwhile
    if (isEmpty(unit)) {
      if (c.next === s.step && unit.headSeq <= c.pos.seq) this.#target.caughtUp(s.spec.id);
      return false;
    }
    const parts = unitParts(unit);
    const first = c.next;
    c.next += parts.length;
    c.pos = unit.to;
    for (const p of parts) {
      await this.#send({
        target: s.spec.targetTablet,
        stream: s.spec.id,
        epoch: c.epoch,
        step: first + p.index,
        unit: p.id,
        part: p.index,
        parts: p.count,
        ...(p.index === 0 ? { from: unit.from } : {}),
        bytes: p.bytes,
      });
    }
    return true;
  }

  /** Sends a part to the queue (through the transport failpoints, when a test armed them). */
  async #send(part: StreamPart): Promise<void> {
    const f = streamFaults();
    if (f.drop) return;
    if (f.reorder && f.reorder > 1) {
      this.#held.push(part);
      if (this.#held.length < f.reorder) return;
      const out = this.#held.reverse();
      this.#held = [];
      for (const p of out) await this.#env.send(p);
      return;
    }
    for (let i = 0; i <= (f.duplicate ?? 0); i++) await this.#env.send(part);
  }
}
