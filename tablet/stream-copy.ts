// The copy phase of a stream, pulled straight from its source (not through the queue): the
// target asks the source for the next unit at its own position, applies it in one transaction
// with the unit's end position (stream-target.ts applyUnit), and has the source read the unit
// after it meanwhile. Only the target's stored position says where the next unit starts, so a
// unit read twice, read for a position the stream has left, or read before a restart is refused
// by applyUnit (its start is not where the stream stands) and never applied twice.
//
// A copy starts a new chain first: every queue part of an earlier chain is then outdated. It ends
// when the copy is done (the stream runs, and the queue carries it from there), when its time
// slice is spent (the alarm comes back), or as soon as anyone else moves the stream: a drain or
// VDiff holding it, a stop, a resume or a new chain (its epoch moved).

import { streamHoldId } from "./binlog-retention.ts";
import { unwrap } from "../contract/envelope.ts";
import type { StreamPos, StreamSpec, StreamUnit } from "../contract/stream-rpc.ts";
import type { TabletRpc } from "../contract/tablet-rpc.ts";
import type { StreamTarget } from "./stream-target.ts";

/**
 * Bytes of row images per copy unit. An RPC answer has no queue message's 128 KB bound, so a
 * unit is as large as the pump's (a bigger one buys no fewer statements, only a longer apply).
 */
export const COPY_UNIT_BYTES = 512 * 1024;

type Read = { ok: true; unit: StreamUnit } | { ok: false; error: unknown };

function samePos(a: StreamPos, b: StreamPos): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface CopyOptions {
  /** How long this call copies at most (it ends after the unit applied when the time is up). */
  readonly sliceMs: number;
  /** Bytes per unit (default COPY_UNIT_BYTES). */
  readonly unitBytes?: number;
  /** Called after each unit applied (the tablet keeps its count of its own writes current). */
  readonly applied?: () => void;
}

/**
 * Copies the stream for up to `sliceMs`; answers whether it applied a unit. Throws what reading
 * or applying threw (an apply that fails leaves the stream in "error" with the reason).
 */
export async function copyDirect(target: StreamTarget, spec: StreamSpec, source: (name: string) => TabletRpc, opts: CopyOptions): Promise<boolean> {
  const id = spec.id;
  const chain = target.newChain(id);
  const src = source(spec.sourceTablet);
  // Settled, never rejected: a read left behind when the copy stops early fails no one.
  const read = async (pos: StreamPos): Promise<Read> => {
    try {
      return {
        ok: true,
        unit: unwrap(await src.streamUnit(spec.filter, pos, { maxBytes: opts.unitBytes ?? COPY_UNIT_BYTES, hold: { id: streamHoldId(spec), seq: pos.seq } })),
      };
    } catch (error) {
      return { ok: false, error };
    }
  };
  const end = Date.now() + opts.sliceMs;
  let pos = chain.pos;
  let next = read(pos);
  let applied = false;
  for (;;) {
    const r = await next;
    if (!r.ok) throw r.error;
    const unit = r.unit;
    const now = target.record(id);
    // Someone else moved the stream while the unit was read: it is theirs now.
    if (now?.phase !== "copy" || now.epoch !== chain.epoch || target.isHeld(id) || !samePos(now.pos, pos)) return applied;
    if (samePos(unit.from, unit.to)) return applied;
    const more = unit.to.copy !== null && Date.now() < end;
    if (more) next = read(unit.to);
    if (!target.applyUnit(id, unit, 0)) return applied;
    applied = true;
    opts.applied?.();
    pos = unit.to;
    if (!more) return applied;
  }
}
