// The harness of the MoveTables fault, race and recovery tests: an unsharded keyspace holding
// customer and corder (and a table that stays), a sharded target keyspace, a client writing
// (upserts, deletes, inserts) naming either keyspace while a model follows what was
// acknowledged, workflow calls, and the final check that the target's tablets hold exactly the
// model's rows, each on the shard its vindex says, and the source holds the tables no more.

import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { createVindex } from "../../topology/vindex.ts";
import { api, sql } from "./helpers.ts";
import { rng } from "./reshard-harness.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface MoveModel {
  readonly customers: Map<number, string>;
  /** id → [customer_id, total] */
  readonly orders: Map<number, [number, number]>;
}

export function moveModel(): MoveModel {
  return { customers: new Map(), orders: new Map() };
}

export type View = { state: string; streams: { id: string; phase: string; lagMs: number }[]; sources: { tablet: string }[]; targets: { tablet: string }[] };

export interface Pair {
  readonly source: string;
  readonly target: string;
}

/** Creates `source` (unsharded, customer/corder/settings) and `target` (sharded -80,80-, corder placed by customer_id) with `rows` customers and orders. */
export async function setUpMove(p: Pair, rows: number, m: MoveModel, extraDdl: readonly string[] = []): Promise<void> {
  expect((await api("POST", "/v1/keyspaces", { name: p.source, shards: 1 })).status).toBe(200);
  expect((await api("POST", "/v1/keyspaces", { name: p.target, shards: ["-80", "80-"] })).status).toBe(200);
  await sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)", undefined, p.source);
  await sql("CREATE TABLE corder (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, total REAL)", undefined, p.source);
  await sql("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)", undefined, p.source);
  for (const d of extraDdl) await sql(d, undefined, p.source);
  const vs = await api("POST", "/v1/vschema", {
    keyspace: p.target,
    vschema: {
      sharded: true,
      vindexes: { xx: { type: "xxhash" } },
      tables: { corder: { column_vindexes: [{ column: "customer_id", name: "xx" }], unique: "per_shard" } },
    },
  });
  expect(vs.status, JSON.stringify(vs.body)).toBe(200);
  for (let from = 1; from <= rows; from += 50) {
    const cs: unknown[] = [];
    const os: unknown[] = [];
    const n = Math.min(50, rows - from + 1);
    for (let i = from; i < from + n; i++) {
      cs.push(i, `c${i}`);
      os.push(i, 1 + (i % 30), i + 0.25);
      m.customers.set(i, `c${i}`);
      m.orders.set(i, [1 + (i % 30), i + 0.25]);
    }
    await sql(`INSERT INTO customer (id, name) VALUES ${Array.from({ length: n }, () => "(?, ?)").join(", ")}`, cs, p.source);
    await sql(`INSERT INTO corder (id, customer_id, total) VALUES ${Array.from({ length: n }, () => "(?, ?, ?)").join(", ")}`, os, p.source);
  }
}

type Ack = { status: number; body: unknown };

/**
 * A client writing in a loop, naming the source and the target keyspace in turn (every fifth
 * write a one-statement transaction): customer upserts and deletes, corder inserts. The model
 * follows what was acknowledged; every failure is recorded.
 */
export function moveWriter(p: Pair, m: MoveModel, seed: number) {
  const pick = rng(seed);
  let stop = false;
  const errors: unknown[] = [];
  let nextCustomer = 10_000;
  let nextOrder = 10_000;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const keyspace = i % 2 === 0 ? p.source : p.target;
      const op = pick(10);
      const ids = [...m.customers.keys()];
      let st: { sql: string; params: unknown[] };
      let apply: () => void;
      if (op < 5 || ids.length === 0) {
        const id = op < 2 || ids.length === 0 ? nextCustomer++ : (ids[pick(ids.length)] ?? 1);
        const name = `w${i}`;
        st = { sql: "INSERT INTO customer (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name", params: [id, name] };
        apply = () => m.customers.set(id, name);
      } else if (op < 7) {
        const id = ids[pick(ids.length)] ?? 1;
        st = { sql: "DELETE FROM customer WHERE id = ?", params: [id] };
        apply = () => m.customers.delete(id);
      } else {
        const id = nextOrder++;
        const c = 1 + pick(200);
        st = { sql: "INSERT INTO corder (id, customer_id, total) VALUES (?, ?, ?)", params: [id, c, i + 0.5] };
        apply = () => m.orders.set(id, [c, i + 0.5]);
      }
      const r: Ack =
        i % 5 === 0 ? await api("POST", "/v1/batch", { keyspace, transaction: true, statements: [st] }) : await api("POST", "/v1/sql", { keyspace, ...st });
      if (r.status === 200) apply();
      else errors.push({ st, ...r });
      await sleep(2);
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

export function moveWorkflow(p: Pair, name: string) {
  const call = (body: Record<string, unknown>) => api<Record<string, unknown>>("POST", "/v1/workflows", { keyspace: p.target, workflow: name, ...body });
  return {
    call,
    async show(): Promise<View> {
      return (await api<View>("GET", `/v1/workflows?keyspace=${p.target}&workflow=${name}`)).body;
    },
    /** An action retried until it answers 200 (as the runner would). */
    async retried(action: string): Promise<Record<string, unknown>> {
      for (let n = 0; ; n++) {
        const r = await call({ action });
        if (r.status === 200) return r.body;
        if (n >= 3) throw new Error(`${action}: ${JSON.stringify(r.body)}`);
        await sleep(300);
      }
    },
    async until(what: string, ok: (v: View) => boolean, ms = 30_000): Promise<View> {
      const end = Date.now() + ms;
      for (;;) {
        const v = (await api<View>("GET", `/v1/workflows?keyspace=${p.target}&workflow=${name}`)).body;
        if (ok(v)) return v;
        if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
        await sleep(30);
      }
    },
  };
}

export const caughtUp = (v: View) => v.state === "running" && v.streams.length > 0 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000);

