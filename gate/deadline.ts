// The gate's deadline: one per gate request (HTTP call, capnweb call). Every tablet and Topology
// call the request makes races the time left; when it runs out the request answers TIMEOUT
// (retryable) instead of waiting for a Durable Object that is busy or gone.
//
// Contract:
// - The deadline bounds the gate's wait, not the callee's work: a tablet that is running a long
//   statement keeps running it (on Cloudflare until the platform's CPU limit, `limits.cpu_ms`,
//   stops and resets it; its transaction then rolls back). So a TIMEOUT on a write says the
//   write may or may not have applied (`applied: "unknown"`), and the executor never retries it.
//   A write call the deadline stops before it is sent (a request held through a cutover whose
//   time ran out between two tries) applied nothing: its TIMEOUT says `applied: false`.
// - A call whose answer arrives before the timer fires returns that answer, even when the
//   request is past its deadline by then: a known outcome beats a TIMEOUT.
// - Locally (wrangler dev, the vitest pool) workerd runs every isolate on one thread and does not
//   enforce CPU limits, so while a tablet is inside one long SQLite step no timer fires anywhere;
//   the deadline then answers as soon as the step ends. It answers in time whenever the callee is
//   waiting (queued behind other work, blocked, unreachable) rather than computing.

import { VtError } from "../contract/errors.ts";

/** Default budget of one gate request, in ms (`QUERY_TIMEOUT_MS`). */
export const DEFAULT_QUERY_TIMEOUT_MS = 5_000;
/** The platform's CPU limit per invocation is at most 5 minutes; a longer wait is pointless. */
export const MAX_QUERY_TIMEOUT_MS = 300_000;

/** The `QUERY_TIMEOUT_MS` setting: a whole number of ms in [1, 300000]; unset or empty → default. */
export function queryTimeoutMs(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return DEFAULT_QUERY_TIMEOUT_MS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_QUERY_TIMEOUT_MS) {
    throw new VtError("INTERNAL", `QUERY_TIMEOUT_MS is "${raw}"; it must be a whole number of milliseconds from 1 to ${MAX_QUERY_TIMEOUT_MS}`);
  }
  return n;
}

/** What a call was doing when the deadline passed, for the TIMEOUT error's fields. */
export interface CallInfo {
  /** e.g. "tablet main/-80", "topology". */
  readonly target: string;
  /** True when the call may have changed data (a write, a DDL, a topology change). */
  readonly writes: boolean;
  readonly shard?: string;
}

export class Deadline {
  readonly budgetMs: number;
  readonly #endsAt: number;
  readonly #now: () => number;

  constructor(budgetMs: number, now: () => number = Date.now) {
    this.budgetMs = budgetMs;
    this.#now = now;
    this.#endsAt = now() + budgetMs;
  }

  remainingMs(): number {
    return Math.max(0, this.#endsAt - this.#now());
  }

  expired(): boolean {
    return this.remainingMs() === 0;
  }

  /** The TIMEOUT of a call that was sent and did not answer in time: a write's outcome is then unknown. */
  timeoutError(info: CallInfo): VtError {
    const outcome = info.writes ? "; it may or may not have been applied: read before retrying it" : "";
    return new VtError("TIMEOUT", `${info.target} did not answer within the request's deadline of ${this.budgetMs} ms${outcome}`, {
      deadlineMs: this.budgetMs,
      ...(info.shard !== undefined ? { shard: info.shard } : {}),
      ...(info.writes ? { applied: "unknown" } : {}),
    });
  }

  /** The TIMEOUT of a call the deadline stopped before it was sent: a write applied nothing. */
  unsentError(info: CallInfo): VtError {
    const outcome = info.writes ? "; it was not sent, so nothing of it was applied" : "";
    return new VtError("TIMEOUT", `the request's deadline of ${this.budgetMs} ms ran out before ${info.target} was called${outcome}`, {
      deadlineMs: this.budgetMs,
      ...(info.shard !== undefined ? { shard: info.shard } : {}),
      ...(info.writes ? { applied: false } : {}),
    });
  }

  /**
   * `start()`'s promise, or TIMEOUT when the time left runs out first. A call is not started
   * once the deadline has passed. The timer is always cleared, so a settled race leaves nothing
   * behind.
   */
  async race<T>(start: () => Promise<T>, info: CallInfo): Promise<T> {
    const left = this.remainingMs();
    if (left === 0) throw this.unsentError(info);
    const call = start();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expiry = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError(info)), left);
    });
    try {
      return await Promise.race([call, expiry]);
    } finally {
      clearTimeout(timer);
      // The losing call may still reject later; that outcome is no longer anyone's.
      call.catch(() => undefined);
    }
  }

  /** Waits `ms`, or until the deadline when it comes sooner; TIMEOUT when none is left after. */
  async sleep(ms: number, info: CallInfo): Promise<void> {
    const wait = Math.min(ms, this.remainingMs());
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (this.expired()) throw this.timeoutError(info);
  }
}
