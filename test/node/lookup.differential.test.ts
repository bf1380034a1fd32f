// Differential tests of lookup vindexes and sequences: random scenarios of INSERT (with or without
// id, NULL id → the sequence), INSERT … SELECT, DELETE, UPDATE and SELECT on `users` (sharded by id,
// email → lookup_unique, name → lookup, id ← user_seq) over 1–4 in-memory SQLite shards
// (fake-cursor.ts), against one SQLite holding every row with `email` UNIQUE. The gate's sequence
// ids are given explicitly on the reference (the fake cursor hands out 1, 2, 3…). Half the
// scenarios also declare `email TEXT UNIQUE` in the table (a keyspace-wide unique key beside the
// vindex). Writes also include ON CONFLICT DO UPDATE (on id, on email, without a target), REPLACE,
// INSERT OR IGNORE / ON CONFLICT DO NOTHING and UPDATEs of email and name (the lookup rows move);
// the gate may refuse only the forms catalogued for it (VD2410–VD2412), changing nothing.
// After every step: users equal the reference's, every row sits on its id's shard, and the lookup
// tables are exactly in step with users (one user_email_idx row per non-NULL email, the set of
// (name, xxhash(id)) for user_name_idx, each on its own shard). LOOKUP_RUNS=2000 runs a longer
// hunt. Counterexamples are pinned as named examples at the end of the file.

import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { QueryResult } from "../../contract/tablet-rpc.ts";
import { toVtError, type VtError } from "../../contract/errors.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import { createVindex } from "../../topology/vindex.ts";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { diffResults, show } from "./result-compare.ts";

const RUNS = Number(process.env["LOOKUP_RUNS"] ?? 150);

const xx = createVindex("xxhash");
const hex = (b: unknown) => Buffer.from(b as Uint8Array).toString("hex");

function makeCluster(shards: number, declared = false): Cluster {
  const cl = createCluster({
    shards,
    vindexes: {
      email_idx: { type: "lookup_unique", params: { table: "user_email_idx", from: "email", to: "keyspace_id" }, owner: "users" },
      name_idx: { type: "lookup", params: { table: "user_name_idx", from: "name", to: "keyspace_id" }, owner: "users" },
    },
    tables: {
      users: {
        create: `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT${declared ? " UNIQUE" : ""}, name TEXT, score INTEGER)`,
        column: "id",
        autoIncrement: { column: "id", sequence: "user_seq" },
        secondary: [
          { column: "email", name: "email_idx" },
          { column: "name", name: "name_idx" },
        ],
      },
      user_email_idx: { create: "CREATE TABLE user_email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", column: "email" },
      user_name_idx: { create: "CREATE TABLE user_name_idx (name TEXT NOT NULL, keyspace_id BLOB NOT NULL, PRIMARY KEY (name, keyspace_id))", column: "name" },
    },
  });
  // The reference: one SQLite where email is UNIQUE (what the lookup_unique vindex enforces).
  if (!declared) cl.reference("CREATE UNIQUE INDEX users_email_unique ON users (email)");
  return cl;
}

// ---------------------------------------------------------------- scenario grammar

type Col = "id" | "email" | "name" | "score";
interface Pred {
  readonly col: Col;
  readonly op: "=" | "IN" | ">";
  readonly values: readonly SqlValue[];
  readonly bind: boolean;
}
interface Row {
  /** NULL: the sequence fills it (ignored when the statement omits id). */
  readonly id: number | null;
  readonly email: string | null;
  readonly name: string | null;
  readonly score: number | null;
}
type Step =
  | { readonly k: "insert"; readonly withId: boolean; readonly rows: readonly Row[]; readonly bind: boolean }
  | { readonly k: "insertSelect"; readonly withId: boolean; readonly keepEmail: boolean; readonly where: Pred }
  | { readonly k: "delete"; readonly where: Pred }
  | { readonly k: "updateScore"; readonly delta: number; readonly where: Pred }
  | { readonly k: "updateLookup"; readonly col: "email" | "name"; readonly value: string | null; readonly where: Pred }
  | { readonly k: "select"; readonly shape: number; readonly where: Pred }
  | { readonly k: "upsert"; readonly rows: readonly Row[]; readonly target: "id" | "email" | "none"; readonly set: number; readonly bind: boolean }
  | { readonly k: "replace"; readonly rows: readonly Row[]; readonly verb: "REPLACE" | "INSERT OR REPLACE"; readonly bind: boolean }
  | { readonly k: "ignore"; readonly rows: readonly Row[]; readonly form: number; readonly bind: boolean };

