// Workflows (Reshard; MoveTables later) as the gate, vtctl and the Workflow runner see them:
// the request of `POST /v1/workflows`, the view `GET /v1/workflows` answers, and a VDiff report.

import type { SqlValue } from "./sql-values.ts";
import type { OnDdl, StreamPhase } from "./stream-rpc.ts";

export type WorkflowAction = "create" | "show" | "vdiff" | "switchtraffic" | "reversetraffic" | "complete" | "cancel" | "stop" | "start";

export interface WorkflowRequest {
  readonly action: WorkflowAction;
  readonly keyspace: string;
  readonly workflow: string;
  /** create: (MoveTables: `keyspace` is the target, `sourceKeyspace` and `tables` what moves) */
  readonly kind?: "reshard" | "movetables";
  readonly sourceKeyspace?: string;
  readonly tables?: readonly string[];
  readonly sourceShards?: readonly string[];
  readonly targetShards?: readonly string[];
  readonly onDdl?: OnDdl;
  readonly autoSwitch?: boolean;
  /**
   * switchtraffic / reversetraffic (Vitess's `--tablet-types`): "primary" moves writes,
   * "replica" and "rdonly" move reads (every tablet serves both here). Absent: all of them.
   */
  readonly tabletTypes?: readonly TabletType[];
}

export type TabletType = "primary" | "replica" | "rdonly";
export const TABLET_TYPES: readonly TabletType[] = ["primary", "replica", "rdonly"];

export interface WorkflowStreamView {
  readonly id: string;
  /** The shard the stream writes to (a target; after a switch, reverse streams write to the old sources). */
  readonly target: string;
  readonly source: string;
  readonly phase: StreamPhase;
  readonly rowsCopied: number;
  readonly lagMs: number;
  readonly message: string | null;
}

export interface WorkflowView {
  readonly keyspace: string;
  readonly workflow: string;
  readonly kind: "reshard" | "movetables";
  /** MoveTables: the keyspace the tables move from, and the tables. */
  readonly sourceKeyspace?: string;
  readonly tables?: readonly string[];
  /** created → running → switched → completed; or cancelled. */
  readonly state: string;
  readonly sources: readonly { readonly shard: string; readonly tablet: string }[];
  readonly targets: readonly { readonly shard: string; readonly tablet: string }[];
  readonly onDdl: OnDdl;
  readonly autoSwitch: boolean;
  /** Reshard: which side serves reads now, and which writes. */
  readonly reads?: "sources" | "targets";
  readonly writes?: "sources" | "targets";
  readonly streams: readonly WorkflowStreamView[];
  readonly rowsCopied: number;
  /** The sources' row count when the copy began (an estimate of what the copy moves). */
  readonly rowsTotal: number | null;
  /** The largest lag of the workflow's running streams, ms. */
  readonly lagMs: number;
  /** switchtraffic / reversetraffic: how long writes were refused, ms. */
  readonly pauseMs?: number;
  readonly vdiff?: VDiffReport;
}

export interface VDiffTableReport {
  readonly table: string;
  readonly compared: number;
  readonly missing: number;
  readonly extra: number;
  readonly mismatched: number;
  readonly samples: readonly { readonly kind: "missing" | "extra" | "mismatched"; readonly key: readonly SqlValue[] }[];
}

export interface VDiffReport {
  readonly keyspace: string;
  readonly workflow: string;
  /** No difference in what has been compared so far. */
  readonly match: boolean;
  /** Every table of every stream compared (a call that ran out of time leaves it false; call again). */
  readonly done: boolean;
  readonly tables: readonly VDiffTableReport[];
  /** Unix ms when it finished. */
  readonly at: number;
}
