// Joins and reference tables end to end: a 3-shard keyspace against an unsharded one holding the
// same rows, through the real gate and tablets.

import { beforeAll, describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

const SHARDED = "jn_s";
const SINGLE = "jn_u";

const DDL = [
  "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT)",
  "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, sku TEXT, qty INTEGER)",
  "CREATE TABLE products (sku TEXT PRIMARY KEY, title TEXT)",
  "CREATE TABLE countries (code TEXT PRIMARY KEY, label TEXT)",
];

function sorted(rows: unknown[][]): string[] {
  return rows.map((r) => JSON.stringify(r)).sort();
}

async function same(text: string, ordered = false): Promise<void> {
  const a = await sql(text, undefined, SHARDED);
  const b = await sql(text, undefined, SINGLE);
  expect(a.columns, text).toEqual(b.columns);
  if (ordered) expect(a.rows, text).toEqual(b.rows);
  else expect(sorted(a.rows), text).toEqual(sorted(b.rows));
}

beforeAll(async () => {
  expect((await api("POST", "/v1/keyspaces", { name: SHARDED, shards: 3 })).status).toBe(200);
  expect((await api("POST", "/v1/keyspaces", { name: SINGLE, shards: 1 })).status).toBe(200);
  const vschema = {
    sharded: true,
    vindexes: { xx: { type: "xxhash" } },
    tables: {
      customers: { column_vindexes: [{ column: "id", name: "xx" }] },
      orders: { column_vindexes: [{ column: "customer_id", name: "xx" }] },
      products: { column_vindexes: [{ column: "sku", name: "xx" }] },
      countries: { type: "reference" },
    },
  };
  expect((await api("POST", "/v1/vschema", { keyspace: SHARDED, vschema })).status).toBe(200);
  const writes = [
    "INSERT INTO countries VALUES ('fr', 'France'), ('de', 'Germany'), ('jp', 'Japan')",
    "INSERT INTO customers VALUES (1, 'ann', 'fr'), (2, 'bob', 'de'), (3, 'cyd', NULL), (4, 'dan', 'jp'), (5, 'eve', 'fr'), (6, 'fay', 'xx')",
    "INSERT INTO products VALUES ('a', 'apple'), ('b', 'bread'), ('c', 'cheese'), ('d', 'dates')",
    "INSERT INTO orders VALUES (1, 1, 'a', 2), (2, 1, 'b', 1), (3, 2, 'a', 5), (4, 4, 'z', 1), (5, 5, NULL, 3), (6, 5, 'c', 2), (7, 6, 'd', 4), (8, 2, 'c', 1)",
  ];
  for (const ks of [SHARDED, SINGLE]) {
    for (const d of DDL) await sql(d, undefined, ks);
    for (const w of writes) await sql(w, undefined, ks);
  }
});

describe("joins through the gate", () => {
  it("co-located and reference joins answer as one SQLite does", async () => {
    await same("SELECT c.name, o.id, o.qty FROM customers c JOIN orders o ON o.customer_id = c.id");
    await same("SELECT c.name, o.id FROM customers c LEFT JOIN orders o ON o.customer_id = c.id");
    await same("SELECT c.name, k.label FROM customers c LEFT JOIN countries k ON k.code = c.country");
    await same("SELECT c.name, sum(o.qty) AS q FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY q DESC, c.name", true);
    await same("SELECT c.name, o.id FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.id LIMIT 3", true);
  });

  it("gate joins answer as one SQLite does", async () => {
    await same("SELECT o.id, p.title FROM orders o JOIN products p ON p.sku = o.sku");
    await same("SELECT o.id, p.title FROM orders o LEFT JOIN products p ON p.sku = o.sku ORDER BY o.id", true);
    await same(
      "SELECT c.name, o.id, p.title, k.label FROM customers c JOIN orders o ON o.customer_id = c.id LEFT JOIN countries k ON k.code = c.country JOIN products p ON p.sku = o.sku ORDER BY o.id",
      true,
    );
    await same("SELECT k.label, c.name FROM countries k LEFT JOIN customers c ON c.country = k.code");
    await same("SELECT DISTINCT p.title FROM orders o JOIN products p ON p.sku = o.sku ORDER BY p.title DESC LIMIT 2", true);
  });

  it("VEXPLAIN shows the join the gate runs", async () => {
    const r = await sql("VEXPLAIN SELECT o.id, p.title FROM orders o JOIN products p ON p.sku = o.sku", undefined, SHARDED);
    const plan = String(r.rows[0]?.[0]);
    expect(plan).toContain('"operator": "Join"');
    expect(plan).toContain("the join keys");
  });

  it("refuses what it cannot join exactly", async () => {
    await same("SELECT p.title, count(*), sum(o.qty) FROM orders o JOIN products p ON p.sku = o.sku GROUP BY p.title");
    const e = await sqlError(
      "SELECT p.title, count(*) FROM orders o JOIN products p ON p.sku = o.sku GROUP BY p.title HAVING count(*) * 2 > 1",
      undefined,
      SHARDED,
    );
    expect({ code: e.code, id: e["id"] }).toEqual({ code: "UNSUPPORTED", id: "VD1080" });
  });
});

describe("reference tables through the gate", () => {
  it("a write reaches every copy, and a refused one none", async () => {
    const ins = await sql("INSERT INTO countries VALUES ('it', 'Italy')", undefined, SHARDED);
    expect(ins.rowsAffected).toBe(1);
    await sql("INSERT INTO countries VALUES ('it', 'Italy')", undefined, SINGLE);
    // Every shard's copy now joins with its own customers: a co-located join sees 'it' everywhere.
    await sql("INSERT INTO customers VALUES (7, 'gia', 'it'), (8, 'hub', 'it'), (9, 'ida', 'it')", undefined, SHARDED);
    await sql("INSERT INTO customers VALUES (7, 'gia', 'it'), (8, 'hub', 'it'), (9, 'ida', 'it')", undefined, SINGLE);
    await same("SELECT c.name, k.label FROM customers c JOIN countries k ON k.code = c.country WHERE k.code = 'it'");
    const dup = await sqlError("INSERT INTO countries VALUES ('es', 'Spain'), ('it', 'again')", undefined, SHARDED);
    expect(dup.code).toBe("CONSTRAINT");
    await same("SELECT count(*) FROM countries");
    await same("SELECT c.name, k.label FROM customers c LEFT JOIN countries k ON k.code = c.country");
  });
});