interface Scenario {
  readonly shards: number;
  /** users declares `email TEXT UNIQUE` (a keyspace-wide unique key too). */
  readonly declared?: boolean;
  readonly steps: readonly Step[];
}

const EMAILS = ["a@x", "b@x", "c@x", "d@x"];
const NAMES = ["ann", "bob", "cyd"];
const emailArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...EMAILS) }, { weight: 1, arbitrary: fc.constant(null) });
const nameArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.constant(null) });
const scoreArb = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.constant(null) });
const idArb = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 2, arbitrary: fc.constant(null) });

function valueArb(col: Col): fc.Arbitrary<SqlValue> {
  if (col === "email") return emailArb;
  if (col === "name") return nameArb;
  if (col === "score") return scoreArb;
  return fc.integer({ min: 0, max: 9 });
}

function predArb(cols: readonly Col[]): fc.Arbitrary<Pred> {
  return fc.constantFrom(...cols).chain((col) =>
    fc.record({
      col: fc.constant(col),
      op: col === "id" || col === "score" ? fc.constantFrom<Pred["op"]>("=", "IN", ">") : fc.constantFrom<Pred["op"]>("=", "IN"),
      values: fc.array(valueArb(col), { minLength: 1, maxLength: 3 }),
      bind: fc.boolean(),
    }),
  );
}

const rowArb: fc.Arbitrary<Row> = fc.record({ id: idArb, email: emailArb, name: nameArb, score: scoreArb });

const SELECT_SHAPES = 8;

/** DO UPDATE actions of the upsert step; the last sets email, which only `(email) … email = excluded.email` may. */
const UPSERT_SETS = [
  "score = excluded.score",
  "score = coalesce(users.score, 0) + coalesce(excluded.score, 10)",
  "score = excluded.score WHERE excluded.score > coalesce(users.score, -1)",
  "email = excluded.email, score = 7",
  "name = excluded.name",
];
/** The skip-a-taken-value forms of the ignore step. */
const IGNORE_FORMS = ["INSERT OR IGNORE", "ON CONFLICT DO NOTHING", "ON CONFLICT (id) DO NOTHING", "ON CONFLICT (email) DO NOTHING"];

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("insert" as const),
      withId: fc.boolean(),
      rows: fc.array(rowArb, { minLength: 1, maxLength: 3 }),
      bind: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("insertSelect" as const),
      withId: fc.boolean(),
      keepEmail: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 4, arbitrary: fc.constant(false) }),
      where: predArb(["id", "email", "name", "score"]),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("delete" as const), where: predArb(["id", "email", "name", "score"]) }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("updateScore" as const), delta: fc.integer({ min: 1, max: 2 }), where: predArb(["id", "email", "name", "score"]) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("updateLookup" as const),
      col: fc.constantFrom<"email" | "name">("email", "name"),
      value: fc.oneof(emailArb, nameArb),
      where: predArb(["id", "email", "name"]),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("select" as const),
      shape: fc.integer({ min: 0, max: SELECT_SHAPES - 1 }),
      where: predArb(["email", "email", "name", "name", "id", "score"]),
    }),
  },
);

const keyedRowArb: fc.Arbitrary<Row> = fc.record({ id: fc.integer({ min: 1, max: 8 }), email: emailArb, name: nameArb, score: scoreArb });
const keyedRowsArb = fc.array(keyedRowArb, { minLength: 1, maxLength: 3 });

const writeArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("upsert" as const),
      rows: keyedRowsArb,
      target: fc.constantFrom<"id" | "email" | "none">("id", "email", "none"),
      set: fc.integer({ min: 0, max: UPSERT_SETS.length - 1 }),
      bind: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("replace" as const),
      rows: keyedRowsArb,
      verb: fc.constantFrom<"REPLACE" | "INSERT OR REPLACE">("REPLACE", "INSERT OR REPLACE"),
      bind: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("ignore" as const),
      rows: keyedRowsArb,
      form: fc.integer({ min: 0, max: IGNORE_FORMS.length - 1 }),
      bind: fc.boolean(),
    }),
  },
);

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  shards: fc.integer({ min: 1, max: 4 }),
  declared: fc.boolean(),
  steps: fc.array(fc.oneof({ weight: 3, arbitrary: stepArb }, { weight: 2, arbitrary: writeArb }), { minLength: 1, maxLength: 12 }),
});

// ---------------------------------------------------------------- rendering

function lit(v: SqlValue): string {
  if (v === null) return "NULL";
  if (typeof v === "string") return `'${v.replace(/'/g, "''")}'`;
  return String(v);
}

/** A value as SQL: a `?` (pushed on params) or a literal. */
function val(v: SqlValue, bind: boolean, params: SqlValue[]): string {
  if (!bind) return lit(v);
  params.push(v);
  return "?";
}

function renderPred(p: Pred, params: SqlValue[]): string {
  if (p.op === "IN") return `${p.col} IN (${p.values.map((v) => val(v, p.bind, params)).join(", ")})`;
  return `${p.col} ${p.op} ${val(p.values[0] ?? null, p.bind, params)}`;
}

interface Query {
  readonly sql: string;
  readonly params: SqlValue[];
}

function q(build: (params: SqlValue[]) => string): Query {
  const params: SqlValue[] = [];
  const sql = build(params);
  return { sql, params };
}

function selectQuery(shape: number, where: Pred): { query: Query; ordered: boolean } {
  const w = (p: SqlValue[]) => renderPred(where, p);
  switch (shape) {
    case 0:
      return { query: q((p) => `SELECT id, email, name, score FROM users WHERE ${w(p)}`), ordered: false };
    case 1:
      return { query: q((p) => `SELECT id, score FROM users WHERE ${w(p)} ORDER BY id DESC`), ordered: true };
    case 2:
      return { query: q((p) => `SELECT count(*) FROM users WHERE ${w(p)}`), ordered: false };
    case 3:
      return { query: q((p) => `SELECT name, count(*), sum(score) FROM users WHERE ${w(p)} GROUP BY name`), ordered: false };
    case 4:
      return { query: q((p) => `SELECT score, count(*) FROM users WHERE ${w(p)} GROUP BY score ORDER BY score`), ordered: true };
    case 5:
      return { query: q((p) => `SELECT email, name FROM users WHERE ${w(p)} ORDER BY score DESC, id`), ordered: true };
    case 6:
      return { query: q((p) => `SELECT id, email FROM users WHERE ${w(p)} AND score >= 1`), ordered: false };
    default:
      return { query: q((p) => `SELECT email, count(*) FROM users WHERE ${w(p)} GROUP BY email ORDER BY email DESC`), ordered: true };
  }
}

// ---------------------------------------------------------------- running

type Outcome = { ok: QueryResult } | { err: VtError };

async function onGate(cl: Cluster, x: Query): Promise<Outcome> {
  try {
    return { ok: await cl.run(x.sql, x.params) };
  } catch (e) {
    return { err: toVtError(e) };
  }
}

function onRef(cl: Cluster, x: Query): Outcome {
  try {
    return { ok: cl.reference(x.sql, x.params) };
  } catch (e) {
    return { err: toVtError(e) };
  }
}

function fmt(x: Query): string {
  return x.params.length > 0 ? `${x.sql}  -- ${show(x.params)}` : x.sql;
}

function outcome(o: Outcome): string {
  return "ok" in o ? `ok (${o.ok.rowsAffected} rows affected, ${o.ok.rows.length} rows)` : `${o.err.code}: ${o.err.message}`;
}

/** A write on the gate and on the reference: both succeed affecting as many rows, or both fail alike. */
function sameWrite(gate: Outcome, ref: Outcome): string | undefined {
  if ("ok" in gate && "ok" in ref)
    return gate.ok.rowsAffected === ref.ok.rowsAffected ? undefined : `rowsAffected ${gate.ok.rowsAffected} != expected ${ref.ok.rowsAffected}`;
  if ("err" in gate && "err" in ref) return gate.err.code === ref.err.code ? undefined : `gate ${gate.err.code} != reference ${ref.err.code}`;
  return `gate ${outcome(gate)}, reference ${outcome(ref)}`;
}

