// A target takes a stream's units exactly once and in order, whatever the queue does. The
// invariant: however parts are duplicated, reordered, delayed or outdated by a new chain, the
// target ends with exactly the rows the source's history leaves, at the last unit's position,
// and no unit's changes are applied twice (a doubled insert, a re-applied delete, or an update
// replayed over a later one would each leave a different table).
import { env, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RowChange, StreamPart, StreamPos, StreamSpec, StreamUnit, StreamValue } from "../../contract/stream-rpc.ts";
import { unitParts } from "../../tablet/stream-codec.ts";
import { StreamTarget } from "../../tablet/stream-target.ts";

const COLS = ["id", "v", "r", "b"];
let n = 0;

function spec(id: string, start: StreamPos, tables = ["t"]): StreamSpec {
  return {
    id,
    workflow: "wf",
    targetTablet: "target",
    sourceTablet: "source",
    sourceShard: "-",
    filter: { keyRange: "-", tables: tables.map((table) => ({ table, kind: "reference" as const })) },
    onDdl: "ignore",
    start,
  };
}

type Model = Map<number, StreamValue[]>;
type Op = { kind: "put"; id: number; v: string; r: number } | { kind: "del"; id: number };

/** Applies a transaction of ops to the source model and answers its row changes. */
function run(model: Model, ops: readonly Op[]): RowChange[] {
  const out: RowChange[] = [];
  for (const op of ops) {
    const before = model.get(op.id) ?? null;
    if (op.kind === "del") {
      if (!before) continue;
      model.delete(op.id);
      out.push({ table: "t", columns: COLS, before, after: null });
    } else {
      const after: StreamValue[] = [op.id, op.v, Number.isInteger(op.r) ? { real: op.r } : op.r, new Uint8Array([op.id & 255, 7])];
      model.set(op.id, after);
      out.push({ table: "t", columns: COLS, before, after });
    }
  }
  return out;
}

function parts(stream: string, unit: StreamUnit, epoch: number, step: number): StreamPart[] {
  return unitParts(unit).map((p) => ({
    target: "target",
    stream,
    epoch,
    step: step + p.index,
    unit: p.id,
    part: p.index,
    parts: p.count,
    ...(p.index === 0 ? { from: unit.from } : {}),
    bytes: p.bytes,
  }));
}

function rows(state: DurableObjectState): unknown[][] {
  return [...state.storage.sql.exec("SELECT id, v, r, typeof(r), hex(b) FROM t ORDER BY id").raw()];
}

function expected(model: Model): unknown[][] {
  return [...model.values()]
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map((r) => {
      const real = r[2] as number | { real: number };
      const v = typeof real === "number" ? real : real.real;
      // A REAL column stores an integral value as an integer on disk: -0.0 reads back as 0.0.
      const x = Object.is(v, -0) ? 0 : v;
      const blob = r[3] as Uint8Array;
      return [r[0], r[1], x, "real", Array.from(blob, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join("")];
    });
}

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("put" as const),
    id: fc.integer({ min: 1, max: 12 }),
    v: fc.string({ maxLength: 6 }),
    r: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
  }),
  fc.record({ kind: fc.constant("del" as const), id: fc.integer({ min: 1, max: 12 }) }),
);

