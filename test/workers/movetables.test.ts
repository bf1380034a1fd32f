// MoveTables end to end in workerd: tables customer and corder move from the unsharded keyspace
// mt1 into the sharded mt2 while a client keeps writing, naming either keyspace. The invariant:
// no write fails, every acknowledged write is in mt2 afterwards on the shard its vindex says,
// both keyspace names answer the same rows before and after the switch, mt1's tablet refuses
// writes to the moved tables once switched (and still takes its other table's), reverse and
// complete work; bad requests are refused and change nothing; cancel drops the copies.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { createVindex } from "../../topology/vindex.ts";
import { api, sql } from "./helpers.ts";

const K1 = "mt1";
const K2 = "mt2";

type View = {
  state: string;
  kind: string;
  streams: { id: string; phase: string; lagMs: number }[];
};
type Topo = { keyspaces: { name: string; tables: string[]; shards: { name: string; tablet: string }[] }[]; workflows: unknown[] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function wf(workflow: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await api<Record<string, unknown>>("POST", "/v1/workflows", { keyspace: K2, workflow, ...body });
  return { status: r.status, body: r.body };
}

async function until(workflow: string, what: string, ok: (v: View) => boolean): Promise<View> {
  const end = Date.now() + 20_000;
  for (;;) {
    const v = (await api<View>("GET", `/v1/workflows?keyspace=${K2}&workflow=${workflow}`)).body;
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

/** Ids the writer has sent a write for since the set was last cleared, and ids with a write unanswered: bothAnswer's check skips them. */
const touched = new Set<number>();
const inFlight = new Set<number>();

/** Upserts customers in a loop, naming mt1 and mt2 in turn, remembering what was acknowledged. */
function writer(model: Map<number, string>) {
  let stop = false;
  const errors: unknown[] = [];
  let next = 1000;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const id = i % 3 === 0 ? 1 + (i % 40) : next++;
      const name = `w${i}`;
      touched.add(id);
      inFlight.add(id);
      const keyspace = i % 2 === 0 ? K1 : K2;
      const st = { sql: "INSERT INTO customer (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name", params: [id, name] };
      // Every fifth write is a one-statement transaction (a batch is routed like a statement).
      const r =
        i % 5 === 0 ? await api("POST", "/v1/batch", { keyspace, transaction: true, statements: [st] }) : await api("POST", "/v1/sql", { keyspace, ...st });
      inFlight.delete(id);
      if (r.status === 200) model.set(id, name);
      else errors.push(r.body);
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

async function topology(): Promise<Topo> {
  return (await api<Topo>("GET", "/v1/topology")).body;
}

/** Both keyspace names answer the model (but for rows a write in flight may have changed meanwhile). */
async function bothAnswer(model: Map<number, string>): Promise<void> {
  touched.clear();
  for (const id of inFlight) touched.add(id);
  const want = [...model].sort((a, b) => a[0] - b[0]).map(([id, name]) => [id, name]);
  for (const ks of [K1, K2]) {
    const rows = (await sql("SELECT id, name FROM customer ORDER BY id", undefined, ks)).rows;
    for (const [id, name] of want) if (!touched.has(Number(id))) expect(rows, `${ks} has ${id}`).toContainEqual([id, name]);
  }
  const [a, b] = [await sql("SELECT count(*) FROM corder", undefined, K1), await sql("SELECT count(*) FROM corder", undefined, K2)];
  expect(a.rows).toEqual(b.rows);
}

function tabletOf(t: Topo, ks: string, shard: string): string {
  const s = t.keyspaces.find((k) => k.name === ks)?.shards.find((x) => x.name === shard);
  if (!s) throw new Error(`no shard ${ks}/${shard}`);
  return s.tablet;
}

describe("movetables: customer and corder from unsharded mt1 into sharded mt2", () => {
  it("copies under live writes naming either keyspace, switches with zero failed writes, reverses, switches and completes", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: K1, shards: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/keyspaces", { name: K2, shards: ["-80", "80-"] })).status).toBe(200);
    await sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)", undefined, K1);
    await sql("CREATE TABLE corder (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, total REAL)", undefined, K1);
    await sql("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)", undefined, K1);
    await sql("CREATE TABLE nokey (a INTEGER, b TEXT)", undefined, K1);
    await sql("CREATE TABLE taken (id INTEGER PRIMARY KEY)", undefined, K1);
    await sql("CREATE TABLE byowner (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL)", undefined, K1);
    await sql("CREATE TABLE taken (id INTEGER PRIMARY KEY)", undefined, K2);
    // corder is placed by its customer's id (given beforehand); customer by the default rule.
    const vs = await api("POST", "/v1/vschema", {
      keyspace: K2,
      vschema: {
        sharded: true,
        vindexes: { xx: { type: "xxhash" } },
        tables: {
          taken: { column_vindexes: [{ column: "id", name: "xx" }] },
          corder: { column_vindexes: [{ column: "customer_id", name: "xx" }], unique: "per_shard" },
          // Its PRIMARY KEY would need a keyspace-wide lookup in mt2, whose rows a move does not build.
          byowner: { column_vindexes: [{ column: "owner", name: "xx" }] },
        },
      },
    });
    expect(vs.status, JSON.stringify(vs.body)).toBe(200);
    const model = new Map<number, string>();
    for (let i = 1; i <= 80; i++) {
      await sql("INSERT INTO customer (id, name) VALUES (?, ?)", [i, `c${i}`], K1);
      await sql("INSERT INTO corder (id, customer_id, total) VALUES (?, ?, ?)", [i, 1 + (i % 30), i + 0.25], K1);
      model.set(i, `c${i}`);
    }

    // Bad requests: refused with their codes, and nothing changes.
    const before = await topology();
    const bad: [Record<string, unknown>, string, string?][] = [
      [{ sourceKeyspace: K1, tables: ["customer", "ghost"] }, "UNKNOWN_TABLE"],
      [{ sourceKeyspace: K2, tables: ["taken"] }, "INVALID_ARGUMENT"], // K1 == K2
      [{ sourceKeyspace: K1, tables: ["customer", "taken"] }, "INVALID_ARGUMENT"], // already in mt2
      [{ sourceKeyspace: K1, tables: ["nokey"] }, "UNSUPPORTED", "VD2700"],
      [{ sourceKeyspace: K1, tables: ["byowner"] }, "UNSUPPORTED", "VD2704"],
      [{ sourceKeyspace: "nowhere", tables: ["customer"] }, "INVALID_ARGUMENT"],
      [{ sourceKeyspace: K1, tables: [] }, "INVALID_ARGUMENT"],
      [{ tables: ["customer"] }, "INVALID_ARGUMENT"],
      [{ sourceKeyspace: K1, tables: ["customer"], sourceShards: ["-"] }, "INVALID_ARGUMENT"],
    ];
    for (const [req, code, id] of bad) {
      const r = await wf("bad", { action: "create", kind: "movetables", ...req });
      expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
      expect(r.body["error"]).toMatchObject({ code, ...(id ? { id } : {}) });
    }
    expect(await topology()).toEqual(before);

    const created = await wf("move", { action: "create", kind: "movetables", sourceKeyspace: K1, tables: ["customer", "corder"] });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    expect(created.body).toMatchObject({ kind: "movetables", sourceKeyspace: K1 });
    // A table in an open workflow cannot move again.
    const again = await wf("again", { action: "create", kind: "movetables", sourceKeyspace: K1, tables: ["corder"] });
    expect(again.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });

    const w = writer(model);
    await until("move", "copy and catch-up", (v) => v.streams.length === 2 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000));
    await bothAnswer(model);
    const diff = await wf("move", { action: "vdiff" });
    expect(diff.status, JSON.stringify(diff.body)).toBe(200);
    expect(diff.body).toMatchObject({ match: true, done: true });

    const switched = await wf("move", { action: "switchtraffic" });
    expect(switched.status, JSON.stringify(switched.body)).toBe(200);
    expect(switched.body["state"]).toBe("switched");
    await sleep(200);
    await bothAnswer(model);
    // mt1's tablet itself refuses writes to the moved tables, and still takes its other table's.
    const t = await topology();
    const src = env.TABLET.get(env.TABLET.idFromName(tabletOf(t, K1, "-")));
    const refused = await src.execute({ keyspace: K1, shard: "-", version: 1e9 }, [
      { sql: "INSERT INTO customer (id, name) VALUES (424242, 'x')", params: [], kind: "insert" },
    ]);
    expect(refused).toMatchObject({ ok: false, error: { code: "NOT_SERVING", switching: true } });
    await sql("INSERT INTO settings (k, v) VALUES ('a', 'b')", undefined, K1);

    const reversed = await wf("move", { action: "reversetraffic" });
    expect(reversed.status, JSON.stringify(reversed.body)).toBe(200);
    await until("move", "forward streams again", (v) => v.state === "running" && v.streams.every((s) => s.phase === "running"));
    await sleep(100);
    await bothAnswer(model);
    expect((await wf("move", { action: "switchtraffic" })).status).toBe(200);
    await sleep(100);
    await w.stop();
    expect(w.errors).toEqual([]);
    const completed = await wf("move", { action: "complete" });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);

    // mt2 holds every acknowledged write, each row on the shard its vindex says; mt1 holds the tables no more.
    const rows = await sql("SELECT id, name FROM customer ORDER BY id", undefined, K2);
    expect(rows.rows).toEqual([...model].sort((a, b) => a[0] - b[0]).map(([id, name]) => [id, name]));
    expect((await sql("SELECT count(*), sum(total) FROM corder", undefined, K2)).rows).toEqual([[80, 3260]]);
    const after = await topology();
    expect(after.keyspaces.find((k) => k.name === K1)?.tables.sort()).toEqual(["byowner", "nokey", "settings", "taken"]);
    const xx = createVindex("xxhash");
    let total = 0;
    for (const shard of ["-80", "80-"]) {
      const got = await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tabletOf(after, K2, shard))), (_i, state) => ({
        customers: state.storage.sql
          .exec<{ id: number }>("SELECT id FROM customer")
          .toArray()
          .map((r) => r.id),
        orders: state.storage.sql
          .exec<{ c: number }>("SELECT customer_id AS c FROM corder")
          .toArray()
          .map((r) => r.c),
      }));
      for (const id of got.customers) expect(keyRangeContains(parseKeyRange(shard), xx.map(id))).toBe(true);
      for (const c of got.orders) expect(keyRangeContains(parseKeyRange(shard), xx.map(c))).toBe(true);
      total += got.customers.length;
    }
    expect(total).toBe(model.size);
    const gone = await api<{ error: { code: string } }>("POST", "/v1/sql", { keyspace: K1, sql: "SELECT count(*) FROM customer" });
    expect(gone.body.error.code).toBe("UNKNOWN_TABLE");
    expect((await sql("SELECT v FROM settings", undefined, K1)).rows).toEqual([["b"]]);

    // cancel: a move of settings, cancelled, leaves mt1 as it was and mt2 without the copy.
    const c = await wf("undo", { action: "create", kind: "movetables", sourceKeyspace: K1, tables: ["settings"] });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    await until("undo", "copy", (v) => v.streams.length === 2 && v.streams.every((s) => s.phase === "running"));
    expect((await sql("SELECT v FROM settings", undefined, K2)).rows).toEqual([["b"]]);
    const cancelled = await wf("undo", { action: "cancel" });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    expect((await topology()).keyspaces.find((k) => k.name === K2)?.tables.sort()).toEqual(["corder", "customer", "taken"]);
    expect((await sql("SELECT k, v FROM settings", undefined, K1)).rows).toEqual([["a", "b"]]);
  }, 120_000);
});
