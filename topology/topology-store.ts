// The Topology's own tables and every read and write of them: keyspaces, shards, schema
// history, table infos and the serving-graph version. Callers run writes that belong together
// inside one storage transaction.

import type { RetentionPolicy } from "../contract/binlog-retention.ts";
import type { KeyspaceGraph, ServingGraph, ShardGraph } from "../contract/serving-graph.ts";
import { tabletName, type DdlEntry, type TableInfo } from "../contract/tablet-rpc.ts";
import type { VSchema } from "../contract/vschema.ts";
import { parseKeyRange } from "./keyrange.ts";
import { setOwn } from "./own.ts";

const TOPOLOGY_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_topo_meta (
  k TEXT PRIMARY KEY,  -- 'version' (serving graph version), 'bootstrapped' (default keyspace made once), 'generation' (last tablet generation handed out)
  v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _vt_topo_keyspaces (
  name TEXT PRIMARY KEY,
  vschema TEXT NOT NULL,          -- JSON VSchema
  version INTEGER NOT NULL,       -- graph version of the keyspace's last change
  auto_tables TEXT NOT NULL,      -- JSON array: tables whose vschema entry CREATE TABLE added
  retention TEXT                  -- JSON RetentionPolicy of its tablets' binlogs; NULL: DEFAULT_RETENTION
);
CREATE TABLE IF NOT EXISTS _vt_topo_shards (
  keyspace TEXT NOT NULL,
  name TEXT NOT NULL,             -- hex key range name, e.g. '-80'
  serving INTEGER NOT NULL,       -- 1 when the shard serves reads and writes
  tablet TEXT,                    -- the tablet's Durable Object name; NULL: the legacy '<keyspace>/<name>'
  deny_writes INTEGER NOT NULL DEFAULT 0, -- 1 while its tablet refuses writes (a workflow switching traffic)
  PRIMARY KEY (keyspace, name)
);
CREATE TABLE IF NOT EXISTS _vt_topo_schema (
  keyspace TEXT NOT NULL,
  idx INTEGER NOT NULL,           -- 1, 2, 3, ... in the order applied
  sql TEXT NOT NULL,              -- the DDL statement as applied to every shard
  PRIMARY KEY (keyspace, idx)
);
CREATE TABLE IF NOT EXISTS _vt_topo_tables (
  keyspace TEXT NOT NULL,
  name TEXT NOT NULL,             -- lower-cased table name
  info TEXT NOT NULL,             -- JSON TableInfo as the first shard reported it
  PRIMARY KEY (keyspace, name)
);
`;

export class TopologyStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    this.#sql.exec(TOPOLOGY_SCHEMA);
    // Shard tables written before shards had their own tablet names: every row is a legacy tablet.
    const columns = new Set(
      this.#sql
        .exec<{ name: string }>("SELECT name FROM pragma_table_info('_vt_topo_shards')")
        .toArray()
        .map((c) => c.name),
    );
    if (!columns.has("tablet")) this.#sql.exec("ALTER TABLE _vt_topo_shards ADD COLUMN tablet TEXT");
    const ksColumns = this.#sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('_vt_topo_keyspaces')").toArray();
    if (!ksColumns.some((c) => c.name === "retention")) this.#sql.exec("ALTER TABLE _vt_topo_keyspaces ADD COLUMN retention TEXT");
    if (!columns.has("deny_writes")) this.#sql.exec("ALTER TABLE _vt_topo_shards ADD COLUMN deny_writes INTEGER NOT NULL DEFAULT 0");
  }

  /** A fresh tablet generation: `<keyspace>/<shard>~<generation>` names a tablet no shard had before. */
  nextGeneration(): number {
    const g = Number(this.meta("generation") ?? "0") + 1;
    this.setMeta("generation", String(g));
    return g;
  }

  /** A value of _vt_topo_meta. */
  meta(k: string): string | undefined {
    return this.#sql.exec<{ v: string }>("SELECT v FROM _vt_topo_meta WHERE k = ?", k).toArray()[0]?.v;
  }

  setMeta(k: string, v: string): void {
    this.#sql.exec("INSERT INTO _vt_topo_meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v);
  }

  /** The serving graph's version. */
  version(): number {
    return Number(this.meta("version") ?? "0");
  }

  /** A new graph version, made the keyspace's (inside the change's transaction). */
  bump(keyspace: string): number {
    const v = this.version() + 1;
    this.setMeta("version", String(v));
    this.#sql.exec("UPDATE _vt_topo_keyspaces SET version = ? WHERE name = ?", v, keyspace);
    return v;
  }

  /** A keyspace as the serving graph shows it, or undefined. */
  keyspace(name: string): KeyspaceGraph | undefined {
    const row = this.#sql.exec<{ vschema: string; version: number }>("SELECT vschema, version FROM _vt_topo_keyspaces WHERE name = ?", name).toArray()[0];
    if (!row) return undefined;
    const vschema = JSON.parse(row.vschema) as VSchema;
    const shards = this.#sql
      .exec<{ name: string; serving: number; tablet: string | null }>("SELECT name, serving, tablet FROM _vt_topo_shards WHERE keyspace = ?", name)
      .toArray()
      .map((s) => ({ name: s.name, keyRange: s.name, serving: s.serving === 1, tablet: s.tablet ?? tabletName(name, s.name) }))
      .sort((a, b) => compareShardNames(a.name, b.name));
    const tables: Record<string, TableInfo> = {};
    for (const t of this.#sql.exec<{ name: string; info: string }>("SELECT name, info FROM _vt_topo_tables WHERE keyspace = ?", name)) {
      setOwn(tables, t.name, JSON.parse(t.info) as TableInfo);
    }
    const schemaIndex = this.#sql.exec<{ n: number | null }>("SELECT max(idx) AS n FROM _vt_topo_schema WHERE keyspace = ?", name).one().n ?? 0;
    return { name, sharded: vschema.sharded, vschema, shards, tables, schemaIndex, version: row.version };
  }

  /** The keyspace's schema history, in order. */
  ddl(keyspace: string): DdlEntry[] {
    return this.#sql
      .exec<{ idx: number; sql: string }>("SELECT idx, sql FROM _vt_topo_schema WHERE keyspace = ? ORDER BY idx", keyspace)
      .toArray()
      .map((r) => ({ index: r.idx, sql: r.sql }));
  }

  /** The whole serving graph. */
  graph(): ServingGraph {
    const keyspaces: Record<string, KeyspaceGraph> = {};
    for (const { name } of this.#sql.exec<{ name: string }>("SELECT name FROM _vt_topo_keyspaces ORDER BY name").toArray()) {
      const ks = this.keyspace(name);
      if (ks) setOwn(keyspaces, name, ks);
    }
    return { version: this.version(), keyspaces };
  }

  /** A new keyspace with its vschema and shards, at a new graph version. */
  addKeyspace(name: string, vschema: VSchema, shards: readonly string[]): void {
    this.#sql.exec("INSERT INTO _vt_topo_keyspaces (name, vschema, version, auto_tables) VALUES (?, ?, 0, '[]')", name, JSON.stringify(vschema));
    for (const s of shards) this.#sql.exec("INSERT INTO _vt_topo_shards (keyspace, name, serving) VALUES (?, ?, 1)", name, s);
    this.bump(name);
  }

  /** Replaces shards `out` of the keyspace's shard set by `in` (serving, writes allowed). */
  replaceShards(keyspace: string, out: readonly string[], into: readonly ShardGraph[]): void {
    for (const s of out) this.#sql.exec("DELETE FROM _vt_topo_shards WHERE keyspace = ? AND name = ?", keyspace, s);
    for (const s of into) {
      this.#sql.exec("INSERT INTO _vt_topo_shards (keyspace, name, serving, tablet) VALUES (?, ?, 1, ?)", keyspace, s.name, s.tablet);
    }
  }

  /** The keyspace's shards whose tablets refuse writes. */
  deniedShards(keyspace: string): Set<string> {
    const rows = this.#sql.exec<{ name: string }>("SELECT name FROM _vt_topo_shards WHERE keyspace = ? AND deny_writes = 1", keyspace).toArray();
    return new Set(rows.map((r) => r.name));
  }

  setDenyWrites(keyspace: string, shards: readonly string[], deny: boolean): void {
    for (const s of shards) this.#sql.exec("UPDATE _vt_topo_shards SET deny_writes = ? WHERE keyspace = ? AND name = ?", deny ? 1 : 0, keyspace, s);
  }

  /** The tables whose vschema entry CREATE TABLE added. */
  autoTables(keyspace: string): string[] {
    const row = this.#sql.exec<{ auto_tables: string }>("SELECT auto_tables FROM _vt_topo_keyspaces WHERE name = ?", keyspace).one();
    return JSON.parse(row.auto_tables) as string[];
  }

  setVSchema(keyspace: string, vschema: VSchema, auto: readonly string[]): void {
    this.#sql.exec("UPDATE _vt_topo_keyspaces SET vschema = ?, auto_tables = ? WHERE name = ?", JSON.stringify(vschema), JSON.stringify(auto), keyspace);
  }

  /** The keyspace's binlog retention as set (null: never set, so DEFAULT_RETENTION). */
  retention(keyspace: string): RetentionPolicy | null {
    const row = this.#sql.exec<{ retention: string | null }>("SELECT retention FROM _vt_topo_keyspaces WHERE name = ?", keyspace).toArray()[0];
    return row?.retention ? (JSON.parse(row.retention) as RetentionPolicy) : null;
  }

  setRetention(keyspace: string, policy: RetentionPolicy): void {
    this.#sql.exec("UPDATE _vt_topo_keyspaces SET retention = ? WHERE name = ?", JSON.stringify(policy), keyspace);
  }

  /** Appends a schema entry to the keyspace's history. */
  appendDdl(keyspace: string, entry: DdlEntry): void {
    this.#sql.exec("INSERT INTO _vt_topo_schema (keyspace, idx, sql) VALUES (?, ?, ?)", keyspace, entry.index, entry.sql);
  }

  /** Replaces the keyspace's table infos. */
  setTables(keyspace: string, tables: readonly TableInfo[]): void {
    this.#sql.exec("DELETE FROM _vt_topo_tables WHERE keyspace = ?", keyspace);
    for (const t of tables) {
      this.#sql.exec("INSERT INTO _vt_topo_tables (keyspace, name, info) VALUES (?, ?, ?)", keyspace, t.name.toLowerCase(), JSON.stringify(t));
    }
  }
}

export function compareShardNames(a: string, b: string): number {
  const ka = parseKeyRange(a).start;
  const kb = parseKeyRange(b).start;
  const n = Math.min(ka.length, kb.length);
  for (let i = 0; i < n; i++) {
    const d = (ka[i] ?? 0) - (kb[i] ?? 0);
    if (d !== 0) return d;
  }
  return ka.length - kb.length;
}
