// MoveTables before anything moves: which requests are refused (each with its code or id, from
// pure checks, so a refusal changes nothing), what DDL a move runs in the target (the source's
// CREATE TABLE, the vschema entry the default rule gives, parents first), and how the routing
// rules send a statement named on either keyspace to the one that serves its tables.

import { describe, expect, it } from "vitest";
import type { KeyspaceGraph, ServingGraph } from "../../contract/serving-graph.ts";
import type { TableInfo } from "../../contract/tablet-rpc.ts";
import { routingRules, type WorkflowRecord } from "../../contract/workflow-record.ts";
import { routedBatch, routedKeyspace } from "../../gate/routing-rules.ts";
import { planMoveTables } from "../../topology/movetables-plan.ts";

function table(name: string, sql: string, pk: string[], cols: string[] = pk): TableInfo {
  return { name, sql, columns: cols.map((c) => ({ name: c, type: "INTEGER", pk: pk.indexOf(c) + 1, notNull: false })) };
}

function keyspace(name: string, sharded: boolean, tables: TableInfo[], vtables: Record<string, unknown> = {}): KeyspaceGraph {
  return {
    name,
    sharded,
    vschema: sharded ? { sharded, vindexes: { xx: { type: "xxhash" } }, tables: vtables } : { sharded, vindexes: {}, tables: {} },
    shards: (sharded ? ["-80", "80-"] : ["-"]).map((s) => ({ name: s, keyRange: s, serving: true, tablet: `${name}/${s}` })),
    tables: Object.fromEntries(tables.map((t) => [t.name.toLowerCase(), t])),
    schemaIndex: tables.length,
    version: 1,
  } as KeyspaceGraph;
}

const customer = table("customer", "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)", ["id"], ["id", "name"]);
const corder = table("corder", "CREATE TABLE corder (id INTEGER PRIMARY KEY, cid INTEGER REFERENCES customer (id))", ["id"], ["id", "cid"]);
const uniq = table("uniq", "CREATE TABLE uniq (id INTEGER PRIMARY KEY, email TEXT UNIQUE)", ["id"], ["id", "email"]);
const nokey = table("nokey", "CREATE TABLE nokey (a INTEGER)", [], ["a"]);
const k1 = keyspace("k1", false, [customer, corder, uniq, nokey]);
const k2 = keyspace("k2", true, [], { corder: { column_vindexes: [{ column: "cid", name: "xx" }], unique: "per_shard" } });

function refusal(fn: () => unknown): Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    return { ...(e as Record<string, unknown>), code: (e as { code: string }).code };
  }
  throw new Error("expected a refusal");
}

function record(over: Partial<WorkflowRecord>): WorkflowRecord {
  return {
    keyspace: "k2",
    name: "move",
    kind: "movetables",
    state: "running",
    sources: [],
    targets: [],
    onDdl: "ignore",
    autoSwitch: false,
    progress: null,
    createdAt: 0,
    updatedAt: 0,
    switchedAt: null,
    sourceKeyspace: "k1",
    tables: ["customer", "corder"],
    ...over,
  };
}

function reshardRecord(): WorkflowRecord {
  const { sourceKeyspace: _s, tables: _t, ...rest } = record({ kind: "reshard" });
  return rest;
}

describe("MoveTables plan", () => {
  it("runs the source's CREATE TABLE in the target, parents first, with the default vschema entry where none was given", () => {
    const plan = planMoveTables(k1, k2, ["corder", "customer"], []);
    expect(plan.tables).toEqual(["customer", "corder"]);
    expect(plan.ddl).toEqual([
      { table: "customer", sql: customer.sql, addTable: { name: "customer", entry: { column_vindexes: [{ column: "id", name: "xx" }] } } },
      { table: "corder", sql: corder.sql },
    ]);
  });

  it("refuses bad requests with their codes and ids", () => {
    expect(refusal(() => planMoveTables(k1, k1, ["customer"], []))).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(refusal(() => planMoveTables(k1, k2, ["customer", "ghost"], []))).toMatchObject({ code: "UNKNOWN_TABLE", table: "ghost" });
    expect(refusal(() => planMoveTables(k1, k2, [], []))).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(refusal(() => planMoveTables(k1, k2, ["customer", "customer"], []))).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(refusal(() => planMoveTables(k1, keyspace("k2", true, [customer]), ["customer"], []))).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(refusal(() => planMoveTables(k1, k2, ["nokey"], []))).toMatchObject({ code: "UNSUPPORTED", id: "VD2700" });
    expect(refusal(() => planMoveTables(k1, k2, ["uniq"], []))).toMatchObject({ code: "UNSUPPORTED", id: "VD2704" });
    expect(refusal(() => planMoveTables(k1, k2, ["corder"], []))).toMatchObject({ code: "UNSUPPORTED", id: "VD2705" });
    // A table another open move holds, and a keyspace an open Reshard holds.
    expect(refusal(() => planMoveTables(k1, k2, ["customer"], [record({ keyspace: "k3", tables: ["customer"] })]))).toMatchObject({
      code: "INVALID_ARGUMENT",
      table: "customer",
    });
    expect(refusal(() => planMoveTables(k1, k2, ["customer"], [reshardRecord()]))).toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    // A closed workflow holds nothing.
    expect(planMoveTables(k1, k2, ["customer"], [record({ state: "completed" })]).tables).toEqual(["customer"]);
  });
});

describe("routing rules", () => {
  const k2With = keyspace("k2", true, [customer, corder], {});
  const graphOf = (w: WorkflowRecord): ServingGraph => ({ version: 1, keyspaces: { k1, k2: k2With }, routingRules: routingRules([w]) });

  it("send the moved tables to the source before the switch and to the target after, by either name", () => {
    for (const [state, to] of [
      ["running", "k1"],
      ["created", "k1"],
      ["switched", "k2"],
    ] as const) {
      const g = graphOf(record({ state }));
      for (const ks of [k1, k2With]) {
        expect(routedKeyspace(g, ks, "SELECT * FROM customer WHERE id = 1").name).toBe(to);
        expect(routedKeyspace(g, ks, "INSERT INTO corder (id, cid) VALUES (1, 2)").name).toBe(to);
        expect(routedBatch(g, ks, [{ sql: "UPDATE customer SET name = 'a'" }, { sql: "DELETE FROM corder" }]).name).toBe(to);
      }
    }
    // Closed workflows make no rules; a table that does not move stays where it is named.
    expect(routingRules([record({ state: "completed" }), record({ state: "cancelled" })])).toEqual({});
    expect(routedKeyspace(graphOf(record({ state: "switched" })), k1, "SELECT * FROM uniq").name).toBe("k1");
  });

  it("refuse a statement or transaction whose tables the rules send to different keyspaces (VD2706)", () => {
    const g = graphOf(record({ state: "switched" }));
    expect(refusal(() => routedKeyspace(g, k1, "SELECT * FROM customer JOIN uniq ON uniq.id = customer.id"))).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2706",
    });
    expect(refusal(() => routedBatch(g, k1, [{ sql: "SELECT * FROM customer" }, { sql: "SELECT * FROM uniq" }]))).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2706",
    });
  });
});
