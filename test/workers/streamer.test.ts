// The source side of a stream. Invariant: a target that starts empty at {seq: 0, copy: table 0}
// and applies each unit keyed by PRIMARY KEY (delete `before`'s key, upsert `after`) holds, once
// it reaches the head with the copy done, exactly the source's rows whose keyspace id is in its
// range, value for value (int64 beyond 2^53, BLOBs, REAL 1.0 apart from INTEGER 1), whatever
// writes ran between its units and however small the units were.

import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import { decodeQuoted, normalizeInt } from "../../contract/sql-values.ts";
import type { StreamFilter, StreamLimits, StreamPos, StreamUnit, StreamValue, TablePlacement } from "../../contract/stream-rpc.ts";
import type { BoundQuery, QueryResult, Target } from "../../contract/tablet-rpc.ts";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { createVindex } from "../../topology/vindex.ts";

const asEnv = <T>(x: unknown): Envelope<T> => x as Envelope<T>;

const SCHEMA = [
  "CREATE TABLE ref (code TEXT PRIMARY KEY, label TEXT)",
  "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL, big INTEGER, v, data BLOB)",
  "CREATE TABLE items (tenant TEXT NOT NULL, n INTEGER NOT NULL, v, PRIMARY KEY (tenant, n)) WITHOUT ROWID",
];

const TABLES: readonly TablePlacement[] = [
  { table: "ref", kind: "reference" },
  { table: "users", kind: "sharded", column: "id", vindex: { type: "xxhash" } },
  { table: "items", kind: "sharded", column: "tenant", vindex: { type: "xxhash" } },
];
const PK: Record<string, readonly string[]> = { ref: ["code"], users: ["id"], items: ["tenant", "n"] };
const COLUMNS: Record<string, readonly string[]> = {
  ref: ["code", "label"],
  users: ["id", "name", "score", "big", "v", "data"],
  items: ["tenant", "n", "v"],
};

let n = 0;
async function freshTablet(schema: readonly string[] = SCHEMA) {
  const shard = `s${n++}`;
  const stub = env.TABLET.get(env.TABLET.idFromName(`st/${shard}`));
  const st = asEnv<unknown>(
    await stub.sync(
      { keyspace: "st", shard, keyRange: "-", serving: true, version: 1 },
      schema.map((sql, i) => ({ index: i + 1, sql })),
    ),
  );
  if (!st.ok) throw new Error(st.error.message);
  const target: Target = { keyspace: "st", shard, version: 1 };
  const exec = async (...sqls: string[]): Promise<QueryResult[]> => {
    const queries: BoundQuery[] = sqls.map((sql) => ({ sql, params: [], kind: /^\s*SELECT/i.test(sql) ? "read" : "write" }));
    const r = asEnv<QueryResult[]>(await stub.execute(target, queries));
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message} for ${sqls.join("; ")}`);
    return r.value;
  };
  const unit = async (filter: StreamFilter, from: StreamPos, limits?: StreamLimits): Promise<Envelope<StreamUnit>> =>
    asEnv<StreamUnit>(await stub.streamUnit(filter, from, limits));
  const head = async (): Promise<number> => {
    const st = asEnv<{ position: string }>(await stub.status());
    if (!st.ok) throw new Error(st.error.message);
    return Number(st.value.position.split(":")[1]);
  };
  return { exec, unit, head };
}

/** A stream value as SQL text that stores exactly it (an integral REAL `{real: n}` as a REAL). */
function lit(v: StreamValue): string {
  if (v === null) return "NULL";
  if (typeof v === "bigint") return v === -(2n ** 63n) ? "(-9223372036854775807 - 1)" : `(${v})`;
  if (typeof v === "number" && Number.isSafeInteger(v)) return `(${v})`;
  if (typeof v === "number" || (typeof v === "object" && "real" in v)) {
    const r = typeof v === "number" ? v : v.real;
    if (!Number.isFinite(r)) return r > 0 ? "9e999" : "-9e999";
    const s = String(r);
    return `(${/[.eE]/.test(s) ? s : `${s}.0`})`;
  }
  if (typeof v === "string") return `'${v.replaceAll("'", "''")}'`;
  return `X'${Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("")}'`;
}

/** A model key: the PRIMARY KEY values' SQL text (equal keys, equal text). */
const keyOf = (table: string, columns: readonly string[], row: readonly StreamValue[]): string =>
  (PK[table] ?? []).map((k) => lit(row[columns.indexOf(k)] ?? null)).join(",");

type Model = Map<string, Map<string, StreamValue[]>>;

