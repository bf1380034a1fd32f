// vtctl's text output of workflows: /v1/topology's workflow records one per line (never raw
// JSON), the read shards of a keyspace whose reads were switched apart, and `reshard show`'s
// line saying which side serves reads and which writes.

import { describe, expect, it } from "vitest";
import { renderTopology } from "../../cli/format.mjs";
import { renderWorkflow } from "../../cli/workflows.mjs";

describe("vtctl workflow output", () => {
  it("prints each workflow record on one line, and the read shards", () => {
    const out = renderTopology({
      version: 7,
      keyspaces: [
        {
          name: "main",
          sharded: true,
          tables: ["users"],
          shards: [{ name: "-", keyRange: "-", serving: true, rowCount: 3, bytes: 100 }],
          readShards: [{ name: "-80" }, { name: "80-" }],
        },
      ],
      workflows: [
        {
          keyspace: "main",
          name: "split",
          kind: "reshard",
          state: "running",
          sources: [{ shard: "-" }],
          targets: [{ shard: "-80" }, { shard: "80-" }],
          reads: "targets",
          live: { rowsCopied: 12, lagMs: 3, streams: [{ phase: "running" }, { phase: "running" }] },
        },
        { keyspace: "dst", name: "mv", kind: "movetables", state: "switched", sourceKeyspace: "src", tables: ["a", "b"], sources: [], targets: [] },
      ],
    });
    expect(out).toContain("main reads served by: -80, 80-");
    expect(out).toContain("  main.split (reshard): running, shards - → -80,80-, reads pinned to the targets; 12 rows copied, lag 3 ms, running\n");
    expect(out).toContain("  dst.mv (movetables): switched, tables a, b from keyspace src\n");
    expect(out).not.toContain("{");
  });

  it("says which side serves reads and which writes", () => {
    const out = renderWorkflow({ keyspace: "main", workflow: "split", kind: "reshard", state: "running", reads: "targets", writes: "sources", streams: [] });
    expect(out).toContain("reads served by the targets, writes by the sources");
  });

  it("counts copied rows while streams run, and not once a workflow ended without them", () => {
    const base = { keyspace: "main", workflow: "split", kind: "reshard", rowsCopied: 0, rowsTotal: 5, lagMs: 0, streams: [] };
    expect(renderWorkflow({ ...base, state: "running" })).toContain("copied: 0 / ~5 rows");
    expect(renderWorkflow({ ...base, state: "completed" })).not.toContain("copied:");
    expect(renderWorkflow({ ...base, state: "cancelled" })).not.toContain("copied:");
  });
});
