// A stream filters each table by the placement tablePlacements gives it, so the placement must be
// the one the gate placed its rows by: every row a shard holds maps into that shard's key range
// through its table's placement (user tables, and the gate's system lookup tables alike), a
// reference table is copied whole, parents come before the tables referencing them, and a table
// without a PRIMARY KEY is refused before any stream starts.

import { afterEach, describe, expect, it } from "vitest";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { checkStreamable, tablePlacements } from "../../topology/placements.ts";
import { createVindex } from "../../topology/vindex.ts";
import { createCluster, type Cluster } from "./fake-cursor.ts";

let c: Cluster | undefined;
afterEach(() => {
  c?.close();
  c = undefined;
});

function caught(fn: () => unknown): Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    return { ...(e as Record<string, unknown>) };
  }
  throw new Error("expected an error");
}

describe("table placements", () => {
  it("every row on every shard is in that shard's range through its table's placement, system lookup rows included", async () => {
    c = createCluster({
      shards: 4,
      tables: {
        users: { create: "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)", column: "id" },
        orders: { create: "CREATE TABLE orders (oid INTEGER PRIMARY KEY, user_id INTEGER, sku TEXT, UNIQUE (sku, oid))", column: "user_id" },
        countries: { create: "CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT)", reference: true },
      },
    });
    for (let i = 1; i <= 40; i++) {
      await c.run("INSERT INTO users (id, email, name) VALUES (?, ?, ?)", [i, `u${i}@x`, `n${i}`]);
      await c.run("INSERT INTO orders (oid, user_id, sku) VALUES (?, ?, ?)", [1000 + i, (i % 7) + 1, `s${i}`]);
    }
    await c.run("INSERT INTO countries (code, name) VALUES ('fr', 'France'), ('jp', 'Japan')");
    const placements = tablePlacements(c.keyspace);
    const names = placements.map((p) => p.table);
    expect(names).toContain("_vtl_users__email");
    expect(placements.find((p) => p.table === "countries")?.kind).toBe("reference");
    let checked = 0;
    for (const shard of c.shardNames) {
      const range = parseKeyRange(shard);
      for (const p of placements) {
        const rows = c.onShard(shard, `SELECT * FROM "${p.table}"`);
        if (p.kind === "reference") {
          expect(rows.rows.length).toBe(2);
          continue;
        }
        const col = rows.columns.indexOf(p.column ?? "");
        expect(col).toBeGreaterThanOrEqual(0);
        const vindex = createVindex(p.vindex?.type ?? "", p.vindex?.params);
        for (const row of rows.rows) {
          expect({ table: p.table, row, inRange: keyRangeContains(range, vindex.map(row[col] ?? null)) }).toEqual({ table: p.table, row, inRange: true });
          checked++;
        }
      }
    }
    // users and orders, and the lookup rows of users.email, orders.oid and orders (sku, oid).
    expect(checked).toBe(5 * 40);
  });

  it("puts a referenced table before the tables referencing it, whatever their names", () => {
    c = createCluster({
      shards: 2,
      tables: {
        a_child: { create: 'CREATE TABLE a_child (id INTEGER PRIMARY KEY, p TEXT REFERENCES "z_parent" (code) ON DELETE CASCADE)', column: "id" },
        z_parent: {
          create: "CREATE TABLE z_parent (code TEXT PRIMARY KEY, m_ref INTEGER, FOREIGN KEY (m_ref) REFERENCES [m_root] (id) ON DELETE CASCADE)",
          reference: true,
        },
        m_root: { create: "CREATE TABLE m_root (id INTEGER PRIMARY KEY)", reference: true },
        b_self: { create: "CREATE TABLE b_self (id INTEGER PRIMARY KEY, up INTEGER REFERENCES b_self (id))", column: "id" },
      },
    });
    expect(tablePlacements(c.keyspace).map((p) => p.table)).toEqual(["m_root", "z_parent", "a_child", "b_self"]);
  });

  it("names the vindex with its params, and refuses a sharded table with no vschema entry", () => {
    c = createCluster({ shards: 2, tables: { t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY)", column: "id" } } });
    const ks: KeyspaceGraph = c.keyspace;
    expect(tablePlacements(ks)).toEqual([{ table: "t", kind: "sharded", column: "id", vindex: { type: "xxhash" } }]);
    const bare: KeyspaceGraph = { ...ks, vschema: { ...ks.vschema, tables: {} } };
    expect(caught(() => tablePlacements(bare))["code"]).toBe("INVALID_ARGUMENT");
    const unsharded: KeyspaceGraph = { ...ks, sharded: false, vschema: { sharded: false, vindexes: {}, tables: {} } };
    expect(tablePlacements(unsharded)).toEqual([{ table: "t", kind: "reference" }]);
  });

  it("refuses a table without a PRIMARY KEY (rowid only), naming it: UNSUPPORTED VD2700", () => {
    c = createCluster({
      shards: 2,
      tables: {
        keyed: { create: "CREATE TABLE keyed (id INTEGER PRIMARY KEY, v TEXT)", column: "id" },
        composite: { create: "CREATE TABLE composite (a TEXT, b INTEGER, v BLOB, PRIMARY KEY (a, b)) WITHOUT ROWID", column: "a" },
        logs: { create: "CREATE TABLE logs (tenant INTEGER NOT NULL, line TEXT)", column: "tenant" },
      },
    });
    const e = caught(() => checkStreamable(c?.keyspace as KeyspaceGraph));
    expect({ code: e["code"], id: e["id"], table: e["table"] }).toEqual({ code: "UNSUPPORTED", id: "VD2700", table: "logs" });
    c.close();
    c = createCluster({ shards: 2, tables: { keyed: { create: "CREATE TABLE keyed (id INTEGER PRIMARY KEY, v TEXT)", column: "id" } } });
    expect(() => checkStreamable(c?.keyspace as KeyspaceGraph)).not.toThrow();
  });
});
