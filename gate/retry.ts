// The gate's one retry loop. A request meets a Durable Object that cannot answer it now (a tablet
// on a newer serving graph than the one planned with, a Topology that restarted) and tries again,
// at most RETRIES times, only where the attempt that failed applied nothing. Buffering during a
// cutover belongs here too, so that every caller gets it.

import type { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";

export const RETRIES = 3;

/** An attempt's failure that may be retried: it applied nothing. */
export class Retry {
  readonly error: VtError;
  /** The keyspace the attempt planned with, when a tablet refused it (then a tablet behind it is repaired first). */
  readonly keyspace: KeyspaceGraph | undefined;

  constructor(error: VtError, keyspace?: KeyspaceGraph) {
    this.error = error;
    this.keyspace = keyspace;
  }
}

/**
 * Runs `attempt(0)`, `attempt(1)`, … until one answers a value; an attempt throws a failure that
 * must not be retried and answers a `Retry` for one that may be. `between(retry, n)` runs before
 * attempt n + 1 (repair, back off). After RETRIES retries the last failure is thrown.
 */
export async function retryLoop<T>(attempt: (n: number) => Promise<T | Retry>, between: (retry: Retry, n: number) => Promise<void>): Promise<T> {
  for (let n = 0; ; n++) {
    const out = await attempt(n);
    if (!(out instanceof Retry)) return out;
    if (n >= RETRIES) throw out.error;
    await between(out, n);
  }
}
