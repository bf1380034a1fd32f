// sum / total / avg across shards answer exactly what SQLite answers over all the rows: integer
// sums stay exact past 2^53 and past one shard's 64 bits, a sum that leaves 64 bits is SQLite's
// "integer overflow", and REALs are combined with SQLite's compensated (Kahan-Babuska-Neumaier)
// summation seeded by the exact integer part. The oracle is node:sqlite holding every row.

import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import type { SqlValue } from "../../contract/sql-values.ts";

let c: Cluster | undefined;
afterEach(() => {
  c?.close();
  c = undefined;
});

const BIG = 2n ** 53n + 1n;
const P62 = 2n ** 62n;

function cluster(shards = 3): Cluster {
  c = createCluster({
    shards,
    tables: {
      t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, g INTEGER, x)", column: "id" },
      u: { create: "CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INTEGER, y)", column: "id" },
    },
  });
  return c;
}

/** Ids in increasing order whose rows land on the shards named by `placement` (indexes into shardNames). */
function idsFor(cl: Cluster, placement: readonly number[]): number[] {
  const out: number[] = [];
  let id = 1;
  for (const want of placement) {
    const shard = cl.shardNames[want % cl.shardNames.length];
    while (cl.shardOf(id) !== shard) id++;
    out.push(id++);
  }
  return out;
}

/** A REAL with an integral value (a bound JS number that is a safe integer binds as INTEGER). */
interface Real {
  readonly real: number;
}
type Value = SqlValue | Real;

async function insert(cl: Cluster, table: "t" | "u", rows: readonly (readonly Value[])[]): Promise<void> {
  for (const r of rows) {
    const sql = `INSERT INTO ${table} VALUES (${r.map((v) => (isReal(v) ? "CAST(? AS REAL)" : "?")).join(", ")})`;
    const params = r.map((v) => (isReal(v) ? v.real : v));
    await cl.run(sql, params);
    cl.reference(sql, params);
  }
}

function isReal(v: Value): v is Real {
  return typeof v === "object" && v !== null && "real" in v;
}

/** Same rows or the same error as the reference. */
async function same(cl: Cluster, sql: string): Promise<void> {
  let want: { rows?: SqlValue[][]; code?: string };
  try {
    want = { rows: cl.reference(sql).rows };
  } catch (e) {
    want = { code: (e as { code?: string }).code ?? "?" };
  }
  let got: { rows?: SqlValue[][]; code?: string };
  try {
    got = { rows: (await cl.run(sql)).rows };
  } catch (e) {
    got = { code: (e as { code?: string }).code ?? "?" };
  }
  // Object.is on each value: 1 and 1.0 are one JS number, but a bigint is not a number.
  expect(got, sql).toEqual(want);
}

/** Rows with value `x` placed one per shard (`spread`) or all on the first shard. */
async function load(cl: Cluster, values: readonly Value[], spread: boolean): Promise<void> {
  const ids = idsFor(
    cl,
    values.map((_, i) => (spread ? i : 0)),
  );
  await insert(
    cl,
    "t",
    values.map((x, i) => [ids[i] ?? 0, i % 2, x]),
  );
}

const AGGS = "SELECT sum(x), total(x), avg(x), count(x) FROM t";

