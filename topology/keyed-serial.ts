// One action at a time per key (a workflow's `<keyspace>/<name>`): an action waits for the ones
// before it under the same key, whatever they answered; keys with nothing queued are forgotten.

export class KeyedSerial {
  readonly #busy = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#busy.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#busy.set(key, tail);
    void tail.then(() => {
      if (this.#busy.get(key) === tail) this.#busy.delete(key);
    });
    return run;
  }
}
