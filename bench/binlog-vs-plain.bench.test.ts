// What the binlog costs a write: inside ONE Tablet Durable Object, single-row inserts through the
// tablet's own `execute` (target check, transactionSync, AFTER trigger writing the row image,
// the commit event) versus the same inserts into a table of the same shape created with plain
// `sql.exec` (no triggers), each in its own transactionSync. Timed inside the object, so no RPC
// is on either side. Two commit regimes, because a tablet commits once per request:
//   - batched: a whole round commits once (`storage.sync()` at the end): the CPU/SQL cost;
//   - per row: `storage.sync()` after every row, as when each write is its own request.
// A third comparison fires the triggers without `execute` to split trigger cost from the rest.
// Local workerd: performance.now() advances during synchronous code (1 ms steps), so rounds are
// sized to take tens of ms; measure.ts refuses a round that reads 0.

import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Tablet } from "../tablet/tablet.ts";
import type { Envelope } from "../contract/envelope.ts";
import type { TabletStatus, Target } from "../contract/tablet-rpc.ts";
import { compare, emit, type BenchResult, type Timed } from "./measure.ts";

const SHAPE = "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)";
const TABLET_TABLE = "bench_rows";
const PLAIN_TABLE = "plain_rows";
const SIZE_ROWS = 2000;

const target: Target = { keyspace: "bench", shard: "-", version: 1 };

function stub(): DurableObjectStub<Tablet> {
  return env.TABLET.get(env.TABLET.idFromName("bench/-"));
}

type Commit = "batched" | "per-row";
type Insert = (instance: Tablet, state: DurableObjectState, id: number) => void;

const row = (id: number): [number, string, number] => [id, `user${id}`, (id % 37) * 1.5];

const viaExecute: Insert = (instance, _state, id) => {
  const r = instance.execute(target, [{ sql: `INSERT INTO ${TABLET_TABLE} (id, name, score) VALUES (?, ?, ?)`, params: row(id), kind: "insert" }]);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
};

const triggersOnly: Insert = (_instance, state, id) => {
  state.storage.transactionSync(() => state.storage.sql.exec(`INSERT INTO ${TABLET_TABLE} (id, name, score) VALUES (?, ?, ?)`, ...row(id)));
};

const plain: Insert = (_instance, state, id) => {
  state.storage.transactionSync(() => state.storage.sql.exec(`INSERT INTO ${PLAIN_TABLE} (id, name, score) VALUES (?, ?, ?)`, ...row(id)));
};

/** A side of a comparison: `ops` inserts with fresh ids, timed inside the Durable Object. */
function side(insert: Insert, commit: Commit, ids: { next: number }): Timed {
  return (ops) =>
    runInDurableObject(stub(), async (instance: Tablet, state) => {
      const t0 = performance.now();
      for (let i = 0; i < ops; i++) {
        insert(instance, state, ids.next++);
        if (commit === "per-row") await state.storage.sync();
      }
      await state.storage.sync();
      return performance.now() - t0;
    });
}

async function bytesPerRow(): Promise<BenchResult> {
  const [plainBytes, tabletBytes] = await runInDurableObject(stub(), async (instance: Tablet, state) => {
    const grow = async (insert: Insert, from: number): Promise<number> => {
      await state.storage.sync();
      const before = state.storage.sql.databaseSize;
      for (let i = 0; i < SIZE_ROWS; i++) insert(instance, state, from + i);
      await state.storage.sync();
      return (state.storage.sql.databaseSize - before) / SIZE_ROWS;
    };
    return [await grow(plain, 50_000_000), await grow(viaExecute, 50_000_000)];
  });
  return {
    name: "bytes per row written: binlog vs plain",
    unit: "B/row",
    baseline: { label: "plain SQLite", value: plainBytes, rounds: [plainBytes] },
    subject: { label: "tablet+binlog", value: tabletBytes, rounds: [tabletBytes] },
    ratio: tabletBytes / plainBytes,
    rounds: 1,
    opsPerRound: SIZE_ROWS,
    minRoundMs: 0,
    note: `databaseSize growth over ${SIZE_ROWS} single-row inserts (page-granular); the tablet's includes the row, its binlog row image and one commit event`,
  };
}

describe("binlog vs plain Durable Object SQLite", () => {
  it("single-row inserts through Tablet.execute vs a plain table, in one Durable Object", async () => {
    const st = stub().sync({ ...target, keyRange: "-", serving: true }, [{ index: 1, sql: `CREATE TABLE ${TABLET_TABLE} ${SHAPE}` }]);
    expect(((await st) as Envelope<TabletStatus>).ok).toBe(true);
    await runInDurableObject(stub(), (_instance: Tablet, state) => {
      state.storage.sql.exec(`CREATE TABLE ${PLAIN_TABLE} ${SHAPE}`);
    });
    // The baseline really has no binlog: triggers exist on the tablet's table only.
    const triggers = await runInDurableObject(stub(), (_instance: Tablet, state) =>
      state.storage.sql
        .exec<{ tbl_name: string }>("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'")
        .toArray()
        .map((t) => t.tbl_name),
    );
    expect(new Set(triggers)).toEqual(new Set([TABLET_TABLE]));

    // Each table gets its own id range per comparison, so every insert is a fresh row.
    const ids = (base: number) => ({ next: base });
    emit(
      await compare({
        name: "tablet write, batched commit: binlog vs plain",
        note: "rows per round in one implicit transaction, each row its own transactionSync; commit timed at round end",
        baseline: { label: "plain SQLite", run: side(plain, "batched", ids(1_000_000)) },
        subject: { label: "Tablet.execute", run: side(viaExecute, "batched", ids(1_000_000)) },
        rounds: 10,
        opsPerRound: 5000,
        warmupOps: 1000,
      }),
    );
    emit(
      await compare({
        name: "tablet write, commit per row: binlog vs plain",
        note: "storage.sync() after every row, as when each write is its own request",
        baseline: { label: "plain SQLite", run: side(plain, "per-row", ids(10_000_000)) },
        subject: { label: "Tablet.execute", run: side(viaExecute, "per-row", ids(10_000_000)) },
        rounds: 20,
        opsPerRound: 300,
        warmupOps: 100,
      }),
    );
    emit(
      await compare({
        name: "binlog triggers alone, batched: triggers vs plain",
        note: "raw sql.exec into the tablet's table (AFTER trigger fires; no target check, commit event or changes() read)",
        baseline: { label: "plain SQLite", run: side(plain, "batched", ids(20_000_000)) },
        subject: { label: "trigger insert", run: side(triggersOnly, "batched", ids(20_000_000)) },
        rounds: 10,
        opsPerRound: 5000,
        warmupOps: 1000,
      }),
    );
    emit(await bytesPerRow());
  });
});