function seqNext(cl: Cluster): number {
  return cl.cursor.sequences.get("user_seq") ?? 1;
}

/** Checks the whole state: users as the reference's, placement, and the lookup tables in step. */
async function checkState(cl: Cluster): Promise<string | undefined> {
  const all = "SELECT id, email, name, score FROM users";
  const exp = cl.reference(all);
  const act = await cl.run(all);
  const d = diffResults(act, exp, { ordered: false });
  if (d) return `users differ: ${d}`;
  const emails: string[] = [];
  const names: string[] = [];
  for (const shard of cl.shardNames) {
    for (const [id] of cl.onShard(shard, "SELECT id FROM users").rows)
      if (cl.shardOf(id ?? null) !== shard) return `users row ${show(id)} on shard ${shard}, not ${cl.shardOf(id ?? null)}`;
    for (const [e, k] of cl.onShard(shard, "SELECT email, keyspace_id FROM user_email_idx").rows) {
      if (cl.shardOf(e ?? null) !== shard) return `user_email_idx row ${show(e)} on shard ${shard}, not ${cl.shardOf(e ?? null)}`;
      emails.push(`${String(e)}=${hex(k)}`);
    }
    for (const [n, k] of cl.onShard(shard, "SELECT name, keyspace_id FROM user_name_idx").rows) {
      if (cl.shardOf(n ?? null) !== shard) return `user_name_idx row ${show(n)} on shard ${shard}, not ${cl.shardOf(n ?? null)}`;
      names.push(`${String(n)}=${hex(k)}`);
    }
  }
  const rows = exp.rows;
  const wantEmails = rows
    .filter((r) => r[1] !== null)
    .map((r) => `${String(r[1])}=${hex(xx.map(r[0] ?? null))}`)
    .sort();
  const wantNames = [...new Set(rows.filter((r) => r[2] !== null).map((r) => `${String(r[2])}=${hex(xx.map(r[0] ?? null))}`))].sort();
  emails.sort();
  names.sort();
  if (show(emails) !== show(wantEmails)) return `user_email_idx out of step:\n  has  ${show(emails)}\n  want ${show(wantEmails)}`;
  if (show(names) !== show(wantNames)) return `user_name_idx out of step:\n  has  ${show(names)}\n  want ${show(wantNames)}`;
  return undefined;
}

// A known limitation (pinned below): statements that would hit it are not run unless LOOKUP_KNOWN=0,
// so the property keeps hunting for bugs.
const KNOWN = process.env["LOOKUP_KNOWN"] !== "0";
let skippedKnown = 0;
function skipKnown(hit: () => boolean): boolean {
  if (!KNOWN || !hit()) return false;
  skippedKnown++;
  return true;
}

/**
 * Known limitation "a multi-shard INSERT that fails on one shard keeps the rows of the others": a
 * multi-row INSERT whose ids span shards, one of them taken (or given twice in the statement),
 * fails but keeps the other shards' rows.
 */
function hitsPartialInsertBug(cl: Cluster, ids: readonly SqlValue[]): boolean {
  if (ids.length < 2) return false;
  const given = ids.filter((id) => id !== null);
  if (new Set(given).size < given.length) return true;
  return ids.some((id) => id !== null && cl.reference("SELECT 1 FROM users WHERE id = ?", [id]).rows.length > 0);
}

/** Whether a row held one of the ids the gate's first attempt would have used (so it took new ones). */
function reusedTaken(cl: Cluster, ids: readonly SqlValue[]): boolean {
  return ids.some((id) => id !== null && cl.reference("SELECT 1 FROM users WHERE id = ?", [id]).rows.length > 0);
}

/** True when the statement fails on the reference (run and rolled back). */
function refFails(cl: Cluster, x: Query): boolean {
  cl.reference("SAVEPOINT probe");
  try {
    cl.reference(x.sql, x.params);
    return false;
  } catch {
    return true;
  } finally {
    cl.reference("ROLLBACK TO probe");
    cl.reference("RELEASE probe");
  }
}

