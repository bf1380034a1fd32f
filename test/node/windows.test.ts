// Window functions over shards: answered when every window is partitioned by a vindex column
// (each partition then lives whole on one shard), refused otherwise.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { diffResults } from "./result-compare.ts";

let c: Cluster;

beforeAll(async () => {
  c = createCluster({
    shards: 3,
    tables: {
      orders: { create: "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, qty INTEGER, note TEXT)", column: "customer_id" },
      customers: { create: "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)", column: "id" },
    },
  });
  const rows: string[] = [];
  for (let i = 1; i <= 30; i++) rows.push(`(${i}, ${i % 7}, ${(i * 5) % 9}, ${i % 4 === 0 ? "NULL" : `'n${i % 3}'`})`);
  for (const sql of [
    `INSERT INTO orders VALUES ${rows.join(", ")}`,
    "INSERT INTO customers VALUES (0, 'zed'), (1, 'ann'), (2, 'bob'), (3, 'cyd'), (4, 'dan'), (5, 'eve'), (6, 'fay')",
  ]) {
    await c.run(sql);
    c.reference(sql);
  }
});

afterAll(() => c.close());

describe("window functions over shards", () => {
  for (const sql of [
    "SELECT id, customer_id, row_number() OVER (PARTITION BY customer_id ORDER BY id) FROM orders",
    "SELECT id, sum(qty) OVER (PARTITION BY customer_id ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS running FROM orders ORDER BY id",
    "SELECT id, rank() OVER (PARTITION BY customer_id, note ORDER BY qty DESC) AS r FROM orders ORDER BY r, id LIMIT 7",
    "SELECT DISTINCT customer_id, count(*) OVER (PARTITION BY customer_id) FROM orders ORDER BY 1",
    "SELECT o.id, c.name, lag(o.qty) OVER (PARTITION BY c.id ORDER BY o.id) FROM orders o JOIN customers c ON c.id = o.customer_id",
  ]) {
    it(sql, async () => {
      const exp = c.reference(sql);
      const act = await c.run(sql);
      expect(diffResults(act, exp, { ordered: /ORDER BY id$|ORDER BY 1$/.test(sql) }), sql).toBeUndefined();
      if (/LIMIT/.test(sql)) expect(act.rows.length).toBe(exp.rows.length);
    });
  }

  for (const sql of [
    "SELECT id, row_number() OVER (ORDER BY id) FROM orders",
    "SELECT id, row_number() OVER (PARTITION BY note ORDER BY id) FROM orders",
    "SELECT id, sum(qty) OVER (PARTITION BY customer_id + 0) FROM orders",
    "SELECT customer_id, count(*), row_number() OVER (PARTITION BY customer_id) FROM orders GROUP BY customer_id",
  ]) {
    it(`refuses ${sql}`, async () => {
      await expect(c.run(sql)).rejects.toMatchObject({ code: "UNSUPPORTED" });
    });
  }

  it("a point query keeps any window (one shard computes it)", async () => {
    const sql = "SELECT id, row_number() OVER (ORDER BY qty, id) FROM orders WHERE customer_id = 3";
    expect(diffResults(await c.run(sql), c.reference(sql), { ordered: false })).toBeUndefined();
  });
});
