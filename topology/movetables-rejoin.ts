// Where a reversed MoveTables hands its tables back to the source keyspace's shards. Their
// tablets write a journal marker (ShardJournal.rejoin) into their binlogs before they take those
// tables' writes again, in the same config push that lifts the deny (TabletConfig.rejoins), so a
// VStream that followed the tables into the target keyspace knows exactly where their changes
// are on the source shard again, and nothing of theirs comes there before it.

import type { TabletConfig } from "../contract/tablet-rpc.ts";
import type { WorkflowRecord } from "../contract/workflow-record.ts";

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