/** Runs one step; answers what went wrong, if anything. `log` gets the statements as run. */
async function runStep(cl: Cluster, s: Step, index: number, log: string[], declared = false): Promise<string | undefined> {
  switch (s.k) {
    case "insert": {
      const start = seqNext(cl);
      const need = s.rows.filter((r) => !s.withId || r.id === null).length;
      const gateQ = q((p) => {
        const cols = s.withId ? "id, email, name, score" : "email, name, score";
        const tuples = s.rows.map((r) => `(${[...(s.withId ? [r.id] : []), r.email, r.name, r.score].map((v) => val(v, s.bind, p)).join(", ")})`);
        return `INSERT INTO users (${cols}) VALUES ${tuples.join(", ")}`;
      });
      const idsFrom = (first: number) => {
        let j = 0;
        return s.rows.map((r) => (!s.withId || r.id === null ? first + j++ : r.id));
      };
      const refOf = (ids: readonly SqlValue[]) =>
        q(
          (p) =>
            `INSERT INTO users (id, email, name, score) VALUES ${s.rows.map((r, i) => `(${[ids[i] ?? null, r.email, r.name, r.score].map((v) => val(v, s.bind, p)).join(", ")})`).join(", ")}`,
        );
      if (skipKnown(() => hitsPartialInsertBug(cl, idsFrom(start)))) return undefined;
      log.push(`gate: ${fmt(gateQ)}`);
      const gate = await onGate(cl, gateQ);
      // The ids of the gate's last attempt (an id taken meanwhile makes it take new ones past the table's max).
      const used = seqNext(cl) - start;
      if (used < need || (used > need && !reusedTaken(cl, idsFrom(start)))) return `sequence handed out ${used} ids for ${need} rows`;
      const refQ = refOf(idsFrom(seqNext(cl) - need));
      log.push(`  ref: ${fmt(refQ)}`);
      const ref = onRef(cl, refQ);
      return sameWrite(gate, ref);
    }
    case "insertSelect": {
      const off = 100 * (index + 1);
      const emailExpr = s.keepEmail ? "email" : `'c${off}-' || email`;
      const start = seqNext(cl);
      const gateQ = q((p) =>
        s.withId
          ? `INSERT INTO users (id, email, name, score) SELECT id + ${off}, ${emailExpr}, name, score FROM users WHERE ${renderPred(s.where, p)}`
          : `INSERT INTO users (email, name, score) SELECT ${emailExpr}, name, score FROM users WHERE ${renderPred(s.where, p)} ORDER BY id`,
      );
      const countQ = q((p) => `SELECT count(*) FROM users WHERE ${renderPred(s.where, p)}`);
      const need = s.withId ? 0 : Number(cl.reference(countQ.sql, countQ.params).rows[0]?.[0] ?? 0);
      if (
        skipKnown(() => {
          const src = q(
            (p) =>
              `SELECT ${s.withId ? `id + ${off}` : `${start - 1} + row_number() OVER (ORDER BY id)`}, ${emailExpr}, name FROM users WHERE ${renderPred(s.where, p)}`,
          );
          const rows = cl.reference(src.sql, src.params).rows;
          return hitsPartialInsertBug(
            cl,
            rows.map((r) => r[0] ?? null),
          );
        })
      )
        return undefined;
      log.push(`gate: ${fmt(gateQ)}`);
      const gate = await onGate(cl, gateQ);
      const used = seqNext(cl) - start;
      if (used < need && !(used === 0 && "err" in gate)) return `sequence handed out ${used} ids for ${need} rows`;
      const refFrom = (first: number) =>
        s.withId
          ? gateQ
          : q(
              (p) =>
                `INSERT INTO users (id, email, name, score) SELECT ${first - 1} + row_number() OVER (ORDER BY id), ${emailExpr}, name, score FROM users WHERE ${renderPred(s.where, p)} ORDER BY id`,
            );
      const refQ = refFrom(used > need ? seqNext(cl) - need : start);
      if (refQ !== gateQ) log.push(`  ref: ${fmt(refQ)}`);
      const ref = onRef(cl, refQ);
      return sameWrite(gate, ref);
    }
    case "delete": {
      const x = q((p) => `DELETE FROM users WHERE ${renderPred(s.where, p)}`);
      log.push(`both: ${fmt(x)}`);
      return sameWrite(await onGate(cl, x), onRef(cl, x));
    }
    case "updateScore": {
      const x = q((p) => `UPDATE users SET score = score + ${s.delta} WHERE ${renderPred(s.where, p)}`);
      log.push(`both: ${fmt(x)}`);
      return sameWrite(await onGate(cl, x), onRef(cl, x));
    }
    case "updateLookup": {
      const x = q((p) => `UPDATE users SET ${s.col} = ${lit(s.value)}, score = 0 WHERE ${renderPred(s.where, p)}`);
      log.push(`both: ${fmt(x)}`);
      return sameWrite(await onGate(cl, x), onRef(cl, x));
    }
    case "upsert":
    case "replace":
    case "ignore": {
      const x = q((p) => {
        const tuples = s.rows.map((r) => `(${[r.id, r.email, r.name, r.score].map((v) => val(v, s.bind, p)).join(", ")})`).join(", ");
        const head = s.k === "replace" ? s.verb : s.k === "ignore" && s.form === 0 ? "INSERT OR IGNORE" : "INSERT";
        let tail = "";
        if (s.k === "upsert") tail = ` ON CONFLICT${s.target === "none" ? "" : ` (${s.target})`} DO UPDATE SET ${UPSERT_SETS[s.set] ?? ""}`;
        if (s.k === "ignore" && s.form > 0) tail = ` ${IGNORE_FORMS[s.form] ?? ""}`;
        return `${head} INTO users (id, email, name, score) VALUES ${tuples}${tail}`;
      });
      // Forms the gate refuses by design: a conflict found only through the lookup vindex
      // (email not declared UNIQUE), a DO UPDATE of a lookup column, rows without a target
      // sharing a value or meeting several rows.
      const allowed = new Set<string>();
      if (s.k === "upsert") {
        if (!declared && s.target !== "id") allowed.add("VD2411");
        if (s.set >= 3 && !(s.set === 3 && s.target === "email")) allowed.add("VD2410");
        if (s.target === "none") allowed.add("VD2412");
      }
      if (s.k === "ignore" && s.form === 3 && !declared) allowed.add("VD2411");
      // A statement of several rows failing in SQLite (all or nothing) keeps other shards' rows on the gate: the documented limit.
      if (skipKnown(() => s.rows.length > 1 && refFails(cl, x))) return undefined;
      log.push(`both: ${fmt(x)}`);
      const gate = await onGate(cl, x);
      if ("err" in gate && gate.err.code === "UNSUPPORTED") {
        const id = (gate.err as VtError & { id?: string }).id ?? "";
        return allowed.has(id) ? undefined : `gate refused ${id}: ${gate.err.message}`;
      }
      return sameWrite(gate, onRef(cl, x));
    }
    case "select": {
      const { query, ordered } = selectQuery(s.shape, s.where);
      log.push(`both: ${fmt(query)}`);
      const gate = await onGate(cl, query);
      const ref = onRef(cl, query);
      if ("ok" in gate && "ok" in ref) {
        const d = diffResults(gate.ok, ref.ok, { ordered });
        return d ? `result differs: ${d}` : undefined;
      }
      return `gate ${outcome(gate)}, reference ${outcome(ref)}`;
    }
  }
}

