// Invariant: whichever shard fails whichever write at whichever point (the call lost before it
// reached the tablet, or the tablet applied it and the answer was lost), every statement answers
// success, or changes nothing, or says exactly which shards committed (`committedShards`, with
// `applied: "unknown"` naming a shard whose outcome the gate could not know); and every shard then
// holds exactly what a model built from those answers holds, each row on the shard of its vindex
// value, with ids and keyspace-wide unique values never held twice. Without a fault firing, the
// answer is the one SQLite would give (success exactly when no key is taken).

import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { armWrites, disarmWrites, firedWrites } from "../../gate/failpoints.ts";
import { shardNames, shardOf, tablet } from "./ddl-helpers.ts";
import { api } from "./helpers.ts";

const RUNS = 20;

type Op =
  | { readonly k: "tInsert"; readonly rows: readonly (readonly [number, number])[] }
  | { readonly k: "tUpdate"; readonly ids: readonly number[]; readonly delta: number }
  | { readonly k: "tUpdateAll"; readonly min: number; readonly delta: number }
  | { readonly k: "tDelete"; readonly ids: readonly number[] }
  | { readonly k: "uInsert"; readonly rows: readonly (readonly [number, string | null])[] }
  | { readonly k: "uDelete"; readonly ids: readonly number[] }
  | { readonly k: "pInsert"; readonly rows: readonly (readonly [number, number])[] }
  | { readonly k: "tx"; readonly id: number; readonly v: number };

interface Fault {
  readonly shard: number;
  readonly when: "before" | "after";
  /** Matching write calls that pass before the one that fails. */
  readonly skip: number;
}

interface Scenario {
  readonly shards: number;
  readonly steps: readonly { readonly op: Op; readonly fault: Fault | null }[];
}

const id = fc.integer({ min: 1, max: 12 });
const email = fc.constantFrom<string | null>("a@x", "b@x", "c@x", "d@x", null);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    k: fc.constant("tInsert" as const),
    rows: fc.uniqueArray(fc.tuple(id, fc.integer({ min: 0, max: 9 })), { minLength: 1, maxLength: 4, selector: (r) => r[0] }),
  }),
  fc.record({ k: fc.constant("tUpdate" as const), ids: fc.uniqueArray(id, { minLength: 1, maxLength: 4 }), delta: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ k: fc.constant("tUpdateAll" as const), min: fc.integer({ min: 0, max: 9 }), delta: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ k: fc.constant("tDelete" as const), ids: fc.uniqueArray(id, { minLength: 1, maxLength: 4 }) }),
  fc.record({ k: fc.constant("uInsert" as const), rows: fc.array(fc.tuple(id, email), { minLength: 1, maxLength: 3 }) }),
  fc.record({ k: fc.constant("uDelete" as const), ids: fc.uniqueArray(id, { minLength: 1, maxLength: 3 }) }),
  fc.record({
    k: fc.constant("pInsert" as const),
    rows: fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 9 })), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ k: fc.constant("tx" as const), id, v: fc.integer({ min: 0, max: 9 }) }),
);
const faultArb: fc.Arbitrary<Fault | null> = fc.option(
  fc.record({ shard: fc.nat({ max: 3 }), when: fc.constantFrom<"before" | "after">("before", "after"), skip: fc.nat({ max: 2 }) }),
  { freq: 3 },
);
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  shards: fc.integer({ min: 2, max: 4 }),
  steps: fc.array(fc.record({ op: opArb, fault: faultArb }), { minLength: 1, maxLength: 8 }),
});

/** What the keyspace holds (p's ids are whatever the sequence gave: the model keeps (a, w) pairs). */
interface Model {
  t: Map<number, number>;
  u: Map<number, string | null>;
  p: string[];
}

const clone = (m: Model): Model => ({ t: new Map(m.t), u: new Map(m.u), p: [...m.p] });

