// Failpoints in the Topology's change fan-out (as Vitess/TiDB failpoints): named places where a
// test makes a tablet call fail, or the Topology stop as if its process died, to prove that every
// interleaving converges. They are inert unless a test in the same isolate arms them; nothing a
// request carries can arm one.

/** Where the Topology can stop mid-change (the durable state it leaves is what a crash leaves). */
export type CrashStep =
  | "recorded"
  | "prepared"
  | "decided"
  | "applied"
  | "switch-denied"
  | "switch-drained"
  | "reverse-drained"
  // a switch's or a reverse's flip just committed (Reshard and MoveTables); a MoveTables reverse's targets just refused writes.
  | "switch-flipped"
  | "reverse-denied"
  | "reverse-flipped";

/** A tablet call the fan-out makes: validating+fencing, or syncing (apply / release). */
export type TabletOp = "prepare" | "sync";

export interface TabletFault {
  readonly op: TabletOp;
  readonly shard: string;
  /** "before": the call never reaches the tablet; "after": it ran there but the answer was lost. */
  readonly when: "before" | "after";
  /** How many matching calls fail (then the fault is spent). */
  times: number;
}

/**
 * A point inside a workflow action (topology/reshard.ts) where the action stops as if the Topology
 * died there: "drained" is after the tail was drained and the streams turned round, just before
 * the graph flips; "flipped" is after the flip, before the action's last steps.
 */
export type WorkflowStep = "switch:drained" | "switch:flipped" | "reverse:drained" | "reverse:flipped";

/**
 * A point inside a workflow action where a test runs its own code, awaited, as if it happened at
 * that moment elsewhere: "streams:heads-read" is in startStreams, after the sources' binlog heads
 * (the new streams' start positions) were read and before the streams are created (and hold them).
 */
export type WorkflowHookPoint = "streams:heads-read";

interface Armed {
  crashAt: CrashStep | null;
  tablet: TabletFault[];
  workflowAt: WorkflowStep | null;
  hooks: Map<WorkflowHookPoint, () => Promise<void>>;
}

const armed: Armed = { crashAt: null, tablet: [], workflowAt: null, hooks: new Map() };

/** Arms faults for the next changes (tests only); `disarm` clears them. */
export function arm(faults: { crashAt?: CrashStep; tablet?: readonly TabletFault[] }): void {
  armed.crashAt = faults.crashAt ?? null;
  armed.tablet = (faults.tablet ?? []).map((f) => ({ ...f }));
}

export function disarm(): void {
  armed.crashAt = null;
  armed.tablet = [];
  armed.workflowAt = null;
  armed.hooks.clear();
}

/** Runs `fn` the next time a workflow action passes `point` (once; tests only). */
export function armWorkflowHook(point: WorkflowHookPoint, fn: () => Promise<void>): void {
  armed.hooks.set(point, fn);
}

/** Runs the test's code armed at `point`, if any (once). */
export async function workflowHook(point: WorkflowHookPoint): Promise<void> {
  const fn = armed.hooks.get(point);
  if (!fn) return;
  armed.hooks.delete(point);
  await fn();
}

/** Makes the next workflow action passing `step` fail there, once (tests only). */
export function armWorkflowStep(step: WorkflowStep | null): void {
  armed.workflowAt = step;
}

/** Thrown where a failpoint fires: carries `retryable` like a Durable Object reset does. */
export class InjectedFault extends Error {
  readonly retryable = true;
  constructor(what: string) {
    super(`injected fault: ${what}`);
  }
}

/** The Topology stopping where a crash point fires: nothing of the interrupted step runs after it (no cleanup either). */
export class InjectedCrash extends InjectedFault {}

/** Stops the Topology at `step` when armed there (once). */
export function crashPoint(step: CrashStep): void {
  if (armed.crashAt !== step) return;
  armed.crashAt = null;
  throw new InjectedCrash(`topology stopped after step "${step}"`);
}

/** Whether the call `op` to `shard` fails at `when` (consumes one use of a matching fault). */
export function tabletFault(op: TabletOp, shard: string, when: "before" | "after"): boolean {
  const f = armed.tablet.find((x) => x.op === op && x.shard === shard && x.when === when && x.times > 0);
  if (!f) return false;
  f.times -= 1;
  return true;
}

/** Stops a workflow action at `step` when armed there (once). */
export function workflowPoint(step: WorkflowStep): void {
  if (armed.workflowAt !== step) return;
  armed.workflowAt = null;
  throw new InjectedFault(`workflow action stopped at "${step}"`);
}