function apply(model: Model, u: StreamUnit): void {
  for (const item of [...u.items, ...u.rows]) {
    if ("ddl" in item) continue;
    const t = model.get(item.table) ?? new Map<string, StreamValue[]>();
    model.set(item.table, t);
    if (item.before) t.delete(keyOf(item.table, item.columns, item.before));
    if (item.after) t.set(keyOf(item.table, item.columns, item.after), [...item.after]);
  }
}

/** A quote() literal as a StreamValue, written apart from the streamer's own decoding. */
function exactly(q: string): StreamValue {
  if (/^-?\d+$/.test(q)) return normalizeInt(BigInt(q));
  const v = decodeQuoted(q);
  return typeof v === "number" && Number.isInteger(v) ? { real: v } : v;
}

/** Every row of `table`, read exactly (quote()) and independently of the streamer. */
async function readRows(exec: (...s: string[]) => Promise<QueryResult[]>, table: string): Promise<StreamValue[][]> {
  const cols = COLUMNS[table] ?? [];
  const [r] = await exec(`SELECT ${cols.map((c) => `quote(${c})`).join(", ")} FROM ${table}`);
  return (r?.rows ?? []).map((raw) => (raw as string[]).map(exactly));
}

/** The rows of `p.table` whose keyspace id is in `range`, by model key. */
function inRange(rows: readonly StreamValue[][], p: TablePlacement, range: string): Map<string, StreamValue[]> {
  const cols = COLUMNS[p.table] ?? [];
  const out = new Map<string, StreamValue[]>();
  const kr = parseKeyRange(range);
  for (const row of rows) {
    if (p.kind === "sharded") {
      const key = row[cols.indexOf(p.column ?? "")] ?? null;
      const ksid = createVindex(p.vindex?.type ?? "").map(typeof key === "object" && key !== null && "real" in key ? key.real : key);
      if (!keyRangeContains(kr, ksid)) continue;
    }
    out.set(keyOf(p.table, cols, row), row);
  }
  return out;
}

/** Follows the tail alone until it reaches the head; answers the position there. */
async function toHead(t: Awaited<ReturnType<typeof freshTablet>>, filter: StreamFilter, from: StreamPos): Promise<StreamPos> {
  let pos = from;
  for (;;) {
    const u = await t.unit(filter, { seq: pos.seq, copy: null });
    if (!u.ok) throw new Error(u.error.message);
    pos = { seq: u.value.to.seq, copy: from.copy };
    if (pos.seq === u.value.headSeq) return pos;
  }
}

const sorted = (m: Map<string, StreamValue[]> | undefined) =>
  [...(m ?? new Map<string, StreamValue[]>()).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

const INT64 = fc.oneof(
  fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -(2n ** 53n) - 3n, 0n, 1n),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);
const REAL: fc.Arbitrary<StreamValue> = fc
  .oneof(fc.constantFrom(1.0, -0.5, 2 ** 60, 1e300, Number.POSITIVE_INFINITY, 0.1), fc.double({ noNaN: true, noDefaultInfinity: true }))
  .map((d) => (Number.isInteger(d) ? { real: d } : d));
const BLOB = fc.uint8Array({ maxLength: 24 });
const TEXT = fc.string({ maxLength: 12 });
const ANY: fc.Arbitrary<StreamValue> = fc.oneof(fc.constant(null), INT64, REAL, BLOB, TEXT);

const USER_ID = fc.oneof(fc.integer({ min: 1, max: 12 }).map(BigInt), fc.constantFrom(2n ** 62n + 7n, -(2n ** 63n)));
const TENANT = fc.constantFrom("acme", "beta", "Gamma", "δ", "e'f");
const CODE = fc.constantFrom("fr", "de", "jp");

type Op = { sql: string[] } | { step: 0 | 1 };

const write = fc.oneof(
  fc
    .tuple(
      USER_ID,
      TEXT,
      fc.oneof(
        REAL,
        INT64.map((b) => b % 1000n),
      ),
      INT64,
      ANY,
      fc.option(BLOB),
    )
    .map(([id, name, score, big, v, data]) => `INSERT OR REPLACE INTO users VALUES (${[id, name, score, big, v, data].map(lit).join(", ")})`),
  fc.tuple(USER_ID, ANY).map(([id, v]) => `UPDATE users SET v = ${lit(v)} WHERE id = ${lit(id)}`),
  fc.tuple(USER_ID, USER_ID).map(([a, b]) => `UPDATE users SET id = ${lit(b)} WHERE id = ${lit(a)} AND NOT EXISTS (SELECT 1 FROM users WHERE id = ${lit(b)})`),
  USER_ID.map((id) => `DELETE FROM users WHERE id = ${lit(id)}`),
  fc.tuple(TENANT, fc.integer({ min: 0, max: 4 }), ANY).map(([t, k, v]) => `INSERT OR REPLACE INTO items VALUES (${lit(t)}, ${k}, ${lit(v)})`),
  fc.tuple(TENANT, TENANT).map(([a, b]) => `UPDATE OR REPLACE items SET tenant = ${lit(b)} WHERE tenant = ${lit(a)}`),
  TENANT.map((t) => `DELETE FROM items WHERE tenant = ${lit(t)} AND n % 2 = 0`),
  fc.tuple(CODE, TEXT).map(([c, l]) => `INSERT OR REPLACE INTO ref VALUES (${lit(c)}, ${lit(l)})`),
  CODE.map((c) => `DELETE FROM ref WHERE code = ${lit(c)}`),
);