type Topo = {
  keyspaces: { name: string; tables: string[]; shards: { name: string; tablet: string }[] }[];
  workflows: { name: string; keyspace: string; progress: unknown }[];
};

export async function topology(): Promise<Topo> {
  return (await api<Topo>("GET", "/v1/topology")).body;
}

export function tabletOf(t: Topo, ks: string, shard: string): string {
  const s = t.keyspaces.find((k) => k.name === ks)?.shards.find((x) => x.name === shard);
  if (!s) throw new Error(`no shard ${ks}/${shard}`);
  return s.tablet;
}

const sortCustomers = (m: MoveModel) => [...m.customers].sort((a, b) => a[0] - b[0]).map(([id, name]) => [id, name]);
const sortOrders = (m: MoveModel) => [...m.orders].sort((a, b) => a[0] - b[0]).map(([id, [c, t]]) => [id, c, t]);

/** Both keyspace names answer exactly the model (the client is stopped). */
export async function bothAnswer(p: Pair, m: MoveModel): Promise<void> {
  for (const ks of [p.source, p.target]) {
    expect((await sql("SELECT id, name FROM customer ORDER BY id", undefined, ks)).rows, `customer via ${ks}`).toEqual(sortCustomers(m));
    expect((await sql("SELECT id, customer_id, total FROM corder ORDER BY id", undefined, ks)).rows, `corder via ${ks}`).toEqual(sortOrders(m));
  }
}

/** A write of a moved table naming `ks` answers quickly (no tablet refuses it long enough for the gate to buffer it). */
export async function writesPromptly(ks: string, m: MoveModel, id: number): Promise<void> {
  const t0 = Date.now();
  const r = await api("POST", "/v1/sql", {
    keyspace: ks,
    sql: "INSERT INTO customer (id, name) VALUES (?, 'probe') ON CONFLICT (id) DO UPDATE SET name = 'probe'",
    params: [id],
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  m.customers.set(id, "probe");
  expect(Date.now() - t0).toBeLessThan(2_000);
}

/**
 * After Complete: the target's tablets hold exactly the model's rows (none twice), each on the
 * shard its vindex says; the source keyspace and its tablet hold the moved tables no more.
 */
export async function checkCompleted(p: Pair, m: MoveModel): Promise<void> {
  const t = await topology();
  expect(t.keyspaces.find((k) => k.name === p.source)?.tables.sort()).toEqual(["settings"]);
  const xx = createVindex("xxhash");
  const customers: [number, string][] = [];
  const orders: [number, number, number][] = [];
  for (const shard of ["-80", "80-"]) {
    const got = await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tabletOf(t, p.target, shard))), (_i, state) => ({
      customers: state.storage.sql.exec<{ id: number; name: string }>("SELECT id, name FROM customer").toArray(),
      orders: state.storage.sql.exec<{ id: number; c: number; t: number }>("SELECT id, customer_id AS c, total AS t FROM corder").toArray(),
    }));
    for (const c of got.customers) {
      expect(keyRangeContains(parseKeyRange(shard), xx.map(c.id)), `customer ${c.id} on ${shard}`).toBe(true);
      customers.push([c.id, c.name]);
    }
    for (const o of got.orders) {
      expect(keyRangeContains(parseKeyRange(shard), xx.map(o.c)), `order ${o.id} on ${shard}`).toBe(true);
      orders.push([o.id, o.c, o.t]);
    }
  }
  customers.sort((a, b) => a[0] - b[0]);
  orders.sort((a, b) => a[0] - b[0]);
  expect(customers).toEqual(sortCustomers(m));
  expect(orders).toEqual(sortOrders(m));
  expect((await sql("SELECT count(*) FROM customer", undefined, p.target)).rows).toEqual([[m.customers.size]]);
  const left = await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tabletOf(t, p.source, "-"))), (_i, state) =>
    state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('customer', 'corder')")
      .toArray()
      .map((r) => r.name),
  );
  expect(left).toEqual([]);
  const gone = await api<{ error: { code: string } }>("POST", "/v1/sql", { keyspace: p.source, sql: "INSERT INTO customer (id, name) VALUES (1, 'x')" });
  expect(gone.body.error.code).toBe("UNKNOWN_TABLE");
}

/** While switched: the source's tablet itself refuses writes to the moved tables (its denied tables). */
export async function sourceRefuses(p: Pair): Promise<void> {
  const t = await topology();
  const src = env.TABLET.get(env.TABLET.idFromName(tabletOf(t, p.source, "-")));
  const refused = await src.execute({ keyspace: p.source, shard: "-", version: 1e9 }, [
    { sql: "INSERT INTO customer (id, name) VALUES (424242, 'x')", params: [], kind: "insert" },
  ]);
  expect(refused).toMatchObject({ ok: false, error: { code: "NOT_SERVING", switching: true } });
}

/**
 * The Topology restarts (nothing of an interrupted action survives in memory), then its alarm
 * runs (the restart may still be settling: a call meeting it is made again).
 */
export async function restartTopologyThenAlarm(): Promise<void> {
  const topo = () => env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global"));
  await runInDurableObject(topo(), (_i, state) => state.abort("restart")).catch(() => undefined);
  for (let n = 0; ; n++) {
    try {
      await runDurableObjectAlarm(topo());
      return;
    } catch (e) {
      if (n >= 5) throw e;
      await sleep(50);
    }
  }
}
