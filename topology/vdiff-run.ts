// VDiff of a workflow, in chunks: each stream's rows are compared chunk by chunk on its target
// (tablet/stream-vdiff.ts) and the counts add up per table. A call works for a bounded time and
// records where it stopped, so a VDiff of any size finishes over several calls and survives a
// restart; a call after a finished VDiff starts a new one.

import { unwrap } from "../contract/envelope.ts";
import type { CopyCursor } from "../contract/stream-rpc.ts";
import type { VDiffReport, VDiffTableReport } from "../contract/workflow-rpc.ts";
import { overlapping, streamId, type TabletOf, type WorkflowShard } from "./reshard-streams.ts";

/** How long one call compares before it answers (and is called again). */
const BUDGET_MS = 2_000;
const CHUNK_ROWS = 1_000;
const SAMPLES = 10;

export interface VDiffState {
  /**
   * Per stream, keyed by target tablet and stream id (a split's streams share their id, one per
   * target): the stream id, its target tablet and the next chunk's cursor (null: compared).
   */
  readonly streams: Record<string, { readonly id: string; readonly tablet: string; readonly cursor: CopyCursor | null }>;
  readonly tables: VDiffTableReport[];
}

interface VDiffWorkflow {
  readonly keyspace: string;
  readonly name: string;
  readonly sources: readonly WorkflowShard[];
  readonly targets: readonly WorkflowShard[];
}

export async function runVDiff(wf: VDiffWorkflow, prev: VDiffState | null, tabletOf: TabletOf): Promise<{ report: VDiffReport; state: VDiffState }> {
  const fresh = (): VDiffState => ({
    streams: Object.fromEntries(
      overlapping(wf.sources, wf.targets).map(({ from, to }) => {
        const id = streamId(wf.name, from.shard);
        return [`${to.tablet} ${id}`, { id, tablet: to.tablet, cursor: { table: 0, after: null } }];
      }),
    ),
    tables: [],
  });
  const done = (s: VDiffState) => Object.values(s.streams).every((x) => x.cursor === null);
  // A state recorded before streams carried their id (keyed by id alone) starts over.
  const current = (s: VDiffState) => Object.values(s.streams).every((x) => typeof x.id === "string");
  const state = prev === null || done(prev) || !current(prev) ? fresh() : prev;
  const streams = { ...state.streams };
  const tables = new Map(state.tables.map((t) => [t.table, { ...t, samples: [...t.samples] }]));
  const until = Date.now() + BUDGET_MS;
  for (const [key, s] of Object.entries(streams)) {
    let cursor = s.cursor;
    while (cursor !== null && Date.now() < until) {
      const chunk = unwrap(await tabletOf(s.tablet).vdiffStream(s.id, cursor, CHUNK_ROWS));
      for (const t of chunk.tables) {
        const acc = tables.get(t.table) ?? { table: t.table, compared: 0, missing: 0, extra: 0, mismatched: 0, samples: [] };
        tables.set(t.table, {
          table: t.table,
          compared: acc.compared + t.compared,
          missing: acc.missing + t.missing,
          extra: acc.extra + t.extra,
          mismatched: acc.mismatched + t.mismatched,
          samples: [...acc.samples, ...t.samples].slice(0, SAMPLES),
        });
      }
      cursor = chunk.next;
    }
    streams[key] = { id: s.id, tablet: s.tablet, cursor };
  }
  const next: VDiffState = { streams, tables: [...tables.values()].sort((a, b) => (a.table < b.table ? -1 : 1)) };
  const report: VDiffReport = {
    keyspace: wf.keyspace,
    workflow: wf.name,
    match: next.tables.every((t) => t.missing === 0 && t.extra === 0 && t.mismatched === 0),
    done: done(next),
    tables: next.tables,
    at: Date.now(),
  };
  return { report, state: next };
}