async function runScenario(sc: Scenario): Promise<void> {
  const cl = makeCluster(sc.shards, sc.declared);
  const log: string[] = [`-- ${sc.shards} shard(s)${sc.declared ? ", email declared UNIQUE" : ""}`];
  try {
    for (let i = 0; i < sc.steps.length; i++) {
      const s = sc.steps[i];
      if (s === undefined) continue;
      const bad = (await runStep(cl, s, i, log, sc.declared)) ?? (await checkState(cl));
      if (bad) throw new Error(`${bad}\nstatements:\n  ${log.join("\n  ")}`);
    }
  } finally {
    cl.close();
  }
}

describe("lookup vindexes and sequences differential: N shards vs one SQLite", () => {
  it(
    "writes keep the lookups in step and reads by email / name answer as one SQLite does",
    async () => {
      await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: RUNS });
      if (skippedKnown > 0)
        console.log(
          `lookup differential: ${skippedKnown} statement(s) skipped: a multi-shard INSERT that fails keeps other shards' rows (a documented limit; LOOKUP_KNOWN=0 runs them)`,
        );
    },
    Math.max(120_000, RUNS * 120),
  );
});

// ---------------------------------------------------------------- examples

let cluster: Cluster | undefined;
afterEach(() => {
  cluster?.close();
  cluster = undefined;
});

