// The gate's one retry loop. A request meets a Durable Object that cannot answer it now (a tablet
// on a newer serving graph than the one planned with, a Topology that restarted) and tries again,
// at most RETRIES times, only where the attempt that failed applied nothing. A refusal a cutover
// causes (buffer.ts) is instead held and retried for up to the buffer window, so that every
// caller sees a pause, not an error, while a SwitchTraffic flips the serving graph.

import type { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import { type Buffering, meetsCutover } from "./buffer.ts";

export const RETRIES = 3;
/**
 * A request held while its shard refuses writes at the plan's own graph version retries without
 * asking the Topology for the graph (there is no newer one yet), except every GRAPH_EVERY-th try:
 * a flip that did not reach the refusing tablet is then found all the same.
 */
export const GRAPH_EVERY = 4;

/** An attempt's failure that may be retried: it applied nothing. */
export class Retry {
  readonly error: VtError;
  /** The keyspace the attempt planned with, when a tablet refused it (then a tablet behind it is repaired first). */
  readonly keyspace: KeyspaceGraph | undefined;
  /** A refusal a cutover causes: the request may be held until the new serving graph answers it. */
  readonly cutover: boolean;
  /**
   * The tablet refuses writes while they switch, at the very graph version the attempt planned
   * with: the flip has not happened as far as it knows, so a graph fetched now is the same one.
   */
  readonly sameGraph: boolean;
  /**
   * The tablet refuses writes while they switch (a Reshard's shards, or a MoveTables' tables) at
   * the graph version the attempt planned with: the flip, when it comes, bumps that keyspace's
   * version, so the request may wait on the Topology for it.
   */
  readonly awaitsFlip: boolean;

  constructor(error: VtError, keyspace?: KeyspaceGraph) {
    this.error = error;
    this.keyspace = keyspace;
    this.cutover = meetsCutover(error);
    this.awaitsFlip = error["switching"] === true && keyspace !== undefined && error["servingVersion"] === keyspace.version;
    // A table moved by MoveTables (`table`) is refused until new routing rules, not a new version.
    this.sameGraph = this.awaitsFlip && error["table"] === undefined;
  }
}

/**
 * Runs `attempt(0, false)`, `attempt(1, refresh)`, … until one answers a value; an attempt throws a
 * failure that must not be retried and answers a `Retry` for one that may be. `refresh` says the
 * attempt should plan on a graph fetched afresh: on every retry, but for a held request whose
 * refusal said the graph is the same (Retry.sameGraph) only every GRAPH_EVERY-th. `between(retry, n, held)` runs
 * before attempt n + 1 (repair, back off; `held` is false, or, when the request is in the cutover
 * buffer, the ms its window has left, always more than 0).
 * After RETRIES ordinary retries the last failure is thrown. With `buffering`, a cutover refusal
 * takes a place in the isolate's buffer and is retried until the window since it first met one
 * runs out; when the buffer is full, a write switching shards fails at once and a stale graph
 * gets the ordinary retries.
 */
export async function retryLoop<T>(
  attempt: (n: number, refresh: boolean) => Promise<T | Retry>,
  between: (retry: Retry, n: number, held: number | false) => Promise<void>,
  buffering?: Buffering,
): Promise<T> {
  let retries = 0;
  /** When this request entered the buffer, or undefined while it is not held. */
  let heldSince: number | undefined;
  let last: Retry | undefined;
  try {
    for (let n = 0; ; n++) {
      const refresh = last !== undefined && (!last.sameGraph || heldSince === undefined || n % GRAPH_EVERY === 0);
      const out = await attempt(n, refresh);
      if (!(out instanceof Retry)) return out;
      last = out;
      let held: number | false = false;
      if (buffering && out.cutover) {
        if (heldSince === undefined) {
          if (buffering.buffer.enter(buffering.size)) heldSince = buffering.now();
          else if (out.error["switching"] === true) throw out.error;
        }
        if (heldSince !== undefined) {
          const left = buffering.windowMs - (buffering.now() - heldSince);
          if (left <= 0) throw out.error;
          held = left;
        }
      }
      if (!held && retries++ >= RETRIES) throw out.error;
      await between(out, n, held);
    }
  } finally {
    if (heldSince !== undefined) buffering?.buffer.leave();
  }
}
