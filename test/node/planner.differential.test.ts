// Differential tests of the gate's planner and engine: statements planned over N in-memory SQLite
// shards (fake-cursor.ts) against one SQLite holding every row. Counterexamples fast-check found
// are pinned as named examples at the end of the file.

import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { QueryResult } from "../../tablet/types.ts";
import { toVtError } from "../../topology/errors.ts";
import { createCluster, type Cluster, type Params } from "./fake-cursor.ts";
import { aggQueryArb, renderAggQuery, renderRowsQuery, rowsQueryArb, type AggQuery, type QueryCheck, type RowsQuery } from "./query-gen.ts";
import { diffResults, diffSubset, show } from "./result-compare.ts";
import { createTableSql, freshIdArb, schemaArb, type Schema } from "./sql-gen.ts";
import { deleteArb, insertArb, renderDelete, renderInsert, renderUpdate, updateArb, type InsertStmt, type Rendered, type WriteStmt } from "./statement-gen.ts";

/** Cases of the main property; DIFF_RUNS=5000 for a longer hunt. */
const RUNS = Number(process.env["DIFF_RUNS"] ?? 300);

type Step = WriteStmt | RowsQuery | AggQuery;

interface Scenario {
  readonly schema: Schema;
  readonly shards: number;
  readonly fresh: readonly (number | bigint)[];
  readonly inserts: readonly InsertStmt[];
  readonly steps: readonly Step[];
}

const scenarioArb: fc.Arbitrary<Scenario> = schemaArb.chain((schema) =>
  fc.record({
    schema: fc.constant(schema),
    shards: fc.integer({ min: 1, max: 4 }),
    fresh: fc.uniqueArray(freshIdArb, { maxLength: 60, selector: (v) => String(v) }),
    inserts: fc.array(insertArb(schema), { maxLength: 8 }),
    steps: fc.array(
      fc.oneof(
        { weight: 2, arbitrary: insertArb(schema) },
        { weight: 2, arbitrary: updateArb(schema) },
        { weight: 2, arbitrary: deleteArb(schema) },
        { weight: 5, arbitrary: rowsQueryArb(schema) },
        { weight: 5, arbitrary: aggQueryArb(schema) },
      ),
      { maxLength: 12 },
    ),
  }),
);

class Mismatch extends Error {}

async function attempt<T>(fn: () => T | Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    const vt = toVtError(e);
    return { ok: false, error: `${vt.code}: ${vt.message}` };
  }
}

function label(r: Rendered): string {
  return `${r.sql}${r.params === undefined ? "" : `  -- params ${show(r.params)}`}`;
}