describe("a stream target applies each unit once, in order", () => {
  it("property: duplicated, reordered and outdated parts leave exactly the source's rows", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 12 }),
        fc.infiniteStream(fc.nat()),
        async (txs, rand) => {
          const stub = env.TABLET.get(env.TABLET.idFromName(`stream-target-${n++}`));
          await runInDurableObject(stub, (_i, state) => {
            state.storage.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB)");
            const target = new StreamTarget(state.storage);
            const start: StreamPos = { seq: 0, copy: null };
            target.start(spec("s", start));
            // The source's history, cut into units of one transaction each.
            const model: Model = new Map();
            const units: StreamUnit[] = [];
            let pos = start;
            for (const ops of txs) {
              const to: StreamPos = { seq: pos.seq + 1, copy: null };
              units.push({ from: pos, to, items: run(model, ops), rows: [], lastCommitTs: null, headSeq: to.seq });
              pos = to;
            }
            const next = () => rand[Symbol.iterator]().next().value ?? 0;
            // Chain 1 sends every unit; at a random point a new chain re-sends from the applied position.
            const chain = target.newChain("s");
            let queue: StreamPart[] = [];
            let step = chain.step;
            for (const u of units) {
              const p = parts("s", u, chain.epoch, step);
              step += p.length;
              queue.push(...p);
            }
            let restarted = false;
            for (let guard = 0; queue.length > 0 && guard < 10_000; guard++) {
              const i = next() % queue.length;
              const part = queue[i] as StreamPart;
              const [outcome] = target.accept([part]);
              if (outcome !== "early") queue.splice(i, 1);
              if (next() % 5 === 0) queue.push(part); // delivered again
              if (!restarted && next() % 7 === 0) {
                restarted = true;
                const c = target.newChain("s");
                const at = JSON.stringify(target.state("s").pos);
                const from = units.findIndex((u) => JSON.stringify(u.from) === at);
                let s2 = c.step;
                if (from >= 0) {
                  for (const u of units.slice(from)) {
                    const p = parts("s", u, c.epoch, s2);
                    s2 += p.length;
                    queue.push(...p);
                  }
                }
              }
              // Parts of the outdated chain can never be taken again: let the queue forget them.
              const { pos: now } = target.state("s");
              if (JSON.stringify(now) === JSON.stringify(pos)) queue = queue.filter(() => next() % 3 !== 0);
            }
            expect(target.state("s").pos).toEqual(pos);
            expect(rows(state)).toEqual(expected(model));
          });
        },
      ),
      { numRuns: 40 },
    );
  });

  it("a unit of many parts (a 1 MB value) is applied once, when its last part arrives", async () => {
    const stub = env.TABLET.get(env.TABLET.idFromName("stream-target-big"));
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB)");
      const target = new StreamTarget(state.storage);
      target.start(spec("s", { seq: 0, copy: null }));
      const c = target.newChain("s");
      const big = "x".repeat(1_000_000);
      const unit: StreamUnit = {
        from: { seq: 0, copy: null },
        to: { seq: 3, copy: null },
        items: [{ table: "t", columns: COLS, before: null, after: [1, big, 2.5, new Uint8Array([1])] }],
        rows: [],
        lastCommitTs: null,
        headSeq: 3,
      };
      const ps = parts("s", unit, c.epoch, c.step);
      expect(ps.length).toBeGreaterThan(5);
      const last = ps.at(-1) as StreamPart;
      expect(target.accept([last])).toEqual(["early"]);
      expect(target.accept(ps.slice(0, -1)).every((o) => o === "applied")).toBe(true);
      expect(target.state("s").pos.seq).toBe(0);
      expect(target.accept([ps[1] as StreamPart])).toEqual(["duplicate"]);
      expect(target.accept([last])).toEqual(["applied"]);
      expect(target.accept([last])).toEqual(["duplicate"]);
      expect(target.state("s").pos).toEqual({ seq: 3, copy: null });
      expect([...state.storage.sql.exec("SELECT id, length(v) FROM t").raw()]).toEqual([[1, 1_000_000]]);
    });
  });

  it("binlog changes of a table whose copy has not begun are left to its copy; copied rows are applied", async () => {
    const stub = env.TABLET.get(env.TABLET.idFromName("stream-target-copy"));
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB)");
      state.storage.sql.exec("CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB)");
      const target = new StreamTarget(state.storage);
      const start: StreamPos = { seq: 0, copy: { table: 0, after: null } };
      target.start(spec("s", start, ["t", "u"]));
      expect(target.state("s").phase).toBe("copy");
      const row = (table: string, id: number): RowChange => ({ table, columns: COLS, before: null, after: [id, "a", 1.5, null] });
      const c = target.newChain("s");
      const unit: StreamUnit = {
        from: start,
        to: { seq: 2, copy: { table: 1, after: null } },
        items: [row("t", 9), row("u", 9)],
        rows: [row("t", 1), row("t", 2)],
        lastCommitTs: null,
        headSeq: 2,
      };
      expect(target.accept(parts("s", unit, c.epoch, c.step))).toEqual(["applied"]);
      expect([...state.storage.sql.exec("SELECT 't', id FROM t UNION ALL SELECT 'u', id FROM u ORDER BY 1, 2").raw()]).toEqual([
        ["t", 1],
        ["t", 2],
        ["t", 9],
      ]);
      expect(target.state("s")).toMatchObject({ phase: "copy", rowsCopied: 2 });
    });
  });

  it("writes integers exactly (int64 ends, -0, into INTEGER, TEXT and untyped columns), a row of 100 columns too", async () => {
    const stub = env.TABLET.get(env.TABLET.idFromName("stream-target-ints"));
    await runInDurableObject(stub, (_i, state) => {
      const wide = Array.from({ length: 60 }, (_, k) => `i${k} INTEGER`).concat(Array.from({ length: 39 }, (_, k) => `s${k} TEXT`));
      state.storage.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, u)");
      state.storage.sql.exec(`CREATE TABLE w (id INTEGER PRIMARY KEY, ${wide.join(", ")})`);
      const target = new StreamTarget(state.storage);
      target.start(spec("s", { seq: 0, copy: null }, ["t", "w"]));
      const c = target.newChain("s");
      const cols = ["id", "n", "s", "u"];
      const wideCols = ["id", ...wide.map((d) => d.split(" ")[0] ?? "")];
      const wideRow: StreamValue[] = [1, ...Array.from({ length: 60 }, (_, k) => -k), ...Array.from({ length: 39 }, (_, k) => `t${k}`)];
      const unit: StreamUnit = {
        from: { seq: 0, copy: null },
        to: { seq: 2, copy: null },
        items: [
          { table: "t", columns: cols, before: null, after: [2n ** 63n - 1n, -(2n ** 63n), 7, -0] },
          { table: "t", columns: cols, before: null, after: [-5, 0, -(2n ** 63n), { real: 3 }] },
          { table: "w", columns: wideCols, before: null, after: wideRow },
        ],
        rows: [],
        lastCommitTs: null,
        headSeq: 2,
      };
      expect(target.accept(parts("s", unit, c.epoch, c.step))).toEqual(["applied"]);
      const got = [...state.storage.sql.exec("SELECT quote(id), quote(n), quote(s), quote(u), typeof(u) FROM t ORDER BY id").raw()];
      expect(got).toEqual([
        ["-5", "0", "'-9223372036854775808'", "3.0", "real"],
        ["9223372036854775807", "-9223372036854775808", "'7'", "0", "integer"],
      ]);
      const w = [...state.storage.sql.exec("SELECT i59, typeof(i59), s38 FROM w").raw()];
      expect(w).toEqual([[-59, "integer", "t38"]]);
    });
  });
});
