// Invariant: whatever the reshard (a split, a merge, or a re-cut of two shards into three, at random
// key boundaries), whatever clients write meanwhile (inserts, updates, deletes of a table sharded
// by an integer key, a TEXT-keyed table and a reference table, and moves of a keyspace-unique
// column) in every phase (copy, running, during the switch, after it, after a reverse), and
// whatever goes wrong underneath (queue parts duplicated, reordered or lost, the pump restarted
// mid-copy and mid-switch, a workflow action failing half-way and being retried), once the
// workflow completes the keyspace holds exactly the rows a model of the acknowledged writes holds,
// each on the shard its key range says (read from each tablet directly), every write was
// acknowledged (none failed for the reshard's sake), and the unique column is still keyspace-wide.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { armWorkflowStep, disarm, type WorkflowStep } from "../../topology/failpoints.ts";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { createVindex } from "../../topology/vindex.ts";
import { armStreamFaults, disarmStreamFaults, type StreamFaults } from "../../tablet/stream-faults.ts";
import { api, sql } from "./helpers.ts";

const RUNS = 6;

/** What can go wrong underneath, as a string union; each run picks some. */
type Transport = "duplicate" | "reorder" | "drop" | "restart";

interface Scenario {
  readonly initial: readonly string[];
  readonly sources: readonly string[];
  readonly targets: readonly string[];
  readonly users: number;
  readonly seed: number;
  /** Transport faults during the copy, and during the switch. */
  readonly copyFaults: readonly Transport[];
  readonly switchFaults: readonly Transport[];
  /** Where a switchtraffic / reversetraffic fails once before its retry (null: it does not). */
  readonly switchFails: WorkflowStep | null;
  readonly reverse: { readonly fails: WorkflowStep | null } | null;
  /** ms of writes after create before the copy faults end. */
  readonly copyMs: number;
}

const hex = (b: number) => b.toString(16).padStart(2, "0");

const plan: fc.Arbitrary<Pick<Scenario, "initial" | "sources" | "targets">> = fc.oneof(
  // split one half of two shards at a random boundary
  fc.tuple(fc.boolean(), fc.integer({ min: 0x10, max: 0x70 })).map(([hi, cut]) => {
    const c = hi ? hex(cut + 0x80) : hex(cut);
    return hi
      ? { initial: ["-80", "80-"], sources: ["80-"], targets: [`80-${c}`, `${c}-`] }
      : { initial: ["-80", "80-"], sources: ["-80"], targets: [`-${c}`, `${c}-80`] };
  }),
  // merge two of three shards
  fc
    .tuple(fc.boolean(), fc.integer({ min: 0x10, max: 0x70 }))
    .map(([hi, cut]) =>
      hi
        ? { initial: ["-80", `80-${hex(cut + 0x80)}`, `${hex(cut + 0x80)}-`], sources: [`80-${hex(cut + 0x80)}`, `${hex(cut + 0x80)}-`], targets: ["80-"] }
        : { initial: [`-${hex(cut)}`, `${hex(cut)}-80`, "80-"], sources: [`-${hex(cut)}`, `${hex(cut)}-80`], targets: ["-80"] },
    ),
  // 2 → 3 at random boundaries
  fc.tuple(fc.integer({ min: 0x20, max: 0x7f }), fc.integer({ min: 0x81, max: 0xe0 })).map(([a, b]) => ({
    initial: ["-80", "80-"],
    sources: ["-80", "80-"],
    targets: [`-${hex(a)}`, `${hex(a)}-${hex(b)}`, `${hex(b)}-`],
  })),
);

const transport = fc.subarray<Transport>(["duplicate", "reorder", "drop", "restart"]);
const step = (kind: "switch" | "reverse") => fc.constantFrom<WorkflowStep | null>(null, `${kind}:drained`, `${kind}:flipped`);

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    plan,
    users: fc.integer({ min: 10, max: 60 }),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
    copyFaults: transport,
    switchFaults: transport,
    switchFails: step("switch"),
    reverse: fc.option(fc.record({ fails: step("reverse") }), { nil: null }),
    copyMs: fc.integer({ min: 0, max: 300 }),
  })
  .map(({ plan: p, ...rest }) => ({ ...p, ...rest }));

