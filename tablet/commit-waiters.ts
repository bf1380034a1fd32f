// Readers waiting for a tablet's next commit (VStream long polls): a commit wakes them all at
// once; each also wakes after its own timeout, so a commit that did not announce itself is seen
// by the next look.

export class CommitWaiters {
  readonly #waiting = new Set<() => void>();

  /** Resolves at the next wake() or after `ms`, whichever comes first. */
  next(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
    });
  }

  wake(): void {
    for (const w of [...this.#waiting]) w();
  }
}
