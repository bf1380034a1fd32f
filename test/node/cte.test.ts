// Non-recursive CTEs over shards: a CTE that filters and projects co-located or reference tables
// is planned as a table and the statement keeps its WITH; others are refused.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { diffResults } from "./result-compare.ts";

let c: Cluster;

beforeAll(async () => {
  c = createCluster({
    shards: 4,
    tables: {
      customers: { create: "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE, tier INTEGER)", column: "id" },
      orders: { create: "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, qty INTEGER, sku TEXT)", column: "customer_id" },
      products: { create: "CREATE TABLE products (sku TEXT PRIMARY KEY, title TEXT)", column: "sku" },
      tiers: { create: "CREATE TABLE tiers (tier INTEGER PRIMARY KEY, label TEXT)", reference: true },
    },
  });
  const writes = [
    "INSERT INTO tiers VALUES (0, 'free'), (1, 'pro'), (2, 'max')",
    `INSERT INTO customers VALUES ${Array.from({ length: 12 }, (_, i) => `(${i + 1}, '${i % 2 ? "C" : "c"}${i % 5}', ${i % 3})`).join(", ")}`,
    `INSERT INTO orders VALUES ${Array.from({ length: 30 }, (_, i) => `(${i + 1}, ${(i * 5) % 13}, ${i % 4}, '${"abcd"[i % 4]}')`).join(", ")}`,
    "INSERT INTO products VALUES ('a', 'apple'), ('b', 'bread'), ('c', 'cheese')",
  ];
  for (const w of writes) {
    await c.run(w);
    c.reference(w);
  }
});

afterAll(() => c.close());

async function same(sql: string, params?: unknown[]): Promise<void> {
  const exp = c.reference(sql, params as never);
  const act = await c.run(sql, params as never);
  const ordered = /ORDER BY/.test(sql.slice(sql.lastIndexOf(")"))) && !/LIMIT/.test(sql);
  expect(diffResults(act, exp, { ordered }), sql).toBeUndefined();
}

describe("CTEs over shards", () => {
  for (const sql of [
    "WITH big AS (SELECT customer_id, qty FROM orders WHERE qty > 1) SELECT customer_id, sum(qty) FROM big GROUP BY customer_id ORDER BY 1",
    "WITH big AS (SELECT customer_id AS cid, qty FROM orders WHERE qty > 1) SELECT c.name, b.qty FROM customers c JOIN big b ON b.cid = c.id ORDER BY c.id, b.qty",
    "WITH pro(id, nm) AS (SELECT c.id, c.name FROM customers c JOIN tiers t ON t.tier = c.tier WHERE t.label = 'pro') SELECT nm, count(*) FROM pro GROUP BY nm ORDER BY nm",
    "WITH labels AS (SELECT tier, upper(label) AS l FROM tiers) SELECT c.id, l.l FROM customers c JOIN labels l ON l.tier = c.tier ORDER BY c.id",
    "WITH k AS (SELECT 2 AS two) SELECT id FROM customers, k WHERE tier = k.two ORDER BY id",
    "WITH o AS (SELECT id, sku FROM orders WHERE qty = 3) SELECT o.id, p.title FROM o JOIN products p ON p.sku = o.sku ORDER BY o.id",
    "WITH n AS (SELECT name FROM customers) SELECT name FROM n ORDER BY name, 1 LIMIT 5",
    "WITH big AS (SELECT * FROM orders WHERE customer_id = ?) SELECT count(*), max(qty) FROM big",
  ]) {
    it(sql, () => same(sql, sql.includes("?") ? [5] : undefined));
  }

  for (const sql of [
    "WITH t AS (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) SELECT * FROM t",
    "WITH t AS (SELECT DISTINCT sku FROM orders) SELECT count(*) FROM t",
    "WITH t AS (SELECT id FROM orders ORDER BY id LIMIT 3) SELECT * FROM t",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t",
    "WITH t AS (SELECT o.id FROM orders o JOIN products p ON p.sku = o.sku) SELECT * FROM t",
    "WITH t AS (SELECT id FROM orders) DELETE FROM orders WHERE id IN (SELECT id FROM t)",
  ]) {
    it(`refuses ${sql}`, async () => {
      await expect(c.run(sql)).rejects.toMatchObject({ code: "UNSUPPORTED" });
    });
  }
});