const OPS: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.array(write, { minLength: 1, maxLength: 3 }).map((sql) => ({ sql })) },
    { weight: 2, arbitrary: fc.constantFrom<0 | 1>(0, 1).map((step) => ({ step })) },
  ),
  { maxLength: 40 },
);

const RANGES = ["-80", "80-"] as const;

describe("streamUnit: copy and binlog tail", () => {
  it("a target applying units keyed by PRIMARY KEY ends with exactly the source's rows in its range (two complementary ranges)", async () => {
    await fc.assert(
      fc.asyncProperty(
        OPS,
        fc.array(write, { maxLength: 25 }),
        fc.record({ maxRows: fc.integer({ min: 1, max: 4 }), maxBytes: fc.integer({ min: 1, max: 300 }) }),
        fc.boolean(),
        async (ops, seed, bounds, fromHead) => {
          const limits = { ...bounds };
          const t = await freshTablet();
          // The source's rows after each commit, by its seq: a unit must leave the target at `to.seq`.
          const snapshots = new Map<number, Map<string, StreamValue[][]>>();
          const write = async (...sqls: string[]): Promise<void> => {
            await t.exec(...sqls);
            const tables = new Map<string, StreamValue[][]>();
            for (const p of TABLES) tables.set(p.table, await readRows(t.exec, p.table));
            snapshots.set(await t.head(), tables);
          };
          for (const s of seed) await write(s);
          // From seq 0 the tail replays every write the seed made; from the head only the copy has them.
          const start: StreamPos = { seq: 0, copy: { table: 0, after: null } };
          const from = fromHead ? await toHead(t, { keyRange: "-", tables: TABLES }, start) : start;
          const streams = RANGES.map((keyRange) => ({
            filter: { keyRange, tables: TABLES } satisfies StreamFilter,
            pos: from,
            model: new Map() as Model,
          }));
          const expectSame = (s: (typeof streams)[number], p: TablePlacement, seq: number): void => {
            const source = snapshots.get(seq)?.get(p.table);
            if (!source) return; // a DDL's or an empty source's seq
            expect({ table: p.table, range: s.filter.keyRange, seq, rows: sorted(s.model.get(p.table)) }).toEqual({
              table: p.table,
              range: s.filter.keyRange,
              seq,
              rows: sorted(inRange(source, p, s.filter.keyRange)),
            });
          };
          const step = async (s: (typeof streams)[number]): Promise<StreamUnit> => {
            const r = await t.unit(s.filter, s.pos, limits);
            if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
            expect(r.value.from).toEqual(s.pos);
            expect(r.value.to.seq).toBeGreaterThanOrEqual(s.pos.seq);
            expect(r.value.to.seq).toBeLessThanOrEqual(r.value.headSeq);
            apply(s.model, r.value);
            s.pos = r.value.to;
            // Every table the copy is past is exactly the source's rows in range at to.seq.
            const copied = r.value.to.copy === null ? TABLES.length : r.value.to.copy.table;
            for (const p of TABLES.slice(0, copied)) expectSame(s, p, r.value.to.seq);
            return r.value;
          };
          for (const op of ops) {
            if ("sql" in op) await write(...op.sql);
            else await step(streams[op.step] as (typeof streams)[number]);
          }
          for (const s of streams) {
            for (let guard = 0; ; guard++) {
              if (guard > 5000) throw new Error("stream did not reach the head");
              const u = await step(s);
              if (u.to.copy === null && u.to.seq === u.headSeq) break;
            }
            expect(snapshots.has(s.pos.seq) || snapshots.size === 0).toBe(true);
            for (const p of TABLES) expectSame(s, p, s.pos.seq);
          }
        },
      ),
      { numRuns: 12 },
    );
  }, 180_000);

  it("keeps REAL 1.0, int64 extremes and BLOBs exact in copied rows and tail images", async () => {
    const t = await freshTablet();
    await t.exec(`INSERT INTO users (id, v, big, data) VALUES (1, 1.0, ${lit(2n ** 63n - 1n)}, X'00ff10')`, `INSERT INTO users (id, v) VALUES (2, 1)`);
    const all: StreamFilter = { keyRange: "-", tables: TABLES };
    const copied = await t.unit(all, await toHead(t, all, { seq: 0, copy: { table: 1, after: null } }));
    if (!copied.ok) throw new Error(copied.error.message);
    expect(copied.value.items).toEqual([]);
    const rows = copied.value.rows.filter((r) => r.table === "users" && r.before === null).map((r) => r.after);
    expect(rows).toEqual([
      [1, null, null, 2n ** 63n - 1n, { real: 1 }, new Uint8Array([0, 0xff, 0x10])],
      [2, null, null, null, 1, null],
    ]);
    const at = copied.value.to.seq;
    await t.exec(`UPDATE users SET v = -9223372036854775807 - 1, score = 3 WHERE id = 1`);
    const tail = await t.unit(all, { seq: at, copy: null });
    if (!tail.ok) throw new Error(tail.error.message);
    expect(tail.value.items).toEqual([
      {
        table: "users",
        columns: COLUMNS["users"],
        before: [1, null, null, 2n ** 63n - 1n, { real: 1 }, new Uint8Array([0, 0xff, 0x10])],
        after: [1, null, { real: 3 }, 2n ** 63n - 1n, -(2n ** 63n), new Uint8Array([0, 0xff, 0x10])],
      },
    ]);
    expect(tail.value.rows).toEqual([]);
    expect(tail.value.to).toEqual({ seq: tail.value.headSeq, copy: null });
    expect(typeof tail.value.lastCommitTs).toBe("number");
  });

  it("never splits a transaction, and gives a DDL transaction a unit of its own", async () => {
    const t = await freshTablet();
    const all: StreamFilter = { keyRange: "-", tables: TABLES };
    const first = await t.unit(all, { seq: 0, copy: null }, { maxRows: 1 });
    if (!first.ok) throw new Error(first.error.message);
    // The schema's first DDL transaction alone.
    expect(first.value.items).toEqual([{ ddl: SCHEMA[0] }]);
    const pos = await toHead(t, all, first.value.to);
    await t.exec("INSERT INTO ref VALUES ('a', '1')", "INSERT INTO ref VALUES ('b', '2')", "INSERT INTO ref VALUES ('c', '3')");
    await t.exec("INSERT INTO ref VALUES ('d', '4')");
    const u = await t.unit(all, pos, { maxRows: 1 });
    if (!u.ok) throw new Error(u.error.message);
    expect(u.value.items.map((i) => ("after" in i ? i.after?.[0] : null))).toEqual(["a", "b", "c"]);
    expect(u.value.to.seq).toBeLessThan(u.value.headSeq);
    const v = await t.unit(all, u.value.to, { maxRows: 1 });
    expect(v.ok && v.value.items.length).toBe(1);
    expect(v.ok && v.value.to.seq === v.value.headSeq).toBe(true);
  });

  it("refuses a listed table without a PRIMARY KEY (VD2700) and a position past the head (INVALID_ARGUMENT)", async () => {
    const t = await freshTablet(["CREATE TABLE logs (tenant INTEGER, line TEXT)"]);
    const filter: StreamFilter = { keyRange: "-80", tables: [{ table: "logs", kind: "sharded", column: "tenant", vindex: { type: "xxhash" } }] };
    const r = await t.unit(filter, { seq: 0, copy: { table: 0, after: null } });
    expect(r.ok ? null : { code: r.error.code, id: r.error["id"], table: r.error["table"] }).toEqual({ code: "UNSUPPORTED", id: "VD2700", table: "logs" });
    const past = await t.unit(filter, { seq: 10_000, copy: null });
    expect(past.ok ? null : past.error.code).toBe("INVALID_ARGUMENT");
  });

  it("refuses to copy a row whose PRIMARY KEY holds NULL (SQLite allows it outside INTEGER PRIMARY KEY): VD2701", async () => {
    const t = await freshTablet(["CREATE TABLE np (a TEXT PRIMARY KEY, v INTEGER)"]);
    await t.exec("INSERT INTO np VALUES ('x', 1)", "INSERT INTO np VALUES (NULL, 2)");
    const filter: StreamFilter = { keyRange: "-", tables: [{ table: "np", kind: "reference" }] };
    const r = await t.unit(filter, await toHead(t, filter, { seq: 0, copy: { table: 0, after: null } }));
    expect(r.ok ? null : { code: r.error.code, id: r.error["id"], table: r.error["table"] }).toEqual({ code: "UNSUPPORTED", id: "VD2701", table: "np" });
  });
});