interface Answer {
  readonly ok: boolean;
  readonly code?: string;
  readonly committedShards?: readonly string[];
  readonly failedShard?: string;
  readonly unknownShards?: readonly string[];
  readonly applied?: string;
  readonly shard?: string;
}

async function call(path: string, body: unknown): Promise<Answer> {
  const r = await api<{ error?: Record<string, unknown> }>("POST", path, body);
  if (r.status === 200) return { ok: true };
  return { ok: false, ...(r.body.error as object) } as Answer;
}

/** The statement of an op (tx: a transactional batch of two statements on one row). */
function request(ks: string, op: Op): { path: string; body: unknown } {
  const sql = (text: string, params: unknown[] = []) => ({ path: "/v1/sql", body: { keyspace: ks, sql: text, params } });
  switch (op.k) {
    case "tInsert":
      return sql(`INSERT INTO t (id, v) VALUES ${op.rows.map(() => "(?, ?)").join(", ")}`, op.rows.flat());
    case "tUpdate":
      return sql(`UPDATE t SET v = v + ${op.delta} WHERE id IN (${op.ids.join(", ")})`);
    case "tUpdateAll":
      return sql(`UPDATE t SET v = v + ${op.delta} WHERE v >= ${op.min}`);
    case "tDelete":
      return sql(`DELETE FROM t WHERE id IN (${op.ids.join(", ")})`);
    case "uInsert":
      return sql(`INSERT INTO u (id, email) VALUES ${op.rows.map(() => "(?, ?)").join(", ")}`, op.rows.flat());
    case "uDelete":
      return sql(`DELETE FROM u WHERE id IN (${op.ids.join(", ")})`);
    case "pInsert":
      return sql(`INSERT INTO p (a, w) VALUES ${op.rows.map(() => "(?, ?)").join(", ")}`, op.rows.flat());
    case "tx":
      return {
        path: "/v1/batch",
        body: {
          keyspace: ks,
          transaction: true,
          statements: [
            { sql: "INSERT INTO t (id, v) VALUES (?, ?)", params: [op.id, op.v] },
            { sql: "UPDATE t SET v = v + 100 WHERE id = ?", params: [op.id] },
          ],
        },
      };
  }
}

/** Whether one SQLite would refuse the statement (a key it writes is taken, or given twice). */
function refused(m: Model, op: Op): boolean {
  switch (op.k) {
    case "tInsert":
      return op.rows.some(([i]) => m.t.has(i));
    case "uInsert": {
      const ids = op.rows.map(([i]) => i);
      const emails = op.rows.flatMap(([, e]) => (e === null ? [] : [e]));
      const taken = new Set([...m.u.values()].filter((e) => e !== null));
      return new Set(ids).size < ids.length || ids.some((i) => m.u.has(i)) || new Set(emails).size < emails.length || emails.some((e) => taken.has(e));
    }
    case "tx":
      return m.t.has(op.id);
    default:
      return false;
  }
}

/**
 * The op applied on the shards in `on` only (each shard all or nothing); undefined when a shard
 * in `on` could not have committed its part (a key of its rows is taken; for u's emails, checked
 * before any shard writes, anywhere).
 */