function fresh(shards: number): Cluster {
  cluster = makeCluster(shards);
  return cluster;
}

describe("lookup vindexes and sequences differential: examples", () => {
  it("sequence ids, a duplicate email in one INSERT, DELETE by name, reads by email and name", async () => {
    const cl = fresh(3);
    const log: string[] = [];
    const steps: Step[] = [
      {
        k: "insert",
        withId: false,
        bind: true,
        rows: [
          { id: null, email: "a@x", name: "ann", score: 1 },
          { id: null, email: null, name: "ann", score: 2 },
        ],
      },
      {
        k: "insert",
        withId: true,
        bind: false,
        rows: [
          { id: null, email: "b@x", name: "bob", score: null },
          { id: 7, email: "c@x", name: null, score: 0 },
        ],
      },
      {
        k: "insert",
        withId: true,
        bind: false,
        rows: [
          { id: 8, email: "d@x", name: null, score: 0 },
          { id: 9, email: "d@x", name: null, score: 0 },
        ],
      },
      { k: "select", shape: 3, where: { col: "name", op: "IN", values: ["ann", "bob"], bind: true } },
      { k: "delete", where: { col: "name", op: "=", values: ["ann"], bind: false } },
      { k: "insertSelect", withId: false, keepEmail: false, where: { col: "score", op: ">", values: [-1], bind: true } },
      { k: "select", shape: 5, where: { col: "email", op: "IN", values: ["b@x", "c@x", "c500-b@x"], bind: false } },
    ];
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i];
      if (s === undefined) continue;
      const bad = (await runStep(cl, s, i, log)) ?? (await checkState(cl));
      expect(bad, log.join("\n")).toBeUndefined();
    }
  });
});

