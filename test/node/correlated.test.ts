// Correlated subqueries whose rows live with the outer row (joined on the vindex, or reading
// reference tables) run on the shards as written; others stay UNSUPPORTED.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { diffResults } from "./result-compare.ts";

let c: Cluster;

beforeAll(async () => {
  c = createCluster({
    shards: 4,
    tables: {
      customers: { create: "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, tier INTEGER)", column: "id" },
      orders: { create: "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, qty INTEGER)", column: "customer_id" },
      tiers: { create: "CREATE TABLE tiers (tier INTEGER PRIMARY KEY, label TEXT)", reference: true },
    },
  });
  const writes = [
    "INSERT INTO tiers VALUES (0, 'free'), (1, 'pro')",
    `INSERT INTO customers VALUES ${Array.from({ length: 12 }, (_, i) => `(${i + 1}, 'c${i + 1}', ${i % 3})`).join(", ")}`,
    `INSERT INTO orders VALUES ${Array.from({ length: 30 }, (_, i) => `(${i + 1}, ${(i * 5) % 13}, ${i % 4})`).join(", ")}`,
  ];
  for (const w of writes) {
    await c.run(w);
    c.reference(w);
  }
});

afterAll(() => c.close());

async function same(sql: string): Promise<void> {
  const exp = c.reference(sql);
  const act = await c.run(sql);
  expect(diffResults(act, exp, { ordered: /ORDER BY/.test(sql) && !/LIMIT/.test(sql) }), sql).toBeUndefined();
}

describe("correlated subqueries over co-located rows", () => {
  for (const sql of [
    "SELECT id, name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.qty > 2)",
    "SELECT id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)",
    "SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n FROM customers c ORDER BY n DESC, c.id",
    "SELECT c.id, (SELECT sum(qty) FROM orders WHERE customer_id = c.id) FROM customers c WHERE c.id IN (1, 2, 3)",
    "SELECT id FROM customers c WHERE (SELECT label FROM tiers t WHERE t.tier = c.tier) = 'pro'",
    "SELECT tier, count(*) FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) GROUP BY tier",
    "SELECT o.id FROM orders o WHERE o.qty = (SELECT max(qty) FROM orders o2 WHERE o2.customer_id = o.customer_id) ORDER BY o.id",
  ]) {
    it(sql, () => same(sql));
  }

  it("UPDATE and DELETE with a co-located correlated subquery", async () => {
    for (const sql of [
      "UPDATE customers SET tier = 2 WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = customers.id AND o.qty = 3)",
      "DELETE FROM orders WHERE qty < (SELECT tier FROM customers c WHERE c.id = orders.customer_id)",
    ]) {
      const exp = c.reference(sql);
      const act = await c.run(sql);
      expect(act.rowsAffected, sql).toBe(exp.rowsAffected);
    }
    await same("SELECT * FROM customers ORDER BY id");
    await same("SELECT * FROM orders ORDER BY id");
  });

  for (const sql of [
    // correlated on a column that is not the vindex: the rows may be anywhere
    "SELECT id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.qty = c.tier)",
    "SELECT id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.id = c.id)",
    // nested subqueries
    "SELECT id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.qty IN (SELECT tier FROM customers c2 WHERE c2.id = o.customer_id))",
  ]) {
    it(`refuses ${sql}`, async () => {
      await expect(c.run(sql)).rejects.toMatchObject({ code: "UNSUPPORTED" });
    });
  }
});
