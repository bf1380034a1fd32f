// Reference tables: every write reaches every shard's copy, every read one copy, and a refused
// write changes no copy.

import { afterEach, describe, expect, it } from "vitest";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";

let c: Cluster | undefined;
afterEach(() => {
  c?.close();
  c = undefined;
});

function cluster(): Cluster {
  c = createCluster({
    shards: 4,
    tables: {
      countries: { create: "CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT NOT NULL, pop INTEGER)", reference: true },
      stamped: { create: "CREATE TABLE stamped (id INTEGER PRIMARY KEY, at TEXT DEFAULT CURRENT_TIMESTAMP)", reference: true },
      users: { create: "CREATE TABLE users (id INTEGER PRIMARY KEY, country TEXT)", column: "id" },
    },
  });
  return c;
}

function copies(cl: Cluster, sql: string): string[] {
  return cl.shardNames.map((s) => show(cl.onShard(s, sql).rows));
}

describe("reference tables", () => {
  it("INSERT, UPDATE, upsert and DELETE reach every shard's copy; the answer counts one copy", async () => {
    const cl = cluster();
    const ins = await cl.run("INSERT INTO countries (code, name, pop) VALUES ('fr', 'France', 68), ('de', 'Germany', ?), ('jp', 'Japan', 124)", [84]);
    expect(ins.rowsAffected).toBe(3);
    expect(cl.lastTouched.length).toBe(4);
    const up = await cl.run("UPDATE countries SET pop = pop + 1 WHERE code IN ('fr', 'de')");
    expect(up.rowsAffected).toBe(2);
    const ups = await cl.run(
      "INSERT INTO countries (code, name, pop) VALUES ('jp', 'Nippon', 125) ON CONFLICT(code) DO UPDATE SET name = excluded.name RETURNING code, name",
    );
    expect(ups.rows).toEqual([["jp", "Nippon"]]);
    const del = await cl.run("DELETE FROM countries WHERE pop < ?", [80]);
    expect(del.rowsAffected).toBe(1);
    const expected = [
      ["de", "Germany", 85],
      ["jp", "Nippon", 124],
    ];
    for (const copy of copies(cl, "SELECT code, name, pop FROM countries ORDER BY code")) expect(copy).toBe(show(expected));
    const read = await cl.run("SELECT code, name, pop FROM countries ORDER BY code");
    expect(cl.lastTouched.length).toBe(1);
    expect(show(read.rows)).toBe(show(expected));
  });

  it("a write the first shard refuses changes no copy", async () => {
    const cl = cluster();
    await cl.run("INSERT INTO countries (code, name) VALUES ('fr', 'France')");
    await expect(cl.run("INSERT INTO countries (code, name) VALUES ('it', 'Italy'), ('fr', 'again')")).rejects.toMatchObject({ code: "CONSTRAINT" });
    await expect(cl.run("UPDATE countries SET name = NULL")).rejects.toMatchObject({ code: "CONSTRAINT" });
    for (const copy of copies(cl, "SELECT code, name FROM countries")) expect(copy).toBe(show([["fr", "France"]]));
  });

  it("refuses what would differ between copies", async () => {
    const cl = cluster();
    for (const sql of [
      "INSERT INTO countries (code, name, pop) VALUES ('x', 'X', random())",
      "UPDATE countries SET name = datetime('now')",
      "UPDATE countries SET name = CURRENT_TIMESTAMP",
      "INSERT INTO countries (code, name) SELECT country, 'n' FROM users",
      "DELETE FROM countries WHERE code IN (SELECT country FROM users)",
      "INSERT INTO stamped (id) VALUES (1)",
    ]) {
      await expect(cl.run(sql), sql).rejects.toMatchObject({ code: "UNSUPPORTED" });
    }
    for (const copy of copies(cl, "SELECT count(*) FROM countries")) expect(copy).toBe(show([[0]]));
  });
});