function faults(t: readonly Transport[]): StreamFaults {
  const f: StreamFaults = { stallMs: 150 };
  if (t.includes("duplicate")) f.duplicate = 1;
  if (t.includes("reorder")) f.reorder = 3;
  if (t.includes("drop")) f.drop = true;
  if (t.includes("restart")) f.restart = true;
  return f;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small deterministic PRNG (mulberry32) for the writers' choices. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

interface User {
  name: string;
  email: string;
}

/** The rows the acknowledged writes leave, table by table. */
interface Model {
  readonly users: Map<number, User>;
  readonly tags: Map<string, number>;
  readonly countries: Map<string, string>;
}

type Ack = { status: number; body: { error?: { code?: string } } };

async function exec(ks: string, text: string, params: unknown[]): Promise<Ack> {
  return api<{ error?: { code?: string } }>("POST", "/v1/sql", { keyspace: ks, sql: text, params });
}

/**
 * A client writing in a loop on its own keys (ids ≡ `lane` mod 2, tags prefixed by it), keeping
 * the model in step with what was acknowledged. A write meant to break the unique column must
 * answer CONSTRAINT and change nothing; any other failure is recorded.
 */
function writer(ks: string, model: Model, lane: number, seed: number) {
  const pick = rng(seed);
  let stop = false;
  const errors: unknown[] = [];
  let nextId = 10_000 + lane;
  let i = 0;
  const mine = () => [...model.users.keys()].filter((id) => id % 2 === lane);
  const done = (async () => {
    while (!stop) {
      i++;
      const ids = mine();
      const id = ids.length > 0 ? ids[pick(ids.length)] : undefined;
      const op = pick(10);
      let r: Ack;
      if (op <= 2 || id === undefined) {
        const n = nextId;
        nextId += 2;
        const u = { name: `n${i}`, email: `e${n}` };
        r = await exec(ks, "INSERT INTO users (id, name, email) VALUES (?, ?, ?)", [n, u.name, u.email]);
        if (r.status === 200) model.users.set(n, u);
      } else if (op === 3) {
        const name = `n${i}`;
        r = await exec(ks, "UPDATE users SET name = ? WHERE id = ?", [name, id]);
        const u = model.users.get(id);
        if (r.status === 200 && u) u.name = name;
      } else if (op === 4) {
        const email = `e${id}.${i}`;
        r = await exec(ks, "UPDATE users SET email = ? WHERE id = ?", [email, id]);
        const u = model.users.get(id);
        if (r.status === 200 && u) u.email = email;
      } else if (op === 5) {
        const other = ids.find((x) => x !== id);
        const taken = other === undefined ? undefined : model.users.get(other)?.email;
        if (taken === undefined) continue;
        r = await exec(ks, "UPDATE users SET email = ? WHERE id = ?", [taken, id]);
        if (r.status !== 409 || r.body.error?.code !== "CONSTRAINT") errors.push({ op: "steal email", ...r });
        continue;
      } else if (op === 6) {
        r = await exec(ks, "DELETE FROM users WHERE id = ?", [id]);
        if (r.status === 200) model.users.delete(id);
      } else if (op === 7) {
        const tag = `${lane ? "b" : "a"}${pick(40)}`;
        r = await exec(ks, "INSERT INTO tags (tag, n) VALUES (?, ?) ON CONFLICT (tag) DO UPDATE SET n = excluded.n", [tag, i]);
        if (r.status === 200) model.tags.set(tag, i);
      } else if (op === 8) {
        const tag = `${lane ? "b" : "a"}${pick(40)}`;
        r = await exec(ks, "DELETE FROM tags WHERE tag = ?", [tag]);
        if (r.status === 200) model.tags.delete(tag);
      } else {
        if (lane !== 0) continue;
        const code = `c${pick(6)}`;
        r = await exec(ks, "INSERT INTO countries (code, name) VALUES (?, ?) ON CONFLICT (code) DO UPDATE SET name = excluded.name", [code, `k${i}`]);
        if (r.status === 200) model.countries.set(code, `k${i}`);
      }
      if (r.status !== 200) errors.push({ op, ...r });
      await sleep(1);
    }
  })();
  return {
    errors,
    async stop() {
      stop = true;
      await done;
    },
  };
}

type View = { state: string; streams: { id: string; phase: string; lagMs: number }[] };

function workflows(ks: string) {
  const call = (body: Record<string, unknown>) => api<Record<string, unknown>>("POST", "/v1/workflows", { keyspace: ks, workflow: "wf", ...body });
  return {
    call,
    /** An action that may fail once at an armed step: retried until it answers, as the runner would. */
    async retried(action: string): Promise<Record<string, unknown>> {
      for (let n = 0; ; n++) {
        const r = await call({ action });
        if (r.status === 200) return r.body;
        if (n >= 3) throw new Error(`${action}: ${JSON.stringify(r.body)}`);
        // The clients keep writing on whatever state the failed action left before it is retried.
        await sleep(300);
      }
    },
    async until(what: string, ok: (v: View) => boolean): Promise<void> {
      const end = Date.now() + 30_000;
      for (;;) {
        const v = (await api<View>("GET", `/v1/workflows?keyspace=${ks}&workflow=wf`)).body;
        if (ok(v)) return;
        if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
        await sleep(30);
      }
    },
  };
}

const caughtUp = (v: View) => v.state === "running" && v.streams.length > 0 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000);

