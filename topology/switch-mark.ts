// A workflow's durable "switch under way" mark (ReshardProgress.switching), as both controllers
// keep it: recorded before the first tablet refuses writes, cleared when the switch ends either
// way. A mark found while no switch runs (the Topology stopped or restarted mid-switch) is undone
// by the workflow's controller, on the workflow's next action or from the Topology's alarm.

import { VtError } from "../contract/errors.ts";
import type { WorkflowRecord } from "../contract/workflow-record.ts";
import type { KeyedSerial } from "./keyed-serial.ts";
import { progressOf, type ReshardProgress } from "./workflow-progress.ts";

export type SwitchDirection = "forward" | "reverse";

/** What the mark needs of the Topology. */
export interface SwitchMarks {
  record(keyspace: string, workflow: string): Promise<WorkflowRecord>;
  setProgress(keyspace: string, workflow: string, progress: ReshardProgress): Promise<void>;
  /** Asks for the alarm's recovery to run within `ms`. */
  recoverLater(ms: number): Promise<void>;
}

/** A switch still marked this long after it began is taken for interrupted by the alarm (a running one holds the serial section, so it is waited for). */
export const RECOVER_AFTER_MS = 60_000;

/** Records (or, with null, clears) the workflow's switch mark; recording one arms the alarm that undoes it if no one clears it. */
export async function markSwitching(topo: SwitchMarks, rec: WorkflowRecord, direction: SwitchDirection | null): Promise<void> {
  const now = progressOf(await topo.record(rec.keyspace, rec.name));
  await topo.setProgress(rec.keyspace, rec.name, { ...now, switching: direction === null ? null : { direction, at: Date.now() } });
  if (direction !== null) await topo.recoverLater(RECOVER_AFTER_MS);
}

/** Records in the switch's mark the heads (tablet → seq) of the side about to serve (see ReshardProgress.switching `from`). */
export async function recordSwitchFrom(topo: SwitchMarks, rec: WorkflowRecord, heads: ReadonlyMap<string, number>): Promise<void> {
  const now = progressOf(await topo.record(rec.keyspace, rec.name));
  if (!now.switching) throw new VtError("INTERNAL", `workflow ${rec.keyspace}.${rec.name}: its switch is not marked`);
  await topo.setProgress(rec.keyspace, rec.name, { ...now, switching: { ...now.switching, from: Object.fromEntries(heads) } });
}

/**
 * Runs `undo` for every record of `records` marked as switching, each inside its workflow's
 * serial section (so a switch that does run is waited for, and then finds nothing to undo). A
 * failed undo asks the alarm to try again.
 */
export async function recoverSwitches(
  records: readonly WorkflowRecord[],
  serial: KeyedSerial,
  undo: (keyspace: string, workflow: string) => Promise<void>,
  later: (ms: number) => Promise<void>,
): Promise<void> {
  for (const rec of records) {
    if (!progressOf(rec).switching) continue;
    await serial
      .run(`${rec.keyspace}/${rec.name}`, () => undo(rec.keyspace, rec.name))
      .catch(async (e) => {
        console.warn(
          `workflow ${rec.keyspace}.${rec.name}: undoing an interrupted switch failed (${e instanceof Error ? e.message : String(e)}); trying again`,
        );
        await later(2_000);
      });
  }
}
