// What a workflow keeps in its record's `progress` (Reshard and MoveTables alike): the copy's
// estimate, VDiff's report and resumption state, and the durable mark of a switch under way.

import type { WorkflowRecord } from "../contract/workflow-record.ts";
import type { VDiffReport } from "../contract/workflow-rpc.ts";
import type { VDiffState } from "./vdiff-run.ts";

/** What a Reshard keeps in its record's `progress`. */
export interface ReshardProgress {
  /** The sources' row count when the copy began. */
  readonly rowsTotal: number | null;
  readonly vdiff: VDiffReport | null;
  readonly vdiffState: VDiffState | null;
  /**
   * A switch under way ("forward": to the targets, "reverse": back), recorded before the first
   * shard refuses writes and cleared when the switch ends either way. Found set with no switch
   * running (the Topology restarted mid-switch), it is undone: the refusing shards take writes again.
   * `from` holds the binlog heads (tablet → seq) of the side about to serve, recorded before the
   * flip: the streams back from that side start there once the graph flipped, outside the write
   * pause; a switch found flipped with its mark still set starts them from there.
   */
  readonly switching?: { readonly direction: "forward" | "reverse"; readonly at: number; readonly from?: Readonly<Record<string, number>> } | null;
  /**
   * A MoveTables whose target keyspace refused writes to its tables from its create on: each
   * switch's flip has the targets write arrival markers as they take those writes
   * (movetables-rejoin.ts arrivalsOf), and its journals say so. Absent: a workflow from before.
   */
  readonly arrivals?: true;
}

export function progressOf(r: WorkflowRecord): ReshardProgress {
  const p = (r.progress ?? {}) as Partial<ReshardProgress>;
  return {
    rowsTotal: p.rowsTotal ?? null,
    vdiff: p.vdiff ?? null,
    vdiffState: p.vdiffState ?? null,
    switching: p.switching ?? null,
    ...(p.arrivals === true ? { arrivals: true as const } : {}),
  };
}