function shardOfKey(shards: readonly string[], key: number | string): string {
  const ksid = createVindex("xxhash").map(key);
  return shards.find((s) => keyRangeContains(parseKeyRange(s), ksid)) ?? "?";
}

async function setUp(ks: string, s: Scenario, model: Model): Promise<void> {
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards: s.initial })).status).toBe(200);
  await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE)", undefined, ks);
  await sql("CREATE TABLE tags (tag TEXT PRIMARY KEY, n INTEGER)", undefined, ks);
  await sql("CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT)", undefined, ks);
  const vschema = {
    sharded: true,
    vindexes: { xx: { type: "xxhash" } },
    tables: {
      users: { column_vindexes: [{ column: "id", name: "xx" }] },
      tags: { column_vindexes: [{ column: "tag", name: "xx" }] },
      countries: { type: "reference" },
    },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: ks, vschema })).status).toBe(200);
  const rows: unknown[] = [];
  for (let id = 1; id <= s.users; id++) {
    rows.push(id, `u${id}`, `e${id}`);
    model.users.set(id, { name: `u${id}`, email: `e${id}` });
  }
  await sql(`INSERT INTO users (id, name, email) VALUES ${Array.from({ length: s.users }, () => "(?, ?, ?)").join(", ")}`, rows, ks);
  await sql("INSERT INTO tags (tag, n) VALUES ('a1', 1), ('b2', 2), ('zz', 3)", undefined, ks);
  for (const [t, n] of [
    ["a1", 1],
    ["b2", 2],
    ["zz", 3],
  ] as const)
    model.tags.set(t, n);
  await sql("INSERT INTO countries (code, name) VALUES ('c0', 'k0'), ('c1', 'k1')", undefined, ks);
  model.countries.set("c0", "k0").set("c1", "k1");
}

/** Each serving shard's rows, read from its tablet. */
async function tabletRows(ks: string) {
  const topo = await api<{ keyspaces: { name: string; shards: { name: string; tablet: string }[] }[] }>("GET", "/v1/topology");
  const shards = topo.body.keyspaces.find((k) => k.name === ks)?.shards ?? [];
  return Promise.all(
    shards.map(async (sh) => ({
      shard: sh.name,
      ...(await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(sh.tablet)), (_i, state) => {
        const q = <T extends Record<string, SqlStorageValue>>(text: string) => state.storage.sql.exec<T>(text).toArray();
        return {
          users: q<{ id: number; name: string; email: string }>("SELECT id, name, email FROM users ORDER BY id"),
          tags: q<{ tag: string; n: number }>("SELECT tag, n FROM tags ORDER BY tag"),
          countries: q<{ code: string; name: string }>("SELECT code, name FROM countries ORDER BY code"),
        };
      })),
    })),
  );
}

