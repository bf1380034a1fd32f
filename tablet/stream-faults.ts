// Failpoints in the stream transport (tests only, as topology/failpoints.ts): the queue loses,
// repeats or reorders a stream's parts, or the pump forgets its chains as a restarted object
// does. They are inert unless a test in the same isolate arms them; nothing a request carries
// can arm one.

export interface StreamFaults {
  /** Parts sent to the queue are dropped (lost messages) while this holds. */
  drop?: boolean;
  /** Each part is sent this many extra times. */
  duplicate?: number;
  /** Parts are held back and sent in reverse order, this many at a time. */
  reorder?: number;
  /** How long a chain may stall before the pump starts a new one (default stream-pump.ts STALL_MS). */
  stallMs?: number;
  /** The pump forgets its chains once (as after a restart of its Durable Object). */
  restart?: boolean;
}

let armed: StreamFaults = {};

export function armStreamFaults(f: StreamFaults): void {
  armed = { ...f };
}

export function disarmStreamFaults(): void {
  armed = {};
}

export function streamFaults(): Readonly<StreamFaults> {
  return armed;
}

/** Consumes the one-shot restart fault. */
export function takeRestart(): boolean {
  if (!armed.restart) return false;
  armed = { ...armed, restart: false };
  return true;
}
