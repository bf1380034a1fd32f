// INSERT … SELECT writes the SELECT's values back exactly, judged against one SQLite: a REAL
// whose value is integral (1.0, x * 1.0), which JavaScript reads as 1, is written as a REAL (a
// TEXT column stores '1.0', an untyped one a REAL), and an integer beyond 2^53 stays exact.

import { describe, expect, it } from "vitest";
import { clusterPerTest } from "./cluster-per-test.ts";
import type { Cluster } from "./fake-cursor.ts";

const newCluster = clusterPerTest();

const TABLES = {
  src: { create: "CREATE TABLE src (id INTEGER PRIMARY KEY, r REAL, n INTEGER, big INTEGER)", column: "id" },
  dst: { create: "CREATE TABLE dst (id INTEGER PRIMARY KEY, t TEXT, u, r REAL, n NUMERIC)", column: "id" },
  byText: { create: "CREATE TABLE byText (code TEXT PRIMARY KEY, v)", column: "code" },
};

const SEED =
  "INSERT INTO src (id, r, n, big) VALUES (1, 4.0, 4, 9007199254740993), (2, 2.5, 3, -9007199254740993), (3, -7.0, 0, 1), (4, NULL, 5, NULL), (5, 1e16, 6, 2)";
const READ = "SELECT id, quote(t), typeof(t), quote(u), typeof(u), quote(r), quote(n) FROM dst ORDER BY id";

async function seeded(): Promise<Cluster> {
  const cl = newCluster({ shards: 4, tables: TABLES });
  await cl.run(SEED);
  cl.reference(SEED);
  return cl;
}

async function both(cl: Cluster, sql: string): Promise<void> {
  const gate = await cl.run(sql);
  const ref = cl.reference(sql);
  expect(gate.rowsAffected, sql).toBe(ref.rowsAffected);
  expect((await cl.run(READ)).rows, sql).toEqual(cl.reference(READ).rows);
}

describe("INSERT … SELECT carries the SELECT's values exactly", () => {
  for (const sql of [
    "INSERT INTO dst (id, t, u, r, n) SELECT 1, 1.0, 1.0, 1.0, 1.0",
    "INSERT INTO dst (id, t, u, r, n) SELECT 2, 1, 1, 1, 1",
    "INSERT INTO dst (id, t, u, r, n) SELECT id + 10, r, r, r, r FROM src",
    "INSERT INTO dst (id, t, u, r, n) SELECT id + 20, n * 1.0, n * 1.0, n, n * 1.0 FROM src",
    "INSERT INTO dst (id, t, u, r, n) SELECT id + 30, big, big, big, big FROM src",
    "INSERT INTO dst (id, t, u) SELECT id + 40, 1e16, -0.0 FROM src WHERE id = 1",
    "INSERT INTO dst (id, t, u) SELECT id + 50, r, n FROM src WHERE id IN (1, 3) ORDER BY r LIMIT 5",
    "INSERT INTO dst (t, u) SELECT r, r FROM src WHERE id <= 3 ORDER BY id",
  ]) {
    it(sql, async () => {
      const cl = await seeded();
      await both(cl, sql);
    });
  }

  it("a TEXT vindex column given an INTEGER from an untyped or REAL-free SELECT is placed and found by its digits", async () => {
    const cl = await seeded();
    const sql = "INSERT INTO byText (code, v) SELECT n, id FROM src";
    await cl.run(sql);
    cl.reference(sql);
    for (const q of ["SELECT v FROM byText WHERE code = '4'", "SELECT v FROM byText WHERE code = 6", "SELECT count(*) FROM byText"]) {
      expect((await cl.run(q)).rows, q).toEqual(cl.reference(q).rows);
    }
  });

  it("an INTEGER the tablets report from an untyped column places the row by its digits (it was refused as a possible REAL, VD2603)", async () => {
    const cl = await seeded();
    const setup = "INSERT INTO dst (id, u) VALUES (1, 41), (2, 42)";
    await cl.run(setup);
    cl.reference(setup);
    const sql = "INSERT INTO byText (code, v) SELECT u, id FROM dst";
    await cl.run(sql);
    cl.reference(sql);
    for (const q of ["SELECT v FROM byText WHERE code = '41'", "SELECT v FROM byText WHERE code = 42", "SELECT code, typeof(code) FROM byText ORDER BY v"]) {
      expect((await cl.run(q)).rows, q).toEqual(cl.reference(q).rows);
    }
  });

  it("a REAL placing the row by a TEXT vindex column is still refused (VD2603): SQLite stores its text, which the gate does not compute", async () => {
    const cl = await seeded();
    await expect(cl.run("INSERT INTO byText (code, v) SELECT r, id FROM src WHERE id = 1")).rejects.toMatchObject({ code: "UNSUPPORTED", id: "VD2603" });
  });
});