async function check(ks: string, s: Scenario, model: Model): Promise<void> {
  const final = [...s.initial.filter((x) => !s.sources.includes(x)), ...s.targets];
  const held = await tabletRows(ks);
  expect(held.map((h) => h.shard).sort()).toEqual([...final].sort());
  const users: [number, string, string][] = [];
  const tags: [string, number][] = [];
  for (const h of held) {
    for (const u of h.users) {
      expect(shardOfKey(final, u.id), `user ${u.id}`).toBe(h.shard);
      users.push([u.id, u.name, u.email]);
    }
    for (const t of h.tags) {
      expect(shardOfKey(final, t.tag), `tag ${t.tag}`).toBe(h.shard);
      tags.push([t.tag, t.n]);
    }
    expect(
      h.countries.map((c) => [c.code, c.name]),
      `countries on ${h.shard}`,
    ).toEqual([...model.countries].sort());
  }
  users.sort((a, b) => a[0] - b[0]);
  tags.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  expect(users).toEqual([...model.users].map(([id, u]) => [id, u.name, u.email]).sort((a, b) => (a[0] as number) - (b[0] as number)));
  expect(tags).toEqual([...model.tags].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  // The unique column is still checked across shards, and found by its lookup.
  const [some] = [...model.users];
  if (some) {
    const dup = await exec(ks, "INSERT INTO users (id, name, email) VALUES (?, 'dup', ?)", [999_999, some[1].email]);
    expect(dup.body.error?.code).toBe("CONSTRAINT");
    expect((await sql("SELECT id FROM users WHERE email = ?", [some[1].email], ks)).rows).toEqual([[some[0]]]);
  }
}

/** One whole reshard of scenario `s` in keyspace `ks`, under writers and faults. */
async function runScenario(ks: string, s: Scenario): Promise<void> {
  const model: Model = { users: new Map(), tags: new Map(), countries: new Map() };
  await setUp(ks, s, model);
  const wf = workflows(ks);
  const writers = [writer(ks, model, 0, s.seed), writer(ks, model, 1, s.seed + 1)];
  try {
    armStreamFaults(faults(s.copyFaults));
    const created = await wf.call({ action: "create", sourceShards: s.sources, targetShards: s.targets });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    await sleep(s.copyMs);
    armStreamFaults({ stallMs: 150, restart: true });
    await wf.until("copy and catch-up", caughtUp);
    disarmStreamFaults();

    armStreamFaults(faults(s.switchFaults));
    armWorkflowStep(s.switchFails);
    const switched = await wf.retried("switchtraffic");
    expect(switched["state"]).toBe("switched");
    disarm();
    disarmStreamFaults();
    await sleep(50);
    if (s.reverse) {
      armWorkflowStep(s.reverse.fails);
      const reversed = await wf.retried("reversetraffic");
      expect(reversed["state"]).toBe("running");
      disarm();
      await wf.until("forward streams again", caughtUp);
      await sleep(30);
      expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
    }
    await sleep(30);
  } finally {
    disarm();
    disarmStreamFaults();
    for (const w of writers) await w.stop();
  }
  expect((await wf.retried("complete"))["state"]).toBe("completed");
  expect(writers.flatMap((w) => w.errors)).toEqual([]);
  await check(ks, s, model);
}

afterEach(() => {
  disarm();
  disarmStreamFaults();
});

describe("reshard property: every acknowledged write survives any reshard under faults", () => {
  it("holds for random reshards, writes and faults", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        run++;
        await runScenario(`rp${run}`, s);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 240_000);
});

// Counterexamples found, pinned.
describe("reshard property: pinned counterexamples", () => {
  const base: Scenario = {
    initial: ["-80", "80-"],
    sources: ["-80"],
    targets: ["-40", "40-80"],
    users: 30,
    seed: 7,
    copyFaults: [],
    switchFaults: [],
    switchFails: null,
    reverse: null,
    copyMs: 0,
  };

  // The switch's catch undid a switch whose graph had flipped: the reverse streams were deleted,
  // so a later reversetraffic could not drain them.
  it("a switchtraffic failing after its flip is finished by its retry, and reverses", async () => {
    await runScenario("rpin1", { ...base, switchFails: "switch:flipped", reverse: { fails: null } });
  }, 60_000);

  // The reverse's catch left the forward streams it had started from the sources' heads running
  // beside the resumed reverse streams: every write on the targets came back to them.
  it("a reversetraffic failing before its flip leaves streams one way only, and its retry converges", async () => {
    const ks = "rpin2";
    const model: Model = { users: new Map(), tags: new Map(), countries: new Map() };
    await setUp(ks, base, model);
    const wf = workflows(ks);
    expect((await wf.call({ action: "create", sourceShards: base.sources, targetShards: base.targets })).status).toBe(200);
    await wf.until("copy and catch-up", caughtUp);
    expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
    armWorkflowStep("reverse:drained");
    const failed = await wf.call({ action: "reversetraffic" });
    expect(failed.status).not.toBe(200);
    const targets = await Promise.all(
      ["-40", "40-80"].map(async (shard) => {
        const topo = await api<{ workflows: { name: string; targets: { shard: string; tablet: string }[] }[] }>("GET", "/v1/topology");
        const t = topo.body.workflows.find((w) => w.name === "wf")?.targets.find((x) => x.shard === shard);
        return runInDurableObject(env.TABLET.get(env.TABLET.idFromName(t?.tablet ?? "?")), (_i, state) =>
          state.storage.sql.exec<{ id: string; phase: string }>("SELECT id, phase FROM _vt_vreplication").toArray(),
        );
      }),
    );
    expect(targets.flat().filter((s) => s.phase === "copy" || s.phase === "running")).toEqual([]);
    expect((await wf.retried("reversetraffic"))["state"]).toBe("running");
    await wf.until("forward streams again", caughtUp);
    expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
    expect((await wf.retried("complete"))["state"]).toBe("completed");
    await check(ks, base, model);
  }, 60_000);
});