// Gate bugs the property found, each with its shrunk counterexample (all fixed), and one known limitation. The
// gate is fixed.
describe("lookup vindexes and sequences differential: gate bugs found", () => {
  // Was a bug, fixed (found by fast-check, shrunk): an INSERT that fails on a duplicate id deletes the
  // existing row's lookup rows. Shrunk counterexample (1 shard):
  //   INSERT INTO users (id, email, name, score) VALUES (1, 'a@x', 'ann', 0)
  //   INSERT INTO users (email, name, score) VALUES (NULL, 'ann', NULL)   -- user_seq hands out id 1
  // The second fails with CONSTRAINT on both sides (users.id), but afterwards user_name_idx is empty
  // instead of holding ('ann', xxhash(1)): the gate's cleanup of the failed owner INSERT ran
  // DELETE FROM user_name_idx WHERE name = 'ann' AND keyspace_id = xxhash(1), a row the INSERT had
  // not added (it was already there, row 1's). The same for the unique email lookup:
  // INSERT … VALUES (1, 'a@x', NULL) deletes ('a@x', xxhash(1)). Reads by the column then miss row 1.
  // Since the sequence skips ids rows already hold, the INSERT's first attempt still fails (and
  // cleans up) as above, then succeeds with the next free id.
  it("a failed INSERT with a duplicate id (via the sequence) keeps the existing row's name lookup (was a bug)", async () => {
    const cl = fresh(1);
    await cl.run("INSERT INTO users (id, email, name, score) VALUES (1, 'a@x', 'ann', 0)");
    cl.reference("INSERT INTO users (id, email, name, score) VALUES (1, 'a@x', 'ann', 0)");
    const r = await cl.run("INSERT INTO users (email, name, score) VALUES (NULL, 'ann', NULL) RETURNING id");
    expect(r.rows).toEqual([[2]]);
    cl.reference("INSERT INTO users (id, email, name, score) VALUES (2, NULL, 'ann', NULL)");
    expect(await checkState(cl)).toBeUndefined();
    expect((await cl.run("SELECT id FROM users WHERE name = 'ann' ORDER BY id")).rows).toEqual([[1], [2]]);
  });

  it("a failed INSERT with a duplicate explicit id keeps the existing row's email lookup (was a bug)", async () => {
    const cl = fresh(2);
    await cl.run("INSERT INTO users (id, email, name) VALUES (1, 'a@x', 'ann')");
    cl.reference("INSERT INTO users (id, email, name) VALUES (1, 'a@x', 'ann')");
    await expect(cl.run("INSERT INTO users (id, email, name) VALUES (1, 'a@x', NULL)")).rejects.toMatchObject({ code: "CONSTRAINT" });
    expect(await checkState(cl)).toBeUndefined();
    expect((await cl.run("SELECT id FROM users WHERE email = 'a@x'")).rows).toEqual([[1]]);
  });

  // Was a bug, fixed (found by fast-check, shrunk; 1 shard):
  //   INSERT INTO users (email, name, score) VALUES ('d@x', 'ann', 0)                 -- id 1
  //   INSERT INTO users (email, name, score) VALUES ('a@x', NULL, 0), ('d@x', NULL, 0) -- ids 2, 3
  // The second fails with CONSTRAINT on both sides ('d@x' is taken) and writes no users row, but
  // user_email_idx keeps ('a@x', xxhash(2)): expected only ('d@x', xxhash(1)). (Reads stay right —
  // the dangling row points at a shard without the row, and a later INSERT takes it over — but the
  // lookup table is not in step, contrary to "refuses a duplicate and writes nothing".)
  it("a multi-row INSERT refused on a taken email leaves no lookup rows for its other rows (was a bug)", async () => {
    const cl = fresh(1);
    await cl.run("INSERT INTO users (email, name, score) VALUES ('d@x', 'ann', 0)");
    cl.reference("INSERT INTO users (id, email, name, score) VALUES (1, 'd@x', 'ann', 0)");
    await expect(cl.run("INSERT INTO users (email, name, score) VALUES ('a@x', NULL, 0), ('d@x', NULL, 0)")).rejects.toMatchObject({ code: "CONSTRAINT" });
    expect(() => cl.reference("INSERT INTO users (id, email, name, score) VALUES (2, 'a@x', NULL, 0), (3, 'd@x', NULL, 0)")).toThrow();
    expect(await checkState(cl)).toBeUndefined();
  });

  // Known limitation, documented (found by fast-check, shrunk; 2 shards):
  //   INSERT INTO users (id, email, name, score) VALUES (1, 'c@x', 'ann', NULL)
  //   INSERT INTO users (email, name, score) VALUES ('a@x', 'bob', 0), (NULL, 'ann', 0), ('b@x', 'ann', 0)
  //     -- user_seq hands out ids 1, 2, 3; the reference runs it with those ids explicitly
  // Both fail with CONSTRAINT (users.id 1 is taken), but the gate keeps row (3, 'b@x', 'ann', 0),
  // written on the other shard: users holds [1, 3], SQLite's one statement wrote nothing ([1]).
  // Below the same without lookups or the sequence: a multi-row INSERT across shards is not atomic.
  // Also found: VALUES (NULL, …), (NULL, …), (2, …) after id 1 exists — the sequence gives 2, 3, so
  // id 2 is given twice; the statement fails, and row 3 (the other shard) is kept.
  it("known limitation: a multi-row INSERT failing on one shard keeps the other shards' rows, and says which", async () => {
    const cl = fresh(2);
    expect(cl.shardOf(1)).not.toBe(cl.shardOf(3));
    await cl.run("INSERT INTO users (id, email, name, score) VALUES (1, 'c@x', 'ann', NULL)");
    // Shards commit on their own (README, Limits): the error names the shards that did commit.
    const err = await cl.run("INSERT INTO users (id, score) VALUES (1, 0), (3, 0)").then(
      () => undefined,
      (e: unknown) => e as { code?: string; committedShards?: string[]; failedShard?: string },
    );
    expect(err?.code).toBe("CONSTRAINT");
    expect(err?.committedShards).toEqual([cl.shardOf(3)]);
    expect(err?.failedShard).toBe(cl.shardOf(1));
    expect((await cl.run("SELECT id FROM users ORDER BY id")).rows).toEqual([[1], [3]]);
  });
});