function applyOn(m: Model, op: Op, shards: readonly string[], on: ReadonlySet<string>): Model | undefined {
  const here = (v: number) => on.has(shardOf(shards, v));
  const out = clone(m);
  switch (op.k) {
    case "tInsert":
      if (op.rows.some(([i]) => here(i) && m.t.has(i))) return undefined;
      for (const [i, v] of op.rows) if (here(i)) out.t.set(i, v);
      return out;
    case "tUpdate":
      for (const i of op.ids) if (here(i) && m.t.has(i)) out.t.set(i, (m.t.get(i) ?? 0) + op.delta);
      return out;
    case "tUpdateAll":
      for (const [i, v] of m.t) if (here(i) && v >= op.min) out.t.set(i, v + op.delta);
      return out;
    case "tDelete":
      for (const i of op.ids) if (here(i)) out.t.delete(i);
      return out;
    case "uInsert": {
      const mine = op.rows.filter(([i]) => here(i));
      if (mine.length === 0) return out;
      const emails = op.rows.flatMap(([, e]) => (e === null ? [] : [e]));
      // An email held by another row is refused before anything is written; one the row of the
      // same id holds is that row's own (its lookup row names the same keyspace id), so the id,
      // taken on its shard, refuses that shard's part alone.
      const holder = new Map([...m.u].flatMap(([i, e]) => (e === null ? [] : [[e, i] as const])));
      const takenByOther = op.rows.some(([i, e]) => e !== null && holder.has(e) && holder.get(e) !== i);
      if (new Set(emails).size < emails.length || takenByOther) return undefined;
      const ids = mine.map(([i]) => i);
      if (new Set(ids).size < ids.length || ids.some((i) => m.u.has(i))) return undefined;
      for (const [i, e] of mine) out.u.set(i, e);
      return out;
    }
    case "uDelete":
      for (const i of op.ids) if (here(i)) out.u.delete(i);
      return out;
    case "pInsert":
      for (const [a, w] of op.rows) if (here(a)) out.p.push(`${a}:${w}`);
      return out;
    case "tx":
      if (!here(op.id)) return out;
      if (m.t.has(op.id)) return undefined;
      out.t.set(op.id, op.v + 100);
      return out;
  }
}

/** Every shard's rows of t, u and p, each checked to be on the shard of its vindex value. */
async function readShards(ks: string, shards: readonly string[]): Promise<Model> {
  const m: Model = { t: new Map(), u: new Map(), p: [] };
  const pIds = new Set<number>();
  for (const s of shards) {
    const rows = await runInDurableObject(tablet(ks, s), (_i, state) => {
      const q = (text: string) =>
        state.storage.sql
          .exec(text)
          .toArray()
          .map((r) => Object.values(r));
      return { t: q("SELECT id, v FROM t"), u: q("SELECT id, email FROM u"), p: q("SELECT id, a, w FROM p") };
    });
    for (const [i, v] of rows.t) {
      expect(shardOf(shards, i as number), `t ${String(i)} on ${s}`).toBe(s);
      expect(m.t.has(i as number), `t id ${String(i)} twice`).toBe(false);
      m.t.set(i as number, v as number);
    }
    for (const [i, e] of rows.u) {
      expect(shardOf(shards, i as number), `u ${String(i)} on ${s}`).toBe(s);
      m.u.set(i as number, e as string | null);
    }
    for (const [i, a, w] of rows.p) {
      expect(shardOf(shards, a as number), `p ${String(i)} on ${s}`).toBe(s);
      expect(pIds.has(i as number), `p id ${String(i)} given twice`).toBe(false);
      pIds.add(i as number);
      m.p.push(`${String(a)}:${String(w)}`);
    }
  }
  const emails = [...m.u.values()].filter((e) => e !== null);
  expect(new Set(emails).size, `an email held twice: ${emails.join(", ")}`).toBe(emails.length);
  m.p.sort();
  return m;
}

const same = (a: Model, b: Model) =>
  JSON.stringify([[...a.t].sort(), [...a.u].sort(), [...a.p].sort()]) === JSON.stringify([[...b.t].sort(), [...b.u].sort(), [...b.p].sort()]);

let n = 0;