/** Runs a scenario; throws Mismatch naming the statement where the gate and the reference part. */
async function runScenario(sc: Scenario): Promise<void> {
  const c = createCluster({ shards: sc.shards, tables: { t: { create: createTableSql(sc.schema), column: "id" } } });
  const log: string[] = [`-- ${sc.shards} shard(s)`, `${createTableSql(sc.schema)};`];
  const fail = (what: string): never => {
    throw new Mismatch(`${what}\n-- statements so far:\n${log.join("\n")}`);
  };
  let freshAt = 0;
  let extra = 0;
  const nextFresh = (): number | bigint => sc.fresh[freshAt++] ?? 2_000_000_000 + extra++;

  /** Runs one statement on both sides; false when both refused it (the scenario stops: their states may differ). */
  async function both(r: Rendered): Promise<{ act: QueryResult; exp: QueryResult } | undefined> {
    log.push(`${label(r)};`);
    const exp = await attempt(() => c.reference(r.sql, r.params));
    const act = await attempt(() => c.run(r.sql, r.params));
    if (!exp.ok && !act.ok) return undefined;
    if (!act.ok) return fail(`gate failed where SQLite answered: ${act.error}`);
    if (!exp.ok) return fail(`gate answered ${show(act.value.rows)} where SQLite failed: ${exp.error}`);
    return { act: act.value, exp: exp.value };
  }

  async function write(st: WriteStmt): Promise<boolean> {
    const r = st.k === "insert" ? renderInsert(sc.schema, st, sc.fresh, nextFresh) : st.k === "update" ? renderUpdate(sc.schema, st, sc.fresh) : renderDelete(st, sc.fresh);
    const res = await both(r);
    if (!res) return false;
    if (res.act.rowsAffected !== res.exp.rowsAffected) fail(`rowsAffected ${res.act.rowsAffected} != expected ${res.exp.rowsAffected}`);
    const d = diffResults(res.act, res.exp, { ordered: false });
    if (d) fail(`RETURNING: ${d}`);
    const tracksLastId = st.k === "insert" && (st.verb === "INSERT" || st.verb === "INSERT OR REPLACE" || st.verb === "REPLACE");
    if (tracksLastId && res.act.lastInsertRowid !== res.exp.lastInsertRowid) {
      fail(`lastInsertRowid ${show(res.act.lastInsertRowid)} != expected ${show(res.exp.lastInsertRowid)}`);
    }
    return true;
  }

  async function query(q: QueryCheck): Promise<void> {
    const res = await both(q);
    if (!res) return;
    if (!q.unlimited) {
      const d = diffResults(res.act, res.exp, q);
      if (d) fail(d);
      return;
    }
    // LIMIT without ORDER BY: as many rows as SQLite gives, each a row of the unlimited result.
    if (show(res.act.columns) !== show(res.exp.columns)) fail(`columns ${show(res.act.columns)} != expected ${show(res.exp.columns)}`);
    if (res.act.rows.length !== res.exp.rows.length) fail(`${res.act.rows.length} rows != expected ${res.exp.rows.length}`);
    const s = diffSubset(res.act, c.reference(q.unlimited.sql, q.unlimited.params));
    if (s) fail(s);
  }

  try {
    for (const st of sc.inserts) if (!(await write(st))) return;
    for (const st of sc.steps) {
      if (st.k === "rows") await query(renderRowsQuery(sc.schema, st, sc.fresh));
      else if (st.k === "agg") await query(renderAggQuery(sc.schema, st, sc.fresh));
      else if (!(await write(st))) return;
    }
    // Every row sits on the shard its id maps to, and the shards together hold what the reference holds.
    for (const shard of c.shardNames) {
      for (const [id] of c.onShard(shard, "SELECT id FROM t").rows) {
        if (id === null || id === undefined || c.shardOf(id) !== shard) fail(`row ${show(id)} is on shard ${shard}, its id maps to ${id === null || id === undefined ? "?" : c.shardOf(id)}`);
      }
    }
    await query({ sql: "SELECT * FROM t ORDER BY id", params: undefined, ordered: true, approx: new Set(), nocase: new Set(), unlimited: null });
  } finally {
    c.close();
  }
}

describe("planner differential: N shards vs one SQLite", () => {
  // Invariant: a plan over N shards returns what one SQLite holding all rows returns — rows (in
  // order when ORDER BY fixes it), columns, rowsAffected and lastInsertRowid of writes — and every
  // row lives on the shard whose key range holds its keyspace id.
  it("every supported statement answers as a single SQLite does", async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: RUNS });
  }, 120_000);
});

let cluster: Cluster | undefined;
afterEach(() => {
  cluster?.close();
  cluster = undefined;
});

/** A 2-shard cluster with the table `t (id INTEGER PRIMARY KEY, …cols)` sharded by id. */
function twoShards(cols: string, shards = 2): Cluster {
  cluster = createCluster({ shards, tables: { t: { create: `CREATE TABLE t (id INTEGER PRIMARY KEY, ${cols})`, column: "id" } } });
  return cluster;
}

async function expectSame(c: Cluster, sql: string, params?: Params, ordered = true): Promise<void> {
  const exp = c.reference(sql, params);
  const act = await c.run(sql, params);
  expect(diffResults(act, exp, { ordered })).toBeUndefined();
}

async function seed(c: Cluster, sql: string, params?: Params): Promise<void> {
  c.reference(sql, params);
  await c.run(sql, params);
}

describe("planner differential: pinned examples", () => {
  it("ORDER BY a position over shards", async () => {
    const c = twoShards("a TEXT, b INTEGER");
    await seed(c, "INSERT INTO t VALUES (1, 'x', 3), (2, 'y', 1), (3, 'z', 2), (4, 'w', 1)");
    await expectSame(c, "SELECT a, b FROM t ORDER BY 2 DESC, id");
  });

  it("aggregates over shards with GROUP BY and ORDER BY over the grouped output", async () => {
    const c = twoShards("a TEXT, b INTEGER");
    await seed(c, "INSERT INTO t VALUES (1, 'x', 3), (2, 'y', 1), (3, 'x', 2), (4, 'y', NULL), (5, NULL, 7)");
    await expectSame(c, "SELECT a, count(*), sum(b) AS s, min(b), max(b), count(b) FROM t GROUP BY a ORDER BY s DESC, 1");
  });
});
