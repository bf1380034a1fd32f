// The harness of the resharding tests: a keyspace with a table sharded by an integer key (with a
// keyspace-unique column), a TEXT-keyed table and a reference table; clients writing on their own
// keys while a model follows what was acknowledged; workflow calls; and the check that each tablet
// holds exactly the model's rows of its key range.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { createVindex } from "../../topology/vindex.ts";
import { api, sql } from "./helpers.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small deterministic PRNG (mulberry32) for the writers' choices. */
export function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

export interface User {
  name: string;
  email: string;
}

/** The rows the acknowledged writes leave, table by table. */
export interface Model {
  readonly users: Map<number, User>;
  readonly tags: Map<string, number>;
  readonly countries: Map<string, string>;
}

export type Ack = { status: number; body: { error?: { code?: string } } };

export async function exec(ks: string, text: string, params: unknown[]): Promise<Ack> {
  return api<{ error?: { code?: string } }>("POST", "/v1/sql", { keyspace: ks, sql: text, params });
}

/**
 * A client writing in a loop on its own keys (ids ≡ `lane` mod 2, tags prefixed by it), keeping
 * the model in step with what was acknowledged. A write meant to break the unique column must
 * answer CONSTRAINT and change nothing; any other failure is recorded.
 */
export function writer(ks: string, model: Model, lane: number, seed: number) {
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

export type View = { state: string; streams: { id: string; phase: string; lagMs: number }[] };

export function workflows(ks: string, name = "wf") {
  const call = (body: Record<string, unknown>) => api<Record<string, unknown>>("POST", "/v1/workflows", { keyspace: ks, workflow: name, ...body });
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
    /** Polls the workflow's view until `ok` holds; answers that view. */
    async until<V extends View = View>(what: string, ok: (v: V) => boolean): Promise<V> {
      const end = Date.now() + 30_000;
      for (;;) {
        const v = (await api<V>("GET", `/v1/workflows?keyspace=${ks}&workflow=${name}`)).body;
        if (ok(v)) return v;
        if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
        await sleep(30);
      }
    },
  };
}

export const caughtUp = (v: View) => v.state === "running" && v.streams.length > 0 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000);

export function shardOfKey(shards: readonly string[], key: number | string): string {
  const ksid = createVindex("xxhash").map(key);
  return shards.find((s) => keyRangeContains(parseKeyRange(s), ksid)) ?? "?";
}

export async function setUp(ks: string, s: { readonly initial: readonly string[]; readonly users: number }, model: Model): Promise<void> {
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
export async function tabletRows(ks: string) {
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

/** Checks that the serving shards `final` hold exactly the model's rows, each on its shard. */
export async function check(ks: string, final: readonly string[], model: Model): Promise<void> {
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