async function runScenario(sc: Scenario): Promise<void> {
  disarmWrites();
  const ks = `wfp${n++}`;
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards: sc.shards })).status).toBe(200);
  const vschema = {
    sharded: true,
    vindexes: { xx: { type: "xxhash" } },
    tables: {
      t: { column_vindexes: [{ column: "id", name: "xx" }] },
      u: { column_vindexes: [{ column: "id", name: "xx" }] },
      p: { column_vindexes: [{ column: "a", name: "xx" }] },
    },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: ks, vschema })).status).toBe(200);
  for (const ddl of [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
    "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT UNIQUE)",
    "CREATE TABLE p (id INTEGER PRIMARY KEY, a INTEGER NOT NULL, w INTEGER)",
  ]) {
    expect((await call("/v1/sql", { keyspace: ks, sql: ddl })).ok).toBe(true);
  }
  const shards = await shardNames(ks);
  let model: Model = { t: new Map(), u: new Map(), p: [] };
  const log: string[] = [];
  for (const { op, fault } of sc.steps) {
    const target = fault ? shards[fault.shard % shards.length] : undefined;
    if (fault && target) armWrites([{ keyspace: ks, shard: target, when: fault.when, skip: fault.skip, times: 1 }]);
    const { path, body } = request(ks, op);
    const answer = await call(path, body);
    const fired = firedWrites();
    disarmWrites();
    log.push(`${JSON.stringify(op)} fault ${JSON.stringify(fault)} fired ${fired} → ${JSON.stringify(answer)}`);
    const committed = new Set(answer.ok ? shards : (answer.committedShards ?? []));
    const unknown = new Set([...(answer.unknownShards ?? []), ...(answer.applied === "unknown" && answer.shard ? [answer.shard] : [])]);
    const candidates: Model[] = [];
    const base = applyOn(model, op, shards, committed);
    if (fired === 0) {
      // No fault fired: the answer is SQLite's.
      expect(answer.ok, `${log.join("\n")}`).toBe(!refused(model, op));
    }
    if (base) candidates.push(base);
    if (!answer.ok && committed.size === 0 && unknown.size === 0) candidates.push(model);
    for (const s of unknown) {
      const withIt = applyOn(model, op, shards, new Set([...committed, s]));
      if (withIt) candidates.push(withIt);
    }
    const actual = await readShards(ks, shards);
    const match = candidates.find((c) => same(c, actual));
    if (!match) {
      throw new Error(
        `shards hold ${JSON.stringify([[...actual.t], [...actual.u], actual.p])}, the answers allow ${candidates.map((c) => JSON.stringify([[...c.t], [...c.u], c.p])).join(" or ")}\n${log.join("\n")}`,
      );
    }
    model = match;
  }
}

describe("writes under a failing shard (property)", () => {
  afterEach(() => disarmWrites());

  // Pinned from a counterexample: the DELETE committed on every shard, then removing the unique
  // key's system-table row failed, and the answer said nothing had committed.
  for (const when of ["before", "after"] as const) {
    for (const skip of [0, 1, 2]) {
      it(`a DELETE whose lookup cleanup fails (${when}, skip ${skip}) still answers what it committed`, async () => {
        await runScenario({
          shards: 2,
          steps: [
            { op: { k: "uInsert", rows: [[7, "b@x"]] }, fault: null },
            { op: { k: "uDelete", ids: [9, 7] }, fault: { shard: 0, when, skip } },
            { op: { k: "uInsert", rows: [[8, "b@x"]] }, fault: null },
          ],
        });
      });
    }
  }

  // Pinned (seed 1061187672): an INSERT of an existing id with the email that same row holds, and
  // a new row on the other shard. The email is the row's own, so nothing refuses the statement
  // before the write; the id refuses its shard's part and the other shard's row commits.
  it("an INSERT repeating an existing row (its own email) commits the other shard's row and says so", async () => {
    await runScenario({
      shards: 2,
      steps: [
        { op: { k: "uInsert", rows: [[9, "b@x"]] }, fault: null },
        {
          op: {
            k: "uInsert",
            rows: [
              [9, "b@x"],
              [1, "a@x"],
            ],
          },
          fault: null,
        },
      ],
    });
  });

  it("each write answers success, nothing, or exactly what it committed, and the shards hold what the answers say", async () => {
    const seed = Date.now() % 2 ** 31;
    console.log(`write-fault property: fast-check seed ${seed}`);
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: RUNS, seed, interruptAfterTimeLimit: 90_000, markInterruptAsFailure: false });
  }, 300_000);
});
