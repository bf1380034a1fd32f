// The copy phase pulled straight from the source (tablet/stream-copy.ts). The invariant: however
// the copy is interrupted, repeated or raced (two copies of one stream at once, a source answering
// a unit for a position the stream has left, a restart between units, queue parts of the chain
// before it), the target ends with exactly the source's rows in its range, value for value, and
// every row is counted as copied once: no unit is applied twice. The queue then carries the
// catch-up from where the copy left the stream.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import type { StreamFilter, StreamPart, StreamPos, StreamSpec, StreamUnit } from "../../contract/stream-rpc.ts";
import type { BoundQuery, QueryResult, TabletRpc, Target } from "../../contract/tablet-rpc.ts";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { createVindex } from "../../topology/vindex.ts";
import { unitParts } from "../../tablet/stream-codec.ts";
import { copyDirect } from "../../tablet/stream-copy.ts";
import { StreamTarget } from "../../tablet/stream-target.ts";

const asEnv = <T>(x: unknown): Envelope<T> => x as Envelope<T>;
const SCHEMA = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL, big INTEGER, v, data BLOB)";
const RANGE = "-80";
const FILTER: StreamFilter = { keyRange: RANGE, tables: [{ table: "users", kind: "sharded", column: "id", vindex: { type: "xxhash" } }] };
/** Small units, so that a copy takes many. */
const UNIT_BYTES = 2_000;

let n = 0;

