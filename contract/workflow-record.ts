// A workflow (Reshard; MoveTables later) as the Topology records it (`_vt_topo_workflows`,
// topology/workflow-store.ts) and answers it: which shards it moves from and to, on which
// tablets, and how far it got. GET /v1/topology lists these records in `workflows` (⚑).

import type { OnDdl } from "./stream-rpc.ts";

/**
 * created: the targets exist (not serving, with the keyspace's schema); running: its streams
 * move rows; switched: the targets serve in place of the sources (reverseWrites goes back to
 * running); completed: the sources are retired; cancelled: the targets are retired (only before
 * a switch).
 */
export type WorkflowState = "created" | "running" | "switched" | "completed" | "cancelled";

export type WorkflowKind = "reshard" | "movetables";

export interface WorkflowShard {
  /** The shard's name, its hex key range (e.g. "-40"). */
  readonly shard: string;
  readonly keyRange: string;
  /** Its tablet's Durable Object name (ShardGraph.tablet). */
  readonly tablet: string;
}

export interface WorkflowOptions {
  /** What a DDL in a source's binlog does to the streams (default "ignore"). */
  readonly onDdl?: OnDdl;
  /** Switch traffic as soon as the streams caught up and VDiff matched (default false). */
  readonly autoSwitch?: boolean;
}

export interface WorkflowRecord {
  readonly keyspace: string;
  readonly name: string;
  readonly kind: WorkflowKind;
  readonly state: WorkflowState;
  /** In key order. */
  readonly sources: readonly WorkflowShard[];
  /** In key order; they cover exactly the sources' key ranges. */
  readonly targets: readonly WorkflowShard[];
  readonly onDdl: OnDdl;
  readonly autoSwitch: boolean;
  /** What the workflow last reported of itself (setWorkflowProgress), or null. */
  readonly progress: unknown;
  /** Unix ms. */
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When writes were last switched to the targets, or null when never. */
  readonly switchedAt: number | null;
  /**
   * MoveTables: the keyspace the tables move from (`sources` are its shards; `keyspace` and
   * `targets` are the destination's), and the tables, as the source names them.
   */
  readonly sourceKeyspace?: string;
  readonly tables?: readonly string[];
  /**
   * Reshard: the side that serves reads when it is not the side that serves writes
   * (`switchtraffic --tablet-types=replica` moved them ahead of the writes, or
   * `--tablet-types=primary` moved the writes alone). Absent or null: reads follow writes.
   */
  readonly reads?: ReadSide | null;
}

export type ReadSide = "sources" | "targets";

/** The side of a Reshard whose tablets serve its key ranges' writes. */
export function writeSide(w: WorkflowRecord): ReadSide {
  return w.state === "switched" || w.state === "completed" ? "targets" : "sources";
}

/** The side of a Reshard whose tablets serve its key ranges' reads. */
export function readSide(w: WorkflowRecord): ReadSide {
  return w.reads ?? writeSide(w);
}

/**
 * The routing rules the open MoveTables workflows make (Vitess's routing rules): for each moved
 * table, `<source>.<table>` and `<target>.<table>` (lower-cased) → the keyspace that serves it,
 * the source until writes are switched, the target after.
 */
export function routingRules(workflows: readonly WorkflowRecord[]): Record<string, string> {
  const rules: Record<string, string> = {};
  for (const w of workflows) {
    if (w.kind !== "movetables" || !isOpen(w) || w.sourceKeyspace === undefined) continue;
    const to = w.state === "switched" ? w.keyspace : w.sourceKeyspace;
    for (const t of w.tables ?? []) {
      for (const ks of [w.sourceKeyspace, w.keyspace]) rules[`${ks}.${t}`.toLowerCase()] = to;
    }
  }
  return rules;
}

/** A workflow that still holds shards: no other workflow may move them. */
export function isOpen(w: WorkflowRecord): boolean {
  return w.state === "created" || w.state === "running" || w.state === "switched";
}
