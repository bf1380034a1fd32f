// An INSERT that leaves the vindex column without a value (left out, NULL, DEFAULT VALUES) has no
// shard to go to. Where the column is NOT NULL, SQLite itself fails such a statement, so the gate
// answers as one SQLite does (CONSTRAINT, nothing written); where SQLite would store the row, the
// gate refuses it for a sharding reason (UNSUPPORTED). Each refusal keeps its id.

import { describe, expect, it } from "vitest";
import { clusterPerTest } from "./cluster-per-test.ts";

const newCluster = clusterPerTest();

const TABLES = {
  nn: { create: "CREATE TABLE nn (k TEXT NOT NULL, v TEXT)", column: "k" },
  nd: { create: "CREATE TABLE nd (k TEXT NOT NULL DEFAULT 'd', v TEXT)", column: "k" },
  ni: { create: "CREATE TABLE ni (k TEXT NOT NULL ON CONFLICT IGNORE, v TEXT)", column: "k" },
  wr: { create: "CREATE TABLE wr (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID", column: "k" },
  nl: { create: "CREATE TABLE nl (k TEXT, v TEXT)", column: "k" },
  src: { create: "CREATE TABLE src (id INTEGER PRIMARY KEY, k TEXT)", column: "id" },
};

async function outcome(p: Promise<unknown>): Promise<{ code: string; id?: string }> {
  return p.then(
    () => ({ code: "ok" }),
    (e: unknown) => {
      const { code, id } = e as { code?: string; id?: string };
      return { code: code ?? "?", ...(id ? { id } : {}) };
    },
  );
}

function sqliteOutcome(run: () => unknown): string {
  try {
    run();
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code ?? "?";
  }
}

describe("an INSERT without a vindex value", () => {
  const cases: [string, string, string | undefined][] = [
    // [statement, gate's code, its id]; SQLite's own outcome is checked beside it.
    ["INSERT INTO nn (v) VALUES ('x')", "CONSTRAINT", "VD2604"],
    ["INSERT INTO nn (k, v) VALUES (NULL, 'x')", "CONSTRAINT", "VD2605"],
    ["INSERT INTO nn (k, v) VALUES ('a', 'x'), (NULL, 'y')", "CONSTRAINT", "VD2605"],
    ["INSERT INTO nn DEFAULT VALUES", "CONSTRAINT", "VD2607"],
    ["INSERT OR REPLACE INTO nn (k, v) VALUES (NULL, 'x')", "CONSTRAINT", "VD2605"],
    ["INSERT OR FAIL INTO nn (v) VALUES ('x')", "CONSTRAINT", "VD2604"],
    ["INSERT INTO nn (k, v) SELECT NULL, 'x'", "CONSTRAINT", "VD2605"],
    ["INSERT INTO nn (k, v) SELECT k, 'x' FROM src", "CONSTRAINT", "VD2605"],
    ["INSERT INTO wr (k, v) VALUES (NULL, 'x')", "CONSTRAINT", "VD2605"],
    ["INSERT INTO nd (k, v) VALUES (NULL, 'x')", "CONSTRAINT", "VD2605"],
    // SQLite stores these (a DEFAULT, a nullable column): a sharding refusal.
    ["INSERT INTO nd (v) VALUES ('x')", "UNSUPPORTED", "VD2604"],
    ["INSERT OR REPLACE INTO nd (k, v) VALUES (NULL, 'x')", "UNSUPPORTED", "VD2605"],
    ["INSERT INTO nl (k, v) VALUES (NULL, 'x')", "UNSUPPORTED", "VD2605"],
    ["INSERT INTO nl (v) VALUES ('x')", "UNSUPPORTED", "VD2604"],
    ["INSERT INTO nl DEFAULT VALUES", "UNSUPPORTED", "VD2607"],
  ];
  for (const [sql, code, id] of cases) {
    it(`${sql}: ${code} ${id ?? ""}`, async () => {
      const cl = newCluster({ shards: 4, tables: TABLES });
      await cl.run("INSERT INTO src (id, k) VALUES (1, 'a'), (2, NULL)");
      cl.reference("INSERT INTO src (id, k) VALUES (1, 'a'), (2, NULL)");
      const gate = await outcome(cl.run(sql));
      expect(gate).toEqual({ code, ...(id ? { id } : {}) });
      // CONSTRAINT exactly where one SQLite fails the statement; and then nothing was written.
      expect(sqliteOutcome(() => cl.reference(sql)) === "CONSTRAINT").toBe(code === "CONSTRAINT");
      const table = /INTO (\w+)/.exec(sql)?.[1] ?? "";
      expect((await cl.run(`SELECT count(*) FROM ${table}`)).rows).toEqual([[0]]);
    });
  }

  it("OR IGNORE (or the column's NOT NULL ON CONFLICT IGNORE) skips a row whose NOT NULL vindex value is NULL and writes the others, as SQLite does", async () => {
    const cl = newCluster({ shards: 4, tables: TABLES });
    for (const sql of [
      "INSERT OR IGNORE INTO nn (k, v) VALUES (NULL, 'x'), ('a', 'y'), (NULL, 'z')",
      "INSERT OR IGNORE INTO nn (k, v) VALUES (NULL, 'x')",
      "INSERT INTO ni (k, v) VALUES ('b', 'x'), (NULL, 'y')",
      "INSERT OR IGNORE INTO nn (k, v) SELECT NULL, 'p' UNION ALL SELECT 'c', 'q'",
    ]) {
      const gate = await cl.run(sql);
      expect(gate.rowsAffected, sql).toBe(cl.reference(sql).rowsAffected);
    }
    for (const t of ["nn", "ni"]) {
      const all = `SELECT k, v FROM ${t} ORDER BY k`;
      expect((await cl.run(all)).rows).toEqual(cl.reference(all).rows);
    }
  });
});