async function source(rows: number) {
  const shard = `sc${n++}`;
  const name = `sc/${shard}`;
  const stub = env.TABLET.get(env.TABLET.idFromName(name));
  const st = asEnv<unknown>(await stub.sync({ keyspace: "sc", shard, keyRange: "-", serving: true, version: 1 }, [{ index: 1, sql: SCHEMA }]));
  if (!st.ok) throw new Error(st.error.message);
  const target: Target = { keyspace: "sc", shard, version: 1 };
  const exec = async (...sqls: string[]): Promise<QueryResult[]> => {
    const queries: BoundQuery[] = sqls.map((sql) => ({ sql, params: [], kind: /^\s*SELECT/i.test(sql) ? "read" : "write" }));
    // A stub of its own per call: the faults call this from inside the target's object.
    const r = asEnv<QueryResult[]>(await env.TABLET.get(env.TABLET.idFromName(name)).execute(target, queries));
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message} for ${sqls.join("; ")}`);
    return r.value;
  };
  const values: string[] = [];
  for (let id = 1; id <= rows; id++) {
    // Exact values the copy must keep: int64 beyond 2^53, an integral REAL, mixed types in `v`, BLOBs.
    const v = ["(7)", "(2.0)", "'12'", "x'00ff'", "NULL"][id % 5] ?? "NULL";
    values.push(
      `(${id}, 'u''${id}', ${id % 3 === 0 ? "3.0" : `${id}.25`}, ${id % 2 === 0 ? `9007199254740993 + ${id}` : `-${id}`}, ${v}, x'${"ab".repeat(id % 40)}')`,
    );
  }
  for (let i = 0; i < values.length; i += 200) await exec(`INSERT INTO users (id, name, score, big, v, data) VALUES ${values.slice(i, i + 200).join(", ")}`);
  const head = async (): Promise<number> => {
    const s = asEnv<{ position: string }>(await stub.status());
    if (!s.ok) throw new Error(s.error.message);
    return Number(s.value.position.split(":")[1]);
  };
  return { name, stub, exec, head };
}

const EXACT = "SELECT quote(id), quote(name), quote(score), quote(big), quote(v), quote(data) FROM users ORDER BY id";

/** The source's rows in RANGE, read exactly. */
async function expected(src: Awaited<ReturnType<typeof source>>): Promise<unknown[][]> {
  const [r] = await src.exec(EXACT);
  const kr = parseKeyRange(RANGE);
  const xx = createVindex("xxhash");
  return (r?.rows ?? []).filter((row) => keyRangeContains(kr, xx.map(Number(row[0]))));
}

function spec(id: string, src: string, seq: number): StreamSpec {
  return {
    id,
    workflow: "wf",
    targetTablet: `sct/${id}`,
    sourceTablet: src,
    sourceShard: "-",
    filter: FILTER,
    onDdl: "ignore",
    start: { seq, copy: { table: 0, after: null } },
  };
}

/** A target tablet holding the table (no binlog triggers: the rows are what is checked). */
function targetOf(id: string) {
  const stub = env.TABLET.get(env.TABLET.idFromName(`sct/${id}`));
  const run = <T>(fn: (state: DurableObjectState) => T | Promise<T>): Promise<T> => runInDurableObject(stub, (_i, state) => fn(state));
  return { run };
}

const realSource = (name: string): TabletRpc => env.TABLET.get(env.TABLET.idFromName(name)) as unknown as TabletRpc;

/** A source whose answers pass through `hook` (call number, the unit): a test's transport fault. */
function faultySource(hook: (call: number, unit: Envelope<StreamUnit>) => Envelope<StreamUnit> | Promise<Envelope<StreamUnit>>) {
  let calls = 0;
  return (name: string): TabletRpc => {
    const real = realSource(name);
    return new Proxy(real, {
      get(t, prop) {
        if (prop !== "streamUnit") return Reflect.get(t, prop);
        return async (filter: StreamFilter, from: StreamPos, limits?: { maxBytes?: number }) =>
          hook(calls++, asEnv<StreamUnit>(await real.streamUnit(filter, from, limits)));
      },
    });
  };
}

/** Copies until the stream runs (each call a new round, as the alarm's); answers the rounds taken. */
async function copyAll(t: StreamTarget, s: StreamSpec, src: (name: string) => TabletRpc): Promise<number> {
  for (let round = 1; round <= 200; round++) {
    await copyDirect(t, s, src, { sliceMs: 60_000, unitBytes: UNIT_BYTES }).catch(() => false);
    if (t.state(s.id).phase !== "copy") return round;
  }
  throw new Error("the copy did not finish");
}

async function rowsOn(target: ReturnType<typeof targetOf>): Promise<unknown[][]> {
  return target.run((state) => [...state.storage.sql.exec(EXACT).raw()]);
}

describe("direct copy: pages pulled from the source over RPC", () => {
  it("copies exactly the source's rows in range, in many units, each applied once", async () => {
    const src = await source(300);
    const s = spec("plain", src.name, await src.head());
    const target = targetOf(s.id);
    const state = await target.run(async (st) => {
      st.storage.sql.exec(SCHEMA);
      const t = new StreamTarget(st.storage);
      t.start(s);
      const rounds = await copyAll(t, s, realSource);
      return { rounds, ...t.state(s.id) };
    });
    const want = await expected(src);
    expect(state.rounds).toBe(1);
    expect(state.phase).toBe("running");
    expect(state.pos).toEqual({ seq: s.start.seq, copy: null });
    expect(state.rowsCopied).toBe(want.length);
    expect(await rowsOn(target)).toEqual(want);
  });

  it("two copies of one stream racing apply each unit once (the later chain wins, the earlier stops)", async () => {
    const src = await source(300);
    const s = spec("race", src.name, await src.head());
    const target = targetOf(s.id);
    const state = await target.run(async (st) => {
      st.storage.sql.exec(SCHEMA);
      const a = new StreamTarget(st.storage);
      const b = new StreamTarget(st.storage);
      a.start(s);
      const opts = { sliceMs: 60_000, unitBytes: UNIT_BYTES };
      await Promise.all([copyDirect(a, s, realSource, opts), copyDirect(b, s, realSource, opts)]);
      await copyAll(a, s, realSource);
      return a.state(s.id);
    });
    const want = await expected(src);
    expect(state.phase).toBe("running");
    expect(state.rowsCopied).toBe(want.length);
    expect(await rowsOn(target)).toEqual(want);
  });

  it("a unit answered again later (duplicated, or reordered after the units behind it) is refused, and the copy goes on", async () => {
    const src = await source(300);
    const s = spec("replay", src.name, await src.head());
    const target = targetOf(s.id);
    const seen: Envelope<StreamUnit>[] = [];
    // Every third answer is an earlier one again, out of turn.
    const faulty = faultySource((call, unit) => {
      seen.push(unit);
      return call % 3 === 2 ? (seen[call - 2] ?? unit) : unit;
    });
    const state = await target.run(async (st) => {
      st.storage.sql.exec(SCHEMA);
      const t = new StreamTarget(st.storage);
      t.start(s);
      const rounds = await copyAll(t, s, faulty);
      return { rounds, ...t.state(s.id) };
    });
    const want = await expected(src);
    expect(state.rounds).toBeGreaterThan(1);
    expect(state.rowsCopied).toBe(want.length);
    expect(await rowsOn(target)).toEqual(want);
  });

  it("a copy cut off mid-way (the object restarted) goes on from the last unit applied, with writes between the units", async () => {
    const src = await source(300);
    const s = spec("restart", src.name, await src.head());
    const target = targetOf(s.id);
    let writes = 0;
    // Every answer is followed by a write at the source; every fourth answer is lost with the object.
    const faulty = faultySource(async (call, unit) => {
      await src.exec(
        `UPDATE users SET name = 'w${writes}', score = 1.0 WHERE id = ${1 + ((writes * 37) % 300)}`,
        `DELETE FROM users WHERE id = ${1 + ((writes * 53) % 300)}`,
        `INSERT OR REPLACE INTO users (id, name, big) VALUES (${400 + writes}, 'new', 9223372036854775807)`,
      );
      writes++;
      if (call % 4 === 3) throw new Error("the object restarted");
      return unit;
    });
    await target.run(async (st) => {
      st.storage.sql.exec(SCHEMA);
      new StreamTarget(st.storage).start(s);
    });
    // Each round on a fresh StreamTarget, as a restarted object has.
    for (let round = 0; round < 200; round++) {
      const phase = await target.run(async (st) => {
        const t = new StreamTarget(st.storage);
        await copyDirect(t, s, faulty, { sliceMs: 60_000, unitBytes: UNIT_BYTES }).catch(() => false);
        return t.state(s.id).phase;
      });
      if (phase !== "copy") break;
    }
    // The catch-up through the queue's path: the tail after the copy, as parts, delivered twice each.
    const caught = await target.run(async (st) => {
      const t = new StreamTarget(st.storage);
      for (let i = 0; i < 100; i++) {
        const r = t.record(s.id);
        if (!r) throw new Error("no stream");
        const u = asEnv<StreamUnit>(await realSource(src.name).streamUnit(FILTER, r.pos, { maxBytes: UNIT_BYTES }));
        if (!u.ok) throw new Error(u.error.message);
        if (u.value.to.seq === r.pos.seq) return t.state(s.id);
        const chain = t.newChain(s.id);
        const parts: StreamPart[] = unitParts(u.value, 256).map((p) => ({
          target: `sct/${s.id}`,
          stream: s.id,
          epoch: chain.epoch,
          step: chain.step + p.index,
          unit: p.id,
          part: p.index,
          parts: p.count,
          ...(p.index === 0 ? { from: u.value.from } : {}),
          bytes: p.bytes,
        }));
        const outcomes = t.accept([...parts, ...parts]);
        expect(outcomes.slice(0, parts.length).every((o) => o === "applied")).toBe(true);
        expect(outcomes.slice(parts.length).every((o) => o === "duplicate")).toBe(true);
      }
      throw new Error("the catch-up did not reach the head");
    });
    expect(writes).toBeGreaterThan(4);
    expect(caught.phase).toBe("running");
    expect(await rowsOn(target)).toEqual(await expected(src));
  });

  it("queue parts of the chain before a copy never apply once the copy moved the stream", async () => {
    const src = await source(120);
    const s = spec("stale", src.name, await src.head());
    const target = targetOf(s.id);
    const state = await target.run(async (st) => {
      st.storage.sql.exec(SCHEMA);
      const t = new StreamTarget(st.storage);
      t.start(s);
      // What the queue pump of the chain before would have sent: the first unit, as parts.
      const chain = t.newChain(s.id);
      const u = asEnv<StreamUnit>(await realSource(src.name).streamUnit(FILTER, chain.pos, { maxBytes: UNIT_BYTES }));
      if (!u.ok) throw new Error(u.error.message);
      const parts: StreamPart[] = unitParts(u.value, 256).map((p) => ({
        target: `sct/${s.id}`,
        stream: s.id,
        epoch: chain.epoch,
        step: chain.step + p.index,
        unit: p.id,
        part: p.index,
        parts: p.count,
        ...(p.index === 0 ? { from: u.value.from } : {}),
        bytes: p.bytes,
      }));
      await copyAll(t, s, realSource);
      const late = t.accept(parts);
      return { late, ...t.state(s.id) };
    });
    const want = await expected(src);
    expect(state.late.every((o) => o === "duplicate")).toBe(true);
    expect(state.rowsCopied).toBe(want.length);
    expect(await rowsOn(target)).toEqual(want);
  });

  it("the streams of one source share a copy scan only while nothing was written: a write between two reads is in the second", async () => {
    const src = await source(50);
    const from: StreamPos = { seq: await src.head(), copy: { table: 0, after: null } };
    const all: StreamFilter = { keyRange: "-", tables: FILTER.tables };
    const read = async (): Promise<StreamUnit> => {
      const u = asEnv<StreamUnit>(await src.stub.streamUnit(all, from, { maxBytes: UNIT_BYTES }));
      if (!u.ok) throw new Error(u.error.message);
      return u.value;
    };
    const first = await read();
    const again = await read();
    expect(again.rows).toEqual(first.rows);
    await src.exec("UPDATE users SET name = 'changed' WHERE id = 1");
    const after = await read();
    // The tail carries the update, and the copy page, read at the new head, has it too.
    expect(after.items).toHaveLength(1);
    expect(after.rows[0]?.after?.[1]).toBe("changed");
    expect(first.rows[0]?.after?.[1]).toBe("u'1");
  });

  it("a row of about 2 MB arrives whole in a copy unit of its own", async () => {
    const src = await source(0);
    const big = new Uint8Array(2_000_000).map((_, i) => i % 251);
    const text = "é".repeat(400_000);
    // Straight into the source's SQLite (its binlog triggers fire as for any write): a statement's text could not hold it.
    await runInDurableObject(src.stub, (_i, state) => {
      for (const id of [1, 2, 3, 5, 8, 13, 21]) state.storage.sql.exec("INSERT INTO users (id, name, data) VALUES (?, ?, ?)", id, text, big);
    });
    const s = spec("big", src.name, await src.head());
    const target = targetOf(s.id);
    const state = await target.run(async (st) => {
      st.storage.sql.exec(SCHEMA);
      const t = new StreamTarget(st.storage);
      t.start(s);
      await copyAll(t, s, realSource);
      return t.state(s.id);
    });
    // Compared by shape and samples: a quote() of such a value is over a result's limit.
    const SHAPE =
      "SELECT id, length(name), substr(name, 399990), length(data), hex(substr(data, 1999990)), hex(substr(data, 1000000, 16)) FROM users ORDER BY id";
    const xx = createVindex("xxhash");
    const kr = parseKeyRange(RANGE);
    const want = await runInDurableObject(src.stub, (_i, st) =>
      [...st.storage.sql.exec(SHAPE).raw()].filter((r) => keyRangeContains(kr, xx.map(Number(r[0])))),
    );
    expect(want.length).toBeGreaterThan(0);
    expect(state.rowsCopied).toBe(want.length);
    expect(await target.run((st) => [...st.storage.sql.exec(SHAPE).raw()])).toEqual(want);
  });
});
