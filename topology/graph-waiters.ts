// Requests the gate holds through a cutover, waiting on the Topology for the keyspace's tablets to
// learn a change (awaitGraph). A SwitchTraffic refuses writes on the sources for milliseconds and
// then flips the graph; a held request that polls on a timer meets the flip a timer tick late, and
// where every Durable Object shares one event loop (local workerd) its timer does not fire at all
// until the whole switchtraffic request is over. A waiter instead is answered the moment the
// Topology has pushed a change of that keyspace to its tablets (the flip, or writes taken again
// after a switch that failed), or after its own bound, whichever comes first.

/** The longest one wait lasts; the gate asks again (or times out) after it. */
export const MAX_GRAPH_WAIT_MS = 1000;
/** Waiters the Topology keeps at once; beyond that a wait answers at once (the gate falls back to its timer). */
export const MAX_GRAPH_WAITERS = 10_000;

interface Waiter {
  readonly resolve: () => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class GraphWaiters {
  readonly #byKeyspace = new Map<string, Set<Waiter>>();
  readonly #syncing = new Map<string, number>();
  #count = 0;

  /** Whether a push of `keyspace`'s config to its tablets is under way. */
  syncing(keyspace: string): boolean {
    return (this.#syncing.get(keyspace) ?? 0) > 0;
  }

  /** Runs a push of `keyspace`'s config to its tablets; its end (success or not) answers the waiters. */
  async sync<T>(keyspace: string, push: () => Promise<T>): Promise<T> {
    this.#syncing.set(keyspace, (this.#syncing.get(keyspace) ?? 0) + 1);
    try {
      return await push();
    } finally {
      const left = (this.#syncing.get(keyspace) ?? 1) - 1;
      if (left > 0) this.#syncing.set(keyspace, left);
      else this.#syncing.delete(keyspace);
      this.wake(keyspace);
    }
  }

  /** Waiters held now (for tests and status). */
  get size(): number {
    return this.#count;
  }

  /**
   * Resolves true on the next `wake(keyspace)`, or after `maxMs` (clamped to [0,
   * MAX_GRAPH_WAIT_MS]); false at once, without waiting, for a bound of 0 or when
   * MAX_GRAPH_WAITERS are waiting already.
   */
  wait(keyspace: string, maxMs: number): Promise<boolean> {
    const ms = Math.max(0, Math.min(MAX_GRAPH_WAIT_MS, Number.isFinite(maxMs) ? maxMs : 0));
    if (ms === 0 || this.#count >= MAX_GRAPH_WAITERS) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let set = this.#byKeyspace.get(keyspace);
      if (!set) {
        set = new Set();
        this.#byKeyspace.set(keyspace, set);
      }
      const waiters = set;
      const w: Waiter = {
        resolve: () => {
          clearTimeout(w.timer);
          if (waiters.delete(w)) this.#count--;
          if (waiters.size === 0 && this.#byKeyspace.get(keyspace) === waiters) this.#byKeyspace.delete(keyspace);
          resolve(true);
        },
        timer: setTimeout(() => w.resolve(), ms),
      };
      waiters.add(w);
      this.#count++;
    });
  }

  /** Answers every waiter of `keyspace`. */
  wake(keyspace: string): void {
    const set = this.#byKeyspace.get(keyspace);
    if (!set) return;
    for (const w of [...set]) w.resolve();
  }
}
