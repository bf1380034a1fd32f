// Heap held per cached plan, against the statement's length: the measurements behind planBytes()
// (gate/planner/plan.ts), which PlanCache uses to bound the heap it holds. Run with
//   node --expose-gc --import tsx bench/plan-cache-memory.node.ts
// Each shape is planned COPIES times with distinct texts into one cache (so the plans stay
// alive), and the heap growth after a full GC is divided by the copies and by the text length;
// "est" is planBytes() for the same plans, which must stay above the measured bytes.

import { PlanCache } from "../gate/planner/plan.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import { evenShards } from "../topology/keyrange.ts";
import type { TableInfo } from "../contract/tablet-rpc.ts";

const COPIES = 150;
const WARM = 20;

function keyspace(): KeyspaceGraph {
  const cols = [["id", "INTEGER"], ["g", "INTEGER"], ["v", "REAL"], ["name", "TEXT"], ...Array.from({ length: 50 }, (_, i) => [`c${i}`, "TEXT"])] as const;
  const t: TableInfo = {
    name: "t",
    sql: `CREATE TABLE t (${cols.map(([n, ty]) => `${n} ${ty}${n === "id" ? " PRIMARY KEY" : ""}`).join(", ")})`,
    columns: cols.map(([n, ty]) => ({ name: n, type: ty, pk: n === "id" ? 1 : 0, notNull: n === "id" })),
  };
  return {
    name: "m",
    sharded: true,
    vschema: { sharded: true, vindexes: { xxhash: { type: "xxhash" } }, tables: { t: { column_vindexes: [{ column: "id", name: "xxhash" }] } } },
    shards: evenShards(4).map((n) => ({ name: n, keyRange: n, serving: true, tablet: n })),
    tables: { t },
    schemaIndex: 1,
    version: 1,
  };
}

const shapes: Record<string, (i: number) => string> = {
  "point SELECT": (i) => `SELECT id, name, v FROM t WHERE id = ${i}`,
  "scatter ORDER BY LIMIT": (i) => `SELECT id, name, v FROM t WHERE v > ${i} ORDER BY v DESC, id LIMIT 10`,
  "GROUP BY aggregates": (i) => `SELECT g, count(*), sum(v), avg(v), min(name), max(v) FROM t WHERE g > ${i} GROUP BY g HAVING count(*) > 1 ORDER BY g`,
  "SELECT of 50 columns": (i) => `SELECT ${Array.from({ length: 50 }, (_, k) => `c${k}`).join(", ")} FROM t WHERE id = ${i}`,
  "IN list, 85 KB": (i) => `SELECT id FROM t WHERE id IN (${Array.from({ length: 12_000 }, (_, k) => k + i * 100_000).join(", ")})`,
  "INSERT 1000 literal rows": (i) =>
    `INSERT INTO t (id, g, v, name) VALUES ${Array.from({ length: 1000 }, (_, k) => `(${i * 10_000 + k}, ${k}, ${k}.5, 'n${k}')`).join(", ")}`,
  "INSERT 85 KB of literal rows": (i) =>
    `INSERT INTO t (id, g, v, name) VALUES ${Array.from({ length: 2900 }, (_, k) => `(${i * 10_000 + k}, ${k}, ${k}.5, 'n${k}')`).join(", ")}`,
  "INSERT 25 placeholder rows": (i) => `INSERT INTO t (id, g, v, name) VALUES ${Array.from({ length: 25 }, () => "(?, ?, ?, ?)").join(", ")} -- ${i}`,
  "UPDATE with long text literal": (i) => `UPDATE t SET name = '${"x".repeat(50_000)}' WHERE id = ${i}`,
};

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const ks = keyspace();
for (const [name, make] of Object.entries(shapes)) {
  const texts = Array.from({ length: COPIES }, (_, i) => make(i));
  const cache = new PlanCache(COPIES * 2 + WARM, Number.MAX_SAFE_INTEGER);
  for (let w = 0; w < WARM; w++) cache.plan(make(COPIES + 1 + w), ks); // warm the code paths
  const warmBytes = cache.bytes;
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const sql of texts) cache.plan(sql, ks);
  gc();
  const after = process.memoryUsage().heapUsed;
  const chars = texts.reduce((n, s) => n + s.length, 0);
  console.log(
    `${name.padEnd(32)} ${String(Math.round(chars / COPIES)).padStart(7)} chars  ${String(Math.round((after - before) / COPIES)).padStart(9)} B/plan  ${((after - before) / chars).toFixed(1).padStart(6)} B/char  est ${String(Math.round((cache.bytes - warmBytes) / COPIES)).padStart(9)} B/plan`,
  );
}
