// Cutover buffering (Vitess's vtgate buffer): while a SwitchTraffic moves a keyspace's writes to
// new shards, the old shards refuse writes (NOT_SERVING with `switching: true`) and then stop
// serving; a request that meets either is held in the gate's one retry loop (retry.ts) and tried
// again on a fresh serving graph, for up to BUFFER_WINDOW_MS, instead of answering an error. At
// most BUFFER_SIZE requests of an isolate are held at once; beyond that they answer NOT_SERVING at
// once. The request's deadline (deadline.ts) bounds the wait as it bounds everything else.

import { VtError } from "../contract/errors.ts";

export const DEFAULT_BUFFER_WINDOW_MS = 10_000;
export const DEFAULT_BUFFER_SIZE = 1000;
/** No request lives longer than the platform's CPU limit per invocation (5 minutes). */
export const MAX_BUFFER_WINDOW_MS = 300_000;
export const MAX_BUFFER_SIZE = 100_000;
/** The pause before the first retry of a held request; it doubles up to BUFFER_SWITCH_PAUSE_MS. */
const BUFFER_FIRST_PAUSE_MS = 5;
/**
 * A switch refuses writes for milliseconds: the first BUFFER_SWITCH_TRIES retries pause at most
 * this long, so a held request meets the new graph soon after the flip; longer waits back off
 * to BUFFER_MAX_PAUSE_MS.
 */
const BUFFER_SWITCH_PAUSE_MS = 10;
const BUFFER_SWITCH_TRIES = 8;
const BUFFER_MAX_PAUSE_MS = 50;

/** A `[vars]` setting: a whole number in [min, max]; unset or empty → `fallback`. */
function wholeSetting(name: string, raw: string | undefined, fallback: number, min: number, max: number, unit: string): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new VtError("INTERNAL", `${name} is "${raw}"; it must be a whole number of ${unit} from ${min} to ${max}`);
  }
  return n;
}

/** The `BUFFER_WINDOW_MS` setting: how long one request may be held, in ms [1, 300000]. */
export function bufferWindowMs(raw: string | undefined): number {
  return wholeSetting("BUFFER_WINDOW_MS", raw, DEFAULT_BUFFER_WINDOW_MS, 1, MAX_BUFFER_WINDOW_MS, "milliseconds");
}

/** The `BUFFER_SIZE` setting: how many requests of an isolate may be held at once [0, 100000]; 0 turns buffering off. */
export function bufferSize(raw: string | undefined): number {
  return wholeSetting("BUFFER_SIZE", raw, DEFAULT_BUFFER_SIZE, 0, MAX_BUFFER_SIZE, "requests");
}

/**
 * Whether a refusal is one a cutover causes, so waiting for the new serving graph ends it: a
 * tablet refusing writes while they switch, or a tablet saying it does not serve the target or
 * serves a newer graph. A write fence of a schema change (`fenced`) is not a cutover.
 */
export function meetsCutover(error: VtError): boolean {
  if (error.code !== "NOT_SERVING" || error["applied"] === "unknown") return false;
  return error["switching"] === true || (typeof error["servingVersion"] === "number" && error["fenced"] !== true);
}

/** The pause before retry `n` (0-based) of a held request: milliseconds, so a flip costs little. */
export function bufferPauseMs(n: number): number {
  if (n < BUFFER_SWITCH_TRIES) return Math.min(BUFFER_SWITCH_PAUSE_MS, BUFFER_FIRST_PAUSE_MS * 2 ** n);
  return Math.min(BUFFER_MAX_PAUSE_MS, BUFFER_SWITCH_PAUSE_MS * 2 ** Math.min(n - BUFFER_SWITCH_TRIES + 1, 10));
}

/** The requests an isolate holds now. */
export class CutoverBuffer {
  #held = 0;
  #entered = 0;

  /** Requests held now. */
  get held(): number {
    return this.#held;
  }

  /** Requests held since the isolate started. */
  get entered(): number {
    return this.#entered;
  }

  /** Takes a place when fewer than `size` are held; false when the buffer is full. */
  enter(size: number): boolean {
    if (this.#held >= size) return false;
    this.#held++;
    this.#entered++;
    return true;
  }

  leave(): void {
    this.#held = Math.max(0, this.#held - 1);
  }
}

/** Shared by every request of the isolate. */
export const cutoverBuffer = new CutoverBuffer();

/** What a retry loop needs to hold a request through a cutover. */
export interface Buffering {
  readonly windowMs: number;
  readonly size: number;
  readonly buffer: CutoverBuffer;
  /** The clock the window is measured with. */
  now(): number;
}
