// The gate refuses (UNSUPPORTED VD2300) a SELECT that reads to its end a recursive CTE that
// never stops adding rows, and nothing that SQLite would finish.

import { DatabaseSync } from "node:sqlite";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { refuseEndless } from "../../gate/planner/endless.ts";
import { parseOne } from "../../gate/sql/parse.ts";
import { toVtError } from "../../contract/errors.ts";

function refusal(sql: string): { code: string; id: unknown } | undefined {
  try {
    refuseEndless(parseOne(sql).stmt);
    return undefined;
  } catch (e) {
    const vt = toVtError(e);
    return { code: vt.code, id: vt["id"] };
  }
}

describe("endless recursive CTEs", () => {
  it("refuses the statement that froze the local cluster", () => {
    expect(refusal("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c")).toEqual({ code: "UNSUPPORTED", id: "VD2300" });
  });

  it("refuses every main SELECT that must read all of it", () => {
    const c = "WITH RECURSIVE c(x, y) AS (SELECT 1, 'a' UNION ALL SELECT x + 1, y || 'a' FROM c) ";
    for (const main of [
      "SELECT * FROM c",
      "SELECT x FROM c ORDER BY x DESC",
      "SELECT sum(x), max(y) FROM c",
      "SELECT y, count(*) FROM c GROUP BY y HAVING count(*) > 1",
      "SELECT x, row_number() OVER (ORDER BY x) FROM c",
    ]) {
      expect(refusal(c + main), main).toEqual({ code: "UNSUPPORTED", id: "VD2300" });
    }
  });

  it("lets through whatever SQLite would finish, or might", () => {
    for (const sql of [
      // a condition or a LIMIT in the step ends the recursion
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 10) SELECT count(*) FROM c",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 10) SELECT count(*) FROM c",
      // the main query stops reading, or never starts
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c LIMIT 5",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c WHERE 0",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT 1",
      // UNION ends when the step repeats a row
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION SELECT 1 FROM c) SELECT count(*) FROM c",
      // a seed that may be empty, a step that joins, DISTINCT in the step
      "WITH RECURSIVE c(x) AS (SELECT 1 FROM t UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c, t) SELECT count(*) FROM c",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT DISTINCT x+1 FROM c) SELECT count(*) FROM c",
      // not recursive
      "WITH c(x) AS (SELECT 1) SELECT count(*) FROM c",
    ]) {
      expect(refusal(sql), sql).toBeUndefined();
    }
  });
});

// Invariant: whenever the gate refuses a statement as endless, its recursive CTE really never
// stops: capped at K rows (a LIMIT added to its step), it reaches the cap for every K tried, so
// uncapped it grows without end. (The main SELECT's part of the proof, no WHERE and no LIMIT, is
// structural and pinned by the examples above.)
describe("property: a CTE refused as endless fills any cap", () => {
  const seed = fc.constantFrom("SELECT 1", "SELECT 1 FROM t", "SELECT 1 WHERE 0", "SELECT 2, 3", "SELECT count(*) FROM t", "VALUES (1)");
  const step = fc.constantFrom(
    "SELECT x + 1 FROM c",
    "SELECT x FROM c",
    "SELECT x + 1 FROM c WHERE x < 3",
    "SELECT x + 1 FROM c, t",
    "SELECT DISTINCT x FROM c",
    "SELECT x + 1 FROM c WHERE 0",
    "SELECT x + (SELECT count(*) FROM t) FROM c",
  );
  const op = fc.constantFrom("UNION ALL", "UNION");
  const main = fc.constantFrom("SELECT count(*) FROM c", "SELECT x FROM c ORDER BY x", "SELECT x FROM c LIMIT 2", "SELECT count(*) FROM c WHERE x > 0");

  it("holds", () => {
    const db = new DatabaseSync(":memory:");
    db.exec("CREATE TABLE t (a INTEGER)");
    db.exec("INSERT INTO t VALUES (1), (2)");
    try {
      fc.assert(
        fc.property(seed, op, step, main, (s, o, st, m) => {
          const cte = (tail: string): string => `WITH RECURSIVE c(x) AS (${s} ${o} ${st}${tail})`;
          const sql = `${cte("")} ${m}`;
          let refused = false;
          try {
            refuseEndless(parseOne(sql).stmt);
          } catch (e) {
            expect(toVtError(e)["id"]).toBe("VD2300");
            refused = true;
          }
          if (!refused) return;
          for (const k of [7, 500]) {
            let n: unknown;
            try {
              n = (db.prepare(`${cte(` LIMIT ${k}`)} SELECT count(*) AS n FROM c`).get() as { n: unknown }).n;
            } catch {
              // SQLite refuses the statement itself (a column count that does not match, …): the
              // refusal loses no answer.
              continue;
            }
            expect(n, sql).toBe(k);
          }
        }),
        { numRuns: 300 },
      );
    } finally {
      db.close();
    }
  });
});
