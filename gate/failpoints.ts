// Failpoints in the gate's write calls to tablets (as Vitess/TiDB failpoints): a test makes one
// call fail before it reaches the tablet, or after the tablet ran it (the answer lost, as when the
// tablet's Durable Object resets after committing), to prove every answer about a write is true.
// They are inert unless a test in the same isolate arms them; nothing a request carries can arm one.

/** A write call of the gate to a tablet: "before" it reaches the tablet, or "after" it ran there (the answer lost). */
export interface WriteFault {
  readonly keyspace: string;
  readonly shard: string;
  readonly when: "before" | "after";
  /** Matching calls that pass first. */
  skip: number;
  /** How many matching calls then fail. */
  times: number;
}

const armed: { writes: WriteFault[]; fired: number } = { writes: [], fired: 0 };

/** Arms faults in the gate's write calls to tablets (tests only); `disarmWrites` clears them. */
export function armWrites(faults: readonly WriteFault[]): void {
  armed.writes = faults.map((f) => ({ ...f }));
  armed.fired = 0;
}

export function disarmWrites(): void {
  armed.writes = [];
  armed.fired = 0;
}

/** How many armed write faults fired since they were armed. */
export function firedWrites(): number {
  return armed.fired;
}

/** Whether the gate's write call to `keyspace/shard` fails at `when` (consumes a matching fault). */
export function writeFault(keyspace: string, shard: string, when: "before" | "after"): boolean {
  if (armed.writes.length === 0) return false;
  const f = armed.writes.find((x) => x.keyspace === keyspace && x.shard === shard && x.when === when && x.times > 0);
  if (!f) return false;
  if (f.skip > 0) {
    f.skip -= 1;
    return false;
  }
  f.times -= 1;
  armed.fired += 1;
  return true;
}

/** What a Durable Object reset or a broken connection throws at the caller: an Error saying `retryable`. */
export class LostCall extends Error {
  readonly retryable = true;

  constructor(message: string) {
    super(message);
    this.name = "LostCall";
  }
}

/** Publishing rounds of subscription `name` that fail after their messages were sent and before their cursor is stored (a crash there). */
const publishCrashes = new Map<string, number>();

/** Makes the next `times` publishing rounds of subscription `name` crash between send and store (tests only). */
export function armPublishCrash(name: string, times: number): void {
  if (times > 0) publishCrashes.set(name, times);
  else publishCrashes.delete(name);
}

/** Whether this round of `name` crashes between send and store (consumes one armed crash). */
export function publishCrash(name: string): boolean {
  const n = publishCrashes.get(name) ?? 0;
  if (n <= 0) return false;
  if (n === 1) publishCrashes.delete(name);
  else publishCrashes.set(name, n - 1);
  return true;
}
