// Invariant: whichever shard fails whichever DDL at whichever step (a refusal by its own data, a
// call lost before it reached the tablet or after it ran there, the Topology stopping at any step
// of the fan-out and restarting), once the Topology has resolved the change every shard holds
// exactly the schema of the Topology's history (the same objects as a fresh replay of it), no
// write fence or pending change is left, a DDL answered success is in the history and one answered
// with an error is not (when the gate answered), and the keyspace accepts the next DDL and writes.

import { evictDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { arm, disarm, type CrashStep, type TabletOp } from "../../topology/failpoints.ts";
import { expectConverged, replayedObjects, settle, shardNames, shardOf, topology, topologyState } from "./ddl-helpers.ts";
import { api } from "./helpers.ts";

const RUNS = 25;

type DdlKind = "create_table" | "create_index" | "unique_index" | "add_column" | "add_not_null" | "drop_index" | "drop_table";

type Fault =
  | { readonly kind: "none" }
  | { readonly kind: "tablet"; readonly op: TabletOp; readonly shard: number; readonly when: "before" | "after"; readonly times: number }
  | { readonly kind: "crash"; readonly step: CrashStep };

interface Scenario {
  readonly shards: number;
  readonly ddl: DdlKind;
  /** Shards (by position) holding rows of t; the first of them also holds a duplicate u. */
  readonly rowShards: readonly number[];
  readonly fault: Fault;
  /** Whether the DDL goes through the gate (which retries) or straight to the Topology. */
  readonly viaGate: boolean;
}

const ddlText: Record<DdlKind, string> = {
  create_table: "CREATE TABLE n (id INTEGER PRIMARY KEY, x TEXT)",
  create_index: "CREATE INDEX t_v ON t (v)",
  unique_index: "CREATE UNIQUE INDEX t_uu ON t (u)",
  add_column: "ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 5",
  add_not_null: "ALTER TABLE t ADD COLUMN z INTEGER NOT NULL",
  drop_index: "DROP INDEX t_u",
  drop_table: "DROP TABLE gone",
};

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.constant<Fault>({ kind: "none" }),
  fc.record({
    kind: fc.constant("tablet" as const),
    op: fc.constantFrom<TabletOp>("prepare", "sync"),
    shard: fc.nat({ max: 3 }),
    when: fc.constantFrom<"before" | "after">("before", "after"),
    times: fc.integer({ min: 1, max: 5 }),
  }),
  fc.record({ kind: fc.constant("crash" as const), step: fc.constantFrom<CrashStep>("recorded", "prepared", "decided", "applied") }),
);

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    shards: fc.integer({ min: 2, max: 4 }),
    ddl: fc.constantFrom<DdlKind>("create_table", "create_index", "unique_index", "add_column", "add_not_null", "drop_index", "drop_table"),
    rowShards: fc.uniqueArray(fc.nat({ max: 3 }), { maxLength: 4 }),
    fault: faultArb,
    viaGate: fc.boolean(),
  })
  .map((s) => ({ ...s, rowShards: s.rowShards.filter((i) => i < s.shards) }));

let n = 0;

async function gateSql(ks: string, text: string, params?: unknown[]): Promise<{ ok: boolean; code?: string }> {
  const r = await api<{ error?: { code: string } }>("POST", "/v1/sql", { keyspace: ks, sql: text, ...(params ? { params } : {}) });
  return r.status === 200 ? { ok: true } : { ok: false, code: r.body.error?.code ?? "?" };
}

async function must(ks: string, text: string, params?: unknown[]): Promise<void> {
  const r = await gateSql(ks, text, params);
  if (!r.ok) throw new Error(`${text} failed with ${r.code}`);
}

/** Ids on each shard, so rows (and the duplicate) land where the scenario says. */
function idsOn(shards: readonly string[], shard: string, count: number): number[] {
  const out: number[] = [];
  for (let id = 1; out.length < count; id++) if (shardOf(shards, id) === shard) out.push(id);
  return out;
}

async function runScenario(s: Scenario): Promise<void> {
  disarm();
  const ks = `fanp${n++}`;
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards: s.shards })).status).toBe(200);
  // Per-shard uniqueness: CREATE UNIQUE INDEX on u is then a plain index on each shard, which
  // the shards holding a duplicate refuse.
  const vschema = {
    sharded: true,
    vindexes: { xxhash: { type: "xxhash" } },
    tables: { t: { column_vindexes: [{ column: "id", name: "xxhash" }], unique: "per_shard" } },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: ks, vschema })).status).toBe(200);
  await must(ks, "CREATE TABLE t (id INTEGER PRIMARY KEY, u INTEGER, v TEXT)");
  await must(ks, "CREATE INDEX t_u ON t (u)");
  await must(ks, "CREATE TABLE gone (id INTEGER PRIMARY KEY)");
  const shards = await shardNames(ks);
  for (const [k, i] of s.rowShards.entries()) {
    const shard = shards[i];
    if (shard === undefined) continue;
    const [a, b] = idsOn(shards, shard, 2);
    // The first shard with rows holds a duplicate u; the others distinct values.
    await must(ks, "INSERT INTO t VALUES (?, ?, 'x'), (?, ?, 'y')", [a, k === 0 ? 0 : 10 * k, b, k === 0 ? 0 : 10 * k + 1]);
  }
  const before = (await topologyState(ks)).history;
  const text = ddlText[s.ddl];
  const f = s.fault;
  if (f.kind === "tablet") arm({ tablet: [{ op: f.op, shard: shards[f.shard % shards.length] ?? "", when: f.when, times: f.times }] });
  if (f.kind === "crash") arm({ crashAt: f.step });

  let answered: boolean | undefined;
  if (s.viaGate) {
    answered = (await gateSql(ks, text)).ok;
  } else {
    const r = await topology().applyDdl({ keyspace: ks, sql: text });
    answered = f.kind === "crash" ? undefined : r.ok;
  }
  disarm();
  if (f.kind === "crash") await evictDurableObject(topology());
  await settle(ks);

  const { history, objects } = await expectConverged(ks);
  const applied = history.length === before.length + 1 && history.at(-1) === text;
  expect(history.slice(0, before.length)).toEqual(before);
  expect(applied || history.length === before.length).toBe(true);
  if (answered !== undefined) expect(applied).toBe(answered);
  expect(await replayedObjects(history)).toEqual(objects);

  // The keyspace is not stuck: the next DDL applies everywhere and writes are not fenced.
  await must(ks, "CREATE TABLE next_t (id INTEGER PRIMARY KEY)");
  await must(ks, "INSERT INTO next_t VALUES (1), (2), (3), (4), (5), (6)");
  const after = await expectConverged(ks);
  expect(after.history.length).toBe(history.length + 1);
}

describe("DDL fan-out under failures (property)", () => {
  afterEach(() => disarm());

  it("every shard ends with the Topology's history, and the keyspace accepts the next DDL", async () => {
    // The seed is printed first, so any run can be replayed (set it here).
    const seed = Date.now() % 2 ** 31;
    console.log(`ddl fan-out property: fast-check seed ${seed}`);
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: RUNS, seed, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false });
  }, 300_000);
});
