// What joins cost across shards, each against the same query on one tablet (an unsharded
// keyspace, where the gate passes the statement whole and SQLite joins). The same rows go into a
// 4-shard keyspace (customers by id, orders by customer_id, products by sku) and a 1-shard one.
// - co-located: orders ⋈ customers on the vindex, grouped: runs whole on each shard, merged.
// - gate join, one customer: that customer's orders (one shard) ⋈ products, looked up by the
//   product vindex (the OLTP shape: an order page).
// - gate join, everything: all orders ⋈ products grouped by title, aggregated at the gate.
// Local workerd runs every Durable Object on one thread, so the shards' work does not overlap.

import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { compare, emit, timedLoop } from "./measure.ts";

const CUSTOMERS = 1_000;
const ORDERS = 8_000;
const PRODUCTS = 200;
const PER_INSERT = 300;
const ROUNDS = 12;

interface SqlResult {
  readonly rows: unknown[][];
  readonly rowsAffected: number;
}

async function call<T>(path: string, body: unknown): Promise<T> {
  const res = await exports.default.fetch(
    new Request(`http://gate${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  );
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

const sql = (keyspace: string, text: string, params: readonly unknown[] = []): Promise<SqlResult> =>
  call<SqlResult>("/v1/sql", { keyspace, sql: text, params });

async function insertAll(keyspace: string, table: string, width: number, rows: readonly unknown[][]): Promise<void> {
  for (let i = 0; i < rows.length; i += PER_INSERT) {
    const chunk = rows.slice(i, i + PER_INSERT);
    const tuple = `(${Array.from({ length: width }, () => "?").join(", ")})`;
    await sql(keyspace, `INSERT INTO ${table} VALUES ${chunk.map(() => tuple).join(", ")}`, chunk.flat());
  }
}

async function load(keyspace: string, sharded: boolean): Promise<void> {
  await call("/v1/keyspaces", { name: keyspace, shards: sharded ? 4 : 1 });
  if (sharded) {
    const vschema = {
      sharded: true,
      vindexes: { xx: { type: "xxhash" } },
      tables: {
        customers: { column_vindexes: [{ column: "id", name: "xx" }] },
        orders: { column_vindexes: [{ column: "customer_id", name: "xx" }] },
        products: { column_vindexes: [{ column: "sku", name: "xx" }] },
      },
    };
    await call("/v1/vschema", { keyspace, vschema });
  }
  await sql(keyspace, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
  await sql(keyspace, "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL)");
  await sql(keyspace, "CREATE TABLE products (sku TEXT PRIMARY KEY, title TEXT NOT NULL)");
  await insertAll(
    keyspace,
    "customers",
    2,
    Array.from({ length: CUSTOMERS }, (_, i) => [i + 1, `c${i + 1}`]),
  );
  await insertAll(
    keyspace,
    "products",
    2,
    Array.from({ length: PRODUCTS }, (_, i) => [`p${i}`, `title ${i % 50}`]),
  );
  await insertAll(
    keyspace,
    "orders",
    4,
    Array.from({ length: ORDERS }, (_, i) => [i + 1, ((i * 7) % CUSTOMERS) + 1, `p${(i * 13) % PRODUCTS}`, (i % 5) + 1]),
  );
}

const sorted = (rows: readonly unknown[][]): string => JSON.stringify(rows.map((r) => JSON.stringify(r)).sort());

describe("joins across shards", () => {
  it("co-located and gate-side joins over 4 shards vs the same join on one tablet", async () => {
    await load("jb4", true);
    await load("jb1", false);
    const colocated = "SELECT c.name, count(*), sum(o.qty) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id <= 200 GROUP BY c.name";
    const orderPage = "SELECT o.id, o.qty, p.title FROM orders o JOIN products p ON p.sku = o.sku WHERE o.customer_id = ?";
    const byTitle = "SELECT p.title, count(*), sum(o.qty) FROM orders o JOIN products p ON p.sku = o.sku GROUP BY p.title";
    const plan = async (text: string): Promise<string> => String((await sql("jb4", `VEXPLAIN PLAN ${text}`, text.includes("?") ? [7] : [])).rows[0]?.[0]);
    expect(await plan(colocated)).not.toContain('"operator": "Join"');
    expect(await plan(orderPage)).toContain('"operator": "Join"');
    expect(await plan(byTitle)).toContain('"operator": "Partials"');
    for (const [text, params] of [
      [colocated, []],
      [orderPage, [7]],
      [byTitle, []],
    ] as const) {
      expect(sorted((await sql("jb4", text, params)).rows)).toBe(sorted((await sql("jb1", text, params)).rows));
    }
    const side = (keyspace: string, text: string, params: (i: number) => unknown[]) =>
      timedLoop(async (i) => {
        await sql(keyspace, text, params(i));
      });
    const cases = [
      { name: "co-located join + GROUP BY (200 customers)", text: colocated, params: () => [], ops: 5 },
      { name: "gate join, one customer's orders ⋈ products", text: orderPage, params: (i: number) => [(i % CUSTOMERS) + 1], ops: 20 },
      { name: `gate join + GROUP BY, all ${ORDERS} orders ⋈ products`, text: byTitle, params: () => [], ops: 2 },
    ];
    for (const c of cases) {
      emit(
        await compare({
          name: `${c.name}: 4 shards vs 1`,
          note: `${c.text}; gate HTTP in-process`,
          baseline: { label: "1 shard", run: side("jb1", c.text, c.params) },
          subject: { label: "4 shards", run: side("jb4", c.text, c.params) },
          rounds: ROUNDS,
          opsPerRound: c.ops,
          warmupOps: 2,
        }),
      );
    }
  });
});
