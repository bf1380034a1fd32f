// Inspecting a keyspace's schema state for the DDL fan-out tests: each shard's own schema, schema
// index and fence, and the Topology's history and pending change.

import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import { createVindex } from "../../topology/vindex.ts";
import { api } from "./helpers.ts";

/** The shard (of `shards`) holding xxhash value `v`, computed without the gate. */
export function shardOf(shards: readonly string[], v: number): string {
  const ksid = createVindex("xxhash").map(v);
  const hit = shards.find((s) => keyRangeContains(parseKeyRange(s), ksid));
  if (hit === undefined) throw new Error("no shard covers the keyspace id");
  return hit;
}

export interface ShardSchema {
  readonly shard: string;
  /** The shard's user objects (type, name, SQL), sorted. */
  readonly objects: string[];
  readonly schemaIndex: number;
  readonly fence: string | null;
}

export function topology() {
  return env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global"));
}

export function tablet(keyspace: string, shard: string) {
  return env.TABLET.get(env.TABLET.idFromName(`${keyspace}/${shard}`));
}

export async function shardSchema(keyspace: string, shard: string): Promise<ShardSchema> {
  return runInDurableObject(tablet(keyspace, shard), (_i, state) => {
    const sql = state.storage.sql;
    const objects = sql
      .exec<{ type: string; name: string; sql: string | null }>(
        `SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '\\_vt%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name <> '__miniflare_do_name' ORDER BY type, name`,
      )
      .toArray()
      .map((r) => `${r.type} ${r.name} ${r.sql ?? ""}`);
    const meta = new Map(
      sql
        .exec<{ k: string; v: string }>("SELECT k, v FROM _vt_meta")
        .toArray()
        .map((r) => [r.k, r.v]),
    );
    const fence = meta.get("fence");
    return {
      shard,
      objects,
      schemaIndex: Number(meta.get("schema_index") ?? "0"),
      fence: fence === undefined ? null : (JSON.parse(fence) as { token: string }).token,
    };
  });
}

export interface TopologyState {
  readonly history: string[];
  readonly pending: number;
}

export async function topologyState(keyspace: string): Promise<TopologyState> {
  return runInDurableObject(topology(), (_i, state) => {
    const sql = state.storage.sql;
    const history = sql
      .exec<{ sql: string }>("SELECT sql FROM _vt_topo_schema WHERE keyspace = ? ORDER BY idx", keyspace)
      .toArray()
      .map((r) => r.sql);
    const hasPending = sql.exec("SELECT 1 FROM sqlite_master WHERE name = '_vt_topo_pending'").toArray().length > 0;
    const pending = hasPending ? sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_topo_pending WHERE keyspace = ?", keyspace).one().n : 0;
    return { history, pending };
  });
}

export async function shardNames(keyspace: string): Promise<string[]> {
  const r = await api<{ keyspaces: { name: string; shards: { name: string }[] }[] }>("GET", "/v1/topology");
  const ks = r.body.keyspaces.find((k) => k.name === keyspace);
  if (!ks) throw new Error(`no keyspace ${keyspace}`);
  return ks.shards.map((s) => s.name);
}

/** Runs the Topology's alarm until no change is pending (a bounded number of rounds). */
export async function settle(keyspace: string): Promise<void> {
  for (let i = 0; i < 5 && (await topologyState(keyspace)).pending > 0; i++) await runDurableObjectAlarm(topology());
}

/**
 * The §2 invariant: every shard holds exactly the schema of the Topology's history (one schema
 * index per entry, the same objects on every shard), and no fence or pending change is left.
 */
export async function expectConverged(keyspace: string): Promise<{ history: string[]; objects: string[] }> {
  const topo = await topologyState(keyspace);
  expect(topo.pending).toBe(0);
  const shards = await Promise.all((await shardNames(keyspace)).map((s) => shardSchema(keyspace, s)));
  const first = shards[0];
  if (!first) throw new Error("no shards");
  for (const s of shards) {
    expect({ shard: s.shard, schemaIndex: s.schemaIndex, fence: s.fence }).toEqual({ shard: s.shard, schemaIndex: topo.history.length, fence: null });
    expect(s.objects).toEqual(first.objects);
  }
  return { history: topo.history, objects: first.objects };
}

/** The schema a fresh tablet gets from replaying `history` (what every shard must hold). */
let replays = 0;
export async function replayedObjects(history: readonly string[]): Promise<string[]> {
  const shard = `replay${replays++}`;
  const stub = tablet("ddlreplay", shard);
  const res = await stub.sync(
    { keyspace: "ddlreplay", shard, keyRange: "-", serving: true, version: 1 },
    history.map((sql, i) => ({ index: i + 1, sql })),
  );
  if (!res.ok) throw new Error("replay failed");
  return (await shardSchema("ddlreplay", shard)).objects;
}
