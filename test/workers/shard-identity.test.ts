// Shard identity: a shard's tablet is the Durable Object the Topology names for it. Shards made
// with their keyspace keep the legacy `<keyspace>/<shard>` (also in a Topology written before
// shards had names), and the gate and the Topology reach a shard only through the graph's name.

import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import type { ServingGraph, TopologyView } from "../../contract/serving-graph.ts";
import type { QueryResult, TabletStatus } from "../../contract/tablet-rpc.ts";
import { shardOf, topology } from "./ddl-helpers.ts";
import { api, sql } from "./helpers.ts";

function stub(name: string) {
  return env.TABLET.get(env.TABLET.idFromName(name));
}

async function graph(): Promise<ServingGraph> {
  const g = (await topology().graph()) as Envelope<ServingGraph>;
  if (!g.ok) throw new Error(g.error.message);
  return g.value;
}

async function rowsOn(name: string, table: string): Promise<unknown[][]> {
  return runInDurableObject(stub(name), (_i, state) =>
    state.storage.sql
      .exec(`SELECT * FROM ${table} ORDER BY 1`)
      .toArray()
      .map((r) => Object.values(r)),
  );
}

describe("shard identity", () => {
  it("names the shards of a new keyspace by the legacy <keyspace>/<shard>, in the graph and the view", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "idl", shards: 2 })).status).toBe(200);
    const ks = (await graph()).keyspaces["idl"];
    expect(ks?.shards.map((s) => [s.name, s.tablet])).toEqual([
      ["-80", "idl/-80"],
      ["80-", "idl/80-"],
    ]);
    const view = (await api<TopologyView>("GET", "/v1/topology")).body;
    expect(view.keyspaces.find((k) => k.name === "idl")?.shards.map((s) => s.tablet)).toEqual(["idl/-80", "idl/80-"]);
  });

  it("keeps a keyspace made by a Topology without tablet names answering: its shards are the legacy tablets", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "idold", shards: 2 })).status).toBe(200);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "idold");
    await sql("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", undefined, "idold");
    // The shard table as it was before shards had their own tablet names.
    await runInDurableObject(topology(), (_i, state) => {
      state.storage.sql.exec("ALTER TABLE _vt_topo_shards DROP COLUMN deny_writes");
      state.storage.sql.exec("ALTER TABLE _vt_topo_shards DROP COLUMN tablet");
    });
    await evictDurableObject(topology());
    expect((await graph()).keyspaces["idold"]?.shards.map((s) => s.tablet)).toEqual(["idold/-80", "idold/80-"]);
    expect((await sql("SELECT v FROM t ORDER BY id", undefined, "idold")).rows).toEqual([["a"], ["b"], ["c"]]);
    await sql("INSERT INTO t VALUES (4, 'd')", undefined, "idold");
    expect((await sql("SELECT count(*) FROM t", undefined, "idold")).rows).toEqual([[4]]);
  });

  it("reaches a shard through the tablet the graph names, not through <keyspace>/<shard>", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "idn", shards: 2 })).status).toBe(200);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, "idn");
    // Shard 80- moves to another Durable Object name (as a workflow's shard would have).
    await runInDurableObject(topology(), (_i, state) => {
      state.storage.sql.exec("UPDATE _vt_topo_shards SET tablet = 'idn/80-~77' WHERE keyspace = 'idn' AND name = '80-'");
      state.storage.sql.exec("UPDATE _vt_topo_meta SET v = CAST(v AS INTEGER) + 1 WHERE k = 'version'");
      state.storage.sql.exec("UPDATE _vt_topo_keyspaces SET version = (SELECT CAST(v AS INTEGER) FROM _vt_topo_meta WHERE k = 'version') WHERE name = 'idn'");
    });
    const repaired = (await topology().repair("idn")) as Envelope<ServingGraph>;
    expect(repaired.ok).toBe(true);
    // The Topology synced the new tablet with the shard's config and schema.
    const st = (await stub("idn/80-~77").status()) as Envelope<TabletStatus>;
    expect(st.ok && st.value.config).toMatchObject({ keyspace: "idn", shard: "80-", serving: true });
    expect(st.ok && st.value.tables.map((t) => t.name)).toEqual(["t"]);
    // The legacy tablet stops serving, so a gate still holding the old graph refreshes it.
    const old = (await stub("idn/80-").status()) as Envelope<TabletStatus>;
    if (!old.ok || old.value.config === null) throw new Error("legacy tablet has no config");
    await stub("idn/80-").sync({ ...old.value.config, serving: false }, []);

    const ids = [1, 2, 3, 4, 5, 6, 7, 8];
    for (const id of ids) await sql("INSERT INTO t VALUES (?, ?)", [id, `v${id}`], "idn");
    const high = ids.filter((id) => shardOf(["-80", "80-"], id) === "80-");
    expect(high.length).toBeGreaterThan(0);
    expect((await rowsOn("idn/80-~77", "t")).map((r) => r[0])).toEqual(high);
    expect(await rowsOn("idn/80-", "t")).toEqual([]);
    const all = await sql("SELECT id FROM t ORDER BY id", undefined, "idn");
    expect(all.rows).toEqual(ids.map((id) => [id]));
    const view = (await api<TopologyView>("GET", "/v1/topology")).body;
    const shards = view.keyspaces.find((k) => k.name === "idn")?.shards ?? [];
    expect(shards.map((s) => [s.tablet, s.rowCount])).toEqual([
      ["idn/-80", ids.length - high.length],
      ["idn/80-~77", high.length],
    ]);
    const direct = (await stub("idn/80-~77").execute(
      { keyspace: "idn", shard: "80-", version: repaired.ok ? (repaired.value.keyspaces["idn"]?.version ?? 0) : 0 },
      [{ sql: "SELECT count(*) FROM t", params: [], kind: "read" }],
    )) as Envelope<QueryResult[]>;
    expect(direct.ok && direct.value[0]?.rows).toEqual([[high.length]]);
  });
});
