// Planner-level findings of the red team (see test/workers/red-team.test.ts for those through
// the real gate), each checked against one SQLite database holding every row, and the
// counterexamples the routing property found while they were fixed.

import { afterEach, describe, expect, it } from "vitest";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";

let open: Cluster | undefined;
afterEach(() => {
  open?.close();
  open = undefined;
});

function cluster(): Cluster {
  open = createCluster({
    shards: 4,
    tables: {
      t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)", column: "id" },
      s: { create: "CREATE TABLE s (code TEXT PRIMARY KEY, v)", column: "code" },
    },
  });
  return open;
}

async function both(c: Cluster, sql: string): Promise<void> {
  await c.run(sql);
  c.reference(sql);
}

async function refusal(p: Promise<unknown>): Promise<{ code: unknown; id: unknown }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: unknown; id?: unknown };
    return { code: err.code, id: err.id };
  }
  throw new Error("expected a refusal");
}

describe("rowid across shards", () => {
  it("DELETE … WHERE rowid IN (1, 2) on a text-keyed table is refused, and no shard lost a row", async () => {
    const c = cluster();
    await both(c, "INSERT INTO s VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4), ('e', 5), ('f', 6)");
    expect(await refusal(c.run("DELETE FROM s WHERE rowid IN (1, 2)"))).toEqual({ code: "UNSUPPORTED", id: "VD2601" });
    expect(show((await c.run("SELECT count(*) FROM s")).rows)).toBe(show([[6]]));
  });

  it("a result column aliased oid (an order id, say) is a name, not the rowid (pinned: joins.test.ts)", async () => {
    const c = cluster();
    await both(c, "INSERT INTO s VALUES ('a', 1), ('b', 2)");
    const q = "SELECT code AS oid, v FROM s ORDER BY oid";
    expect(show((await c.run(q)).rows)).toBe(show(c.reference(q).rows));
  });

  it("WHERE on a name that is both a result alias and the rowid is refused: SQLite reads the rowid there", async () => {
    const c = cluster();
    await both(c, "INSERT INTO s VALUES ('a', 1), ('b', 2)");
    expect(await refusal(c.run("SELECT code AS oid FROM s WHERE oid = 1"))).toEqual({ code: "UNSUPPORTED", id: "VD2601" });
  });
});

describe("REAL literals in routing", () => {
  it("-9223372036854775808 is SQLite's smallest INTEGER and still routes to one shard (pinned: planner.routing.test.ts)", async () => {
    const c = cluster();
    await c.run("INSERT INTO t (id, a) VALUES (?, 'row')", [-9223372036854775808n]);
    const r = await c.run("SELECT id, a FROM t WHERE id = -9223372036854775808");
    expect(c.lastTouched).toEqual([c.shardOf(-9223372036854775808n)]);
    expect(show(r.rows)).toBe(show([[-9223372036854775808n, "row"]]));
  });

  it("UPDATE and DELETE WHERE code = 2.0 reach the row '2.0' wherever it lives, as in SQLite", async () => {
    const c = cluster();
    await both(c, "INSERT INTO s VALUES ('2', 'int'), ('2.0', 'real')");
    for (const q of [
      "UPDATE s SET v = 'hit' WHERE code = 2.0",
      "SELECT code, v FROM s ORDER BY code",
      "DELETE FROM s WHERE code IN (2.0)",
      "SELECT code, v FROM s ORDER BY code",
    ]) {
      const got = await c.run(q);
      const want = c.reference(q);
      expect({ q, rows: show(got.rows), n: got.rowsAffected }).toEqual({ q, rows: show(want.rows), n: want.rowsAffected });
    }
  });

  it("a multi-row INSERT with a REAL literal for a TEXT vindex column is refused before any shard is written", async () => {
    const c = cluster();
    expect(await refusal(c.run("INSERT INTO s VALUES ('x', 1), (2.5, 2)"))).toEqual({ code: "UNSUPPORTED", id: "VD2602" });
    expect(c.lastTouched).toEqual([]);
  });
});
