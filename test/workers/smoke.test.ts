import { describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";

describe("gate end to end", () => {
  it("creates a table, spreads 1000 rows over both shards, and answers point, count and ordered queries", async () => {
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)");
    for (let i = 0; i < 10; i++) {
      const values = Array.from({ length: 100 }, (_, j) => `(${i * 100 + j + 1}, 'user${i * 100 + j + 1}', ${(i * 100 + j) % 37})`).join(", ");
      await sql(`INSERT INTO users (id, name, score) VALUES ${values}`);
    }
    const topo = await api<{ keyspaces: { name: string; shards: { name: string; rowCount: number }[] }[] }>("GET", "/v1/topology");
    const main = topo.body.keyspaces.find((k) => k.name === "main");
    expect(main?.shards.map((s) => s.name)).toEqual(["-80", "80-"]);
    const counts = main?.shards.map((s) => s.rowCount) ?? [];
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1000);
    for (const c of counts) expect(c).toBeGreaterThan(400);

    // Row counts follow later writes (kept from the binlog after the first count).
    await sql("DELETE FROM users WHERE id > 990");
    await sql("REPLACE INTO users (id, name, score) VALUES (5, 'five', 1), (2000, 'new', 2)");
    const again = await api<{ keyspaces: { name: string; shards: { rowCount: number }[] }[] }>("GET", "/v1/topology");
    const total = again.body.keyspaces.find((k) => k.name === "main")?.shards.reduce((a, s) => a + s.rowCount, 0);
    expect(total).toBe(991);
    await sql("DELETE FROM users WHERE id = 2000");
    for (let id = 991; id <= 1000; id++) await sql("INSERT INTO users (id, name, score) VALUES (?, ?, ?)", [id, `user${id}`, (id - 1) % 37]);

    expect((await sql("SELECT id, name FROM users WHERE id = ?", [42])).rows).toEqual([[42, "user42"]]);
    expect((await sql("SELECT count(*) FROM users")).rows).toEqual([[1000]]);
    const top = await sql("SELECT id, score FROM users ORDER BY score DESC, id LIMIT 3 OFFSET 1");
    expect(top.columns).toEqual(["id", "score"]);
    expect(top.rows).toEqual([
      [74, 36],
      [111, 36],
      [148, 36],
    ]);
  });
});
