// Reads ahead of writes (Vitess's `switchtraffic --tablet-types=replica`): while a Reshard serves
// its key ranges' reads from the side that does not take their writes, the serving graph carries
// `readShards` (the shards a read-only statement goes to) and that side's tablets serve reads
// only (TabletConfig.servesReads). Both are derived here from the open workflow records, so the
// graph and the tablets' configs can never disagree on who serves a read.

import type { KeyspaceGraph, ShardGraph } from "../contract/serving-graph.ts";
import { isOpen, readSide, writeSide, type WorkflowRecord } from "../contract/workflow-record.ts";
import { compareShardNames } from "./topology-store.ts";
import { asShards } from "./workflow-store.ts";

/** The open Reshards of `ks` whose reads are not where their writes are. */
function splitReads(ks: KeyspaceGraph, workflows: readonly WorkflowRecord[]): WorkflowRecord[] {
  return workflows.filter((w) => w.keyspace === ks.name && w.kind === "reshard" && isOpen(w) && readSide(w) !== writeSide(w));
}

/** The keyspace with its `readShards` when some of its reads go elsewhere than its writes. */
export function withReadShards(ks: KeyspaceGraph, workflows: readonly WorkflowRecord[]): KeyspaceGraph {
  const split = splitReads(ks, workflows);
  if (split.length === 0) return ks;
  let reads: ShardGraph[] = ks.shards.filter((s) => s.serving);
  for (const w of split) {
    const [from, to] = readSide(w) === "targets" ? [w.sources, w.targets] : [w.targets, w.sources];
    reads = reads.filter((s) => !from.some((f) => f.shard === s.name && f.tablet === s.tablet));
    reads.push(...asShards(to, true));
  }
  reads.sort((a, b) => compareShardNames(a.name, b.name));
  return { ...ks, readShards: reads };
}

/** The tablets of `ks` that serve reads while not serving writes. */
export function readOnlyTablets(ks: KeyspaceGraph, workflows: readonly WorkflowRecord[]): Set<string> {
  const out = new Set<string>();
  for (const w of splitReads(ks, workflows)) for (const s of readSide(w) === "targets" ? w.targets : w.sources) out.add(s.tablet);
  return out;
}
