// Where a reversed MoveTables hands its tables back to the source keyspace's shards, and where a
// switched one brings them to the target keyspace's. The tablets write a journal marker
// (ShardJournal.rejoin, ShardJournal.arrival) into their binlogs before they take those tables'
// writes, in the same config push that lifts the deny (TabletConfig.rejoins, .arrivals), so a
// VStream knows exactly where their changes start on that shard, and nothing of theirs comes there
// before it.

import type { TabletConfig } from "../contract/tablet-rpc.ts";
import type { WorkflowRecord } from "../contract/workflow-record.ts";
import { progressOf } from "./workflow-progress.ts";

/**
 * The rejoins the serving shards of `keyspace` carry: one per MoveTables out of it that was
 * reversed (running again after a switch), named by the switch it reverses, so each reverse
 * writes its marker once, and a later one (switched and reversed again) writes its own.
 */
export function rejoinsOf(keyspace: string, open: readonly WorkflowRecord[]): NonNullable<TabletConfig["rejoins"]> {
  return open
    .filter((w) => w.kind === "movetables" && w.sourceKeyspace === keyspace && w.state === "running" && w.switchedAt !== null && (w.tables?.length ?? 0) > 0)
    .map((w) => ({ id: `${w.name}/rejoin/${w.switchedAt}`, workflow: w.name, tables: (w.tables ?? []).map((t) => t.toLowerCase()) }));
}

/** The id of a switch's arrival markers: one per switch (a later one, after a reverse, its own). */
export function arrivalId(workflow: string, switchedAt: number): string {
  return `${workflow}/arrive/${switchedAt}`;
}

/**
 * The arrivals the serving shards of `keyspace` carry: one per MoveTables into it that is
 * switched, named by its switch, so each switch writes its marker once (a later one, after a
 * reverse, its own).
 */
export function arrivalsOf(keyspace: string, open: readonly WorkflowRecord[]): NonNullable<TabletConfig["arrivals"]> {
  return open
    .filter(
      (w) =>
        w.kind === "movetables" &&
        w.keyspace === keyspace &&
        w.state === "switched" &&
        w.switchedAt !== null &&
        (w.tables?.length ?? 0) > 0 &&
        progressOf(w).arrivals === true,
    )
    .map((w) => ({
      id: arrivalId(w.name, w.switchedAt as number),
      workflow: w.name,
      sourceKeyspace: w.sourceKeyspace ?? "",
      tables: (w.tables ?? []).map((t) => t.toLowerCase()),
    }));
}
