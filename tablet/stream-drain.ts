// The last stretch of a stream, read straight from the source (not through the queue): at a
// switch the sources refuse writes, and each target applies the sources' final binlog tail at
// once, so the switch waits milliseconds, not a queue's delivery. Starting a new chain first
// outdates whatever parts are still travelling in the queue. A switch also stops the stream in
// the same step, saving the round trip of a separate stop inside its write pause.

import { unwrap } from "../contract/envelope.ts";
import { VtError } from "../contract/errors.ts";
import type { StreamState } from "../contract/stream-rpc.ts";
import type { TabletRpc } from "../contract/tablet-rpc.ts";
import type { StreamTarget } from "./stream-target.ts";

/** Units a drain reads at most (a tail that long means writes were not stopped at the source). */
const MAX_UNITS = 10_000;

/** Drains stream `id` to `untilSeq`; with `stop`, stops it in the same held step (a switch stops what it drained). */
export function drainStream(streams: StreamTarget, id: string, untilSeq: number, source: (name: string) => TabletRpc, stop = false): Promise<StreamState> {
  return streams.holding(id, async () => {
    const drained = await drain(streams, id, untilSeq, source);
    return stop ? streams.stop(id, "stopped by request") : drained;
  });
}

async function drain(streams: StreamTarget, id: string, untilSeq: number, source: (name: string) => TabletRpc): Promise<StreamState> {
  const start = streams.state(id);
  if (start.phase !== "running") {
    throw new VtError(
      "INVALID_ARGUMENT",
      `stream ${id} is ${start.phase === "copy" ? "still copying" : start.phase}; it can be drained only once it runs (copy done)`,
      {
        phase: start.phase,
      },
    );
  }
  streams.newChain(id);
  const src = source(start.spec.sourceTablet);
  for (let n = 0; n < MAX_UNITS; n++) {
    const s = streams.state(id);
    if (s.phase !== "running") throw new VtError("INTERNAL", `stream ${id} stopped while draining: ${s.message ?? s.phase}`);
    if (s.pos.seq >= untilSeq) {
      streams.caughtUp(id);
      return streams.state(id);
    }
    const unit = unwrap(await src.streamUnit(s.spec.filter, s.pos, { maxBytes: 4 * 1024 * 1024 }));
    if (unit.to.seq <= s.pos.seq) throw new VtError("INTERNAL", `stream ${id}: the source's binlog ends at ${unit.headSeq}, before ${untilSeq}`);
    if (!streams.applyUnit(id, unit, 0)) throw new VtError("INTERNAL", `stream ${id} moved while draining`);
  }
  throw new VtError("INTERNAL", `stream ${id}: the tail to ${untilSeq} is longer than ${MAX_UNITS} units`);
}
