// The Node runner of the join differential property (joins.differential.test.ts): a scenario of
// join-gen.ts over 1–4 in-memory SQLite shards (fake-cursor.ts) against one SQLite holding every
// row. After each write it checks every shard directly: each copy of the reference table r equals
// the reference database's r, and the sharded tables' rows are the reference's, each on the shard
// its vindex value maps to.

import type { SqlValue } from "../../contract/sql-values.ts";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { DUMP_SQL, runSteps, tableSpecs, type JoinCheck, type JoinStats, type Scenario, type WriteCheck } from "./join-gen.ts";
import { diffResults, show } from "./result-compare.ts";

/** Undefined when every shard of `c` holds what its reference database holds, else what differs. */
export function verifyCluster(c: Cluster): string | undefined {
  const rRef = c.reference(DUMP_SQL.r);
  for (const shard of c.shardNames) {
    const d = diffResults(c.onShard(shard, DUMP_SQL.r), rRef, { ordered: true });
    if (d) return `shard ${shard}'s copy of r: ${d}`;
  }
  for (const [table, col] of [
    ["t", 0],
    ["u", 1],
    ["v", 0],
  ] as const) {
    const ref = c.reference(DUMP_SQL[table]);
    const rows: SqlValue[][] = [];
    for (const shard of c.shardNames) {
      for (const row of c.onShard(shard, DUMP_SQL[table]).rows) {
        const at = c.shardOf(row[col] ?? null);
        if (at !== shard) return `${table} row ${show(row)} is on shard ${shard}, its vindex value maps to ${at}`;
        rows.push([...row]);
      }
    }
    const d = diffResults({ columns: ref.columns, rows, rowsAffected: 0 }, ref, { ordered: false });
    if (d) return `table ${table} over the shards: ${d}`;
  }
  return undefined;
}

export async function runScenario(sc: Scenario, st: JoinStats, skip?: (q: JoinCheck | WriteCheck) => boolean): Promise<void> {
  const specs = tableSpecs(sc.schema);
  const c = createCluster({ shards: sc.shards, tables: specs });
  const header = [`-- ${sc.shards} shard(s)`, ...Object.values(specs).map((t) => `${t.create};${t.reference ? " -- reference" : ""}`)];
  try {
    await runSteps(
      sc,
      { header, run: (sql, p) => c.run(sql, p), reference: async (sql, p) => c.reference(sql, p), verify: async () => verifyCluster(c) },
      st,
      skip,
    );
  } finally {
    c.close();
  }
}