describe("exact sums across shards", () => {
  it("total() over {2^53+1, 1} on two shards is 9007199254740994, as SQLite", async () => {
    const cl = cluster(2);
    await load(cl, [BIG, 1], true);
    expect((await cl.run("SELECT total(x) FROM t")).rows).toEqual([[9007199254740994]]);
    await same(cl, AGGS);
  });

  it("integers whose sum leaves 64 bits on one shard still give total() and avg()", async () => {
    const cl = cluster(2);
    await load(cl, [P62, P62, P62], false);
    await same(cl, "SELECT total(x), avg(x) FROM t");
    expect((await cl.run("SELECT avg(x) FROM t")).rows).toEqual([[2 ** 62]]);
  });

  it("sum() of integers beyond 64 bits is SQLite's integer overflow, spread or not", async () => {
    for (const spread of [true, false]) {
      const cl = cluster(2);
      await load(cl, [P62, P62], spread);
      await expect(cl.run("SELECT sum(x) FROM t")).rejects.toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringContaining("integer overflow") });
      await same(cl, "SELECT sum(x) FROM t");
      cl.close();
      c = undefined;
    }
  });

  it("a REAL anywhere makes the sum REAL, seeded with the exact integer part", async () => {
    const cl = cluster(3);
    await load(cl, [BIG, { real: 1 }, 1], true);
    await same(cl, AGGS);
    expect((await cl.run("SELECT sum(x) FROM t")).rows).toEqual([[9007199254740996]]);
  });

  it("REALs that cancel across shards keep the small term (compensated summation)", async () => {
    const cl = cluster(3);
    await load(cl, [{ real: 1e16 }, { real: 1 }, { real: -1e16 }], true);
    await same(cl, AGGS);
    expect((await cl.run("SELECT sum(x) FROM t")).rows).toEqual([[1]]);
  });

  it("+Infinity and -Infinity sum to NULL (SQLite has no NaN), whether they meet on one shard or at the gate", async () => {
    for (const spread of [true, false]) {
      const cl = cluster(3);
      await load(cl, [{ real: Number.POSITIVE_INFINITY }, { real: Number.NEGATIVE_INFINITY }, 1], spread);
      await same(cl, AGGS);
      expect((await cl.run(AGGS)).rows).toEqual([[null, null, null, 3]]);
      await same(cl, "SELECT g, sum(x), total(x), avg(x) FROM t GROUP BY g ORDER BY g");
      cl.close();
      c = undefined;
    }
  });

  it("integer-looking text sums as an integer, other text as REAL, as SQLite", async () => {
    const cl = cluster(3);
    await load(cl, ["12", 5, "7"], true);
    await same(cl, AGGS);
    await insert(cl, "t", [[1000, 0, "1.5"]]);
    await same(cl, AGGS);
  });

  it("per-group sums, HAVING and DISTINCT aggregates over large integers", async () => {
    const cl = cluster(3);
    await load(cl, [BIG, 1, BIG, 2n ** 60n, 2n ** 60n, 3.5, { real: 2 }, null], true);
    await same(cl, "SELECT g, sum(x), total(x), avg(x) FROM t GROUP BY g ORDER BY g");
    await same(cl, "SELECT g FROM t GROUP BY g HAVING sum(x) > 9007199254740993 ORDER BY g");
    await same(cl, "SELECT sum(DISTINCT x), total(DISTINCT x), avg(DISTINCT x), count(DISTINCT x) FROM t");
    await same(cl, "SELECT sum(x), total(x), avg(x) FROM t WHERE x IS NULL");
  });

  it("aggregates over a gate join combine the joined rows' values exactly", async () => {
    const cl = cluster(3);
    const ids = idsFor(cl, [0, 1, 2]);
    await insert(
      cl,
      "t",
      ids.map((id) => [id, 0, 1]),
    );
    // u is sharded by its own id, so t JOIN u ON u.t_id = t.id is joined at the gate.
    const uids = idsFor(cl, [2, 0, 1, 2]);
    await insert(cl, "u", [
      [uids[0] ?? 0, ids[0] ?? 0, BIG],
      [uids[1] ?? 0, ids[1] ?? 0, 1],
      [uids[2] ?? 0, ids[2] ?? 0, P62],
      [uids[3] ?? 0, ids[2] ?? 0, P62],
    ]);
    await same(cl, "SELECT t.g, total(u.y), avg(u.y) FROM t JOIN u ON u.t_id = t.id GROUP BY t.g");
    await same(cl, "SELECT sum(u.y) FROM t JOIN u ON u.t_id = t.id");
    await same(cl, "SELECT sum(u.y), total(u.y) FROM t JOIN u ON u.t_id = t.id WHERE u.y < 4611686018427387904");
  });

  it("pinned (fast-check, before exact partials): {-522, -3695854678760333558} on two shards", async () => {
    const cl = cluster(4);
    const ids = idsFor(cl, [1, 0]);
    await insert(cl, "t", [
      [ids[0] ?? 0, 0, -522],
      [ids[1] ?? 0, 0, -3695854678760333558n],
    ]);
    await same(cl, AGGS);
  });

  it("property: sum/total/avg of random integers and REALs equal SQLite's over one database", async () => {
    // Invariant: for any multiset of values placed on any shards, the gate's sum/total/avg equal
    // node:sqlite's over all rows (the same value or the same error), whenever SQLite's own answer
    // does not depend on the order it reads rows in.
    const value = fc.oneof(
      fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }),
      fc.integer({ min: -1000, max: 1000 }),
      fc.constantFrom(BIG, -BIG, 2n ** 63n - 1n, -(2n ** 63n)),
      fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
      fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(value, fc.nat(3)), { minLength: 0, maxLength: 8 }), async (rows) => {
        const cl = createCluster({ shards: 4, tables: { t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, g INTEGER, x)", column: "id" } } });
        try {
          const ids = idsFor(
            cl,
            rows.map(([, s]) => s),
          );
          await insert(
            cl,
            "t",
            rows.map(([x], i) => [ids[i] ?? 0, 0, typeof x === "bigint" && x >= -(2n ** 53n) && x <= 2n ** 53n ? Number(x) : x]),
          );
          if (orderDependent(rows.map(([x]) => x))) return;
          await same(cl, AGGS);
        } finally {
          cl.close();
        }
      }),
      { numRuns: 200 },
    );
  });
});

/**
 * True when SQLite's answer over these values could depend on row order: an all-integer running
 * sum can overflow in one order and not another, and KBN's last bit can move once REALs and
 * large integers mix. Such inputs are skipped by the property (pinned cases above cover them).
 */
function orderDependent(values: readonly (number | bigint)[]): boolean {
  let lo = 0n;
  let hi = 0n;
  let exact = 0n;
  let reals = false;
  for (const v of values) {
    if (typeof v === "bigint" || Number.isInteger(v)) {
      const b = BigInt(v);
      exact += b;
      if (b < 0n) lo += b;
      else hi += b;
    } else reals = true;
  }
  const outOfRange = (x: bigint): boolean => x > 2n ** 63n - 1n || x < -(2n ** 63n);
  if (!reals) return (outOfRange(lo) || outOfRange(hi)) && !outOfRange(exact);
  // Mixed: exact only while every integer partial is exact in a double.
  return outOfRange(lo) || outOfRange(hi) || hi - lo > 2n ** 52n;
}
