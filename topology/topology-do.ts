// Topology: one Durable Object (by name "global") holding keyspaces, shards, vschemas, the
// schema history (DDL applied so far, replayed onto shards created later) and the versioned
// serving graph. Changes are serialised through one queue: DDL fans out to tablets while
// holding it, so two DDLs never reach shards in different orders.

import { DurableObject } from "cloudflare:workers";
import { tabletStub } from "../tablet/naming.ts";
import type { DdlEntry, Envelope, TableInfo, TabletStatus } from "../tablet/types.ts";
import { errorBody, toVtError, VtError } from "./errors.ts";
import { isValidKeyspaceName, type KeyspaceGraph, type ServingGraph, type TopologyView } from "./graph.ts";
import { setOwn } from "./own.ts";
import { evenShards, formatKeyRange, parseKeyRange, validateShardSet } from "./keyrange.ts";
import { defaultVSchema, validateVSchema, type TableVSchema, type VSchema } from "./vschema.ts";

const TOPOLOGY_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_topo_meta (
  k TEXT PRIMARY KEY,  -- 'version' (serving graph version), 'bootstrapped' (default keyspace made once)
  v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _vt_topo_keyspaces (
  name TEXT PRIMARY KEY,
  vschema TEXT NOT NULL,          -- JSON VSchema
  version INTEGER NOT NULL,       -- graph version of the keyspace's last change
  auto_tables TEXT NOT NULL       -- JSON array: tables whose vschema entry CREATE TABLE added
);
CREATE TABLE IF NOT EXISTS _vt_topo_shards (
  keyspace TEXT NOT NULL,
  name TEXT NOT NULL,             -- hex key range name, e.g. '-80'
  serving INTEGER NOT NULL,       -- 1 when the shard serves reads and writes
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

export interface DdlRequest {
  readonly keyspace: string;
  readonly sql: string;
  /** A vschema entry to add with the table (CREATE TABLE in a sharded keyspace without one). */
  readonly addTable?: { readonly name: string; readonly entry: TableVSchema };
  /** A table whose auto-added vschema entry goes away (DROP TABLE). */
  readonly dropTable?: string;
}

function envelope<T>(fn: () => Promise<T>): Promise<Envelope<T>> {
  return fn().then(
    (value) => ({ ok: true as const, value }),
    (e: unknown) => ({ ok: false as const, error: errorBody(toVtError(e)) }),
  );
}

function unwrap<T>(env: Envelope<T>): T {
  if (env.ok) return env.value;
  throw new VtError(env.error.code, env.error.message, env.error);
}

export class Topology extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(TOPOLOGY_SCHEMA);
  }

  /** Runs `fn` after every change queued before it (changes await tablets, so the input gate is not enough). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #meta(k: string): string | undefined {
    return this.#sql.exec<{ v: string }>("SELECT v FROM _vt_topo_meta WHERE k = ?", k).toArray()[0]?.v;
  }

  #setMeta(k: string, v: string): void {
    this.#sql.exec("INSERT INTO _vt_topo_meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v);
  }

  #version(): number {
    return Number(this.#meta("version") ?? "0");
  }

  #bump(keyspace: string): number {
    const v = this.#version() + 1;
    this.#setMeta("version", String(v));
    this.#sql.exec("UPDATE _vt_topo_keyspaces SET version = ? WHERE name = ?", v, keyspace);
    return v;
  }

  #keyspace(name: string): KeyspaceGraph | undefined {
    const row = this.#sql
      .exec<{ vschema: string; version: number }>("SELECT vschema, version FROM _vt_topo_keyspaces WHERE name = ?", name)
      .toArray()[0];
    if (!row) return undefined;
    const vschema = JSON.parse(row.vschema) as VSchema;
    const shards = this.#sql
      .exec<{ name: string; serving: number }>("SELECT name, serving FROM _vt_topo_shards WHERE keyspace = ?", name)
      .toArray()
      .map((s) => ({ name: s.name, keyRange: s.name, serving: s.serving === 1 }))
      .sort((a, b) => compareShardNames(a.name, b.name));
    const tables: Record<string, TableInfo> = {};
    for (const t of this.#sql.exec<{ name: string; info: string }>("SELECT name, info FROM _vt_topo_tables WHERE keyspace = ?", name)) {
      setOwn(tables, t.name, JSON.parse(t.info) as TableInfo);
    }
    const schemaIndex = this.#sql.exec<{ n: number | null }>("SELECT max(idx) AS n FROM _vt_topo_schema WHERE keyspace = ?", name).one().n ?? 0;
    return { name, sharded: vschema.sharded, vschema, shards, tables, schemaIndex, version: row.version };
  }

  #ddl(keyspace: string): DdlEntry[] {
    return this.#sql
      .exec<{ idx: number; sql: string }>("SELECT idx, sql FROM _vt_topo_schema WHERE keyspace = ? ORDER BY idx", keyspace)
      .toArray()
      .map((r) => ({ index: r.idx, sql: r.sql }));
  }

  #graph(): ServingGraph {
    const keyspaces: Record<string, KeyspaceGraph> = {};
    for (const { name } of this.#sql.exec<{ name: string }>("SELECT name FROM _vt_topo_keyspaces ORDER BY name").toArray()) {
      const ks = this.#keyspace(name);
      if (ks) setOwn(keyspaces, name, ks);
    }
    return { version: this.#version(), keyspaces };
  }

  /** Pushes the keyspace's config and schema to each of its tablets (all of them when `only` is absent). */
  async #syncTablets(ks: KeyspaceGraph, only?: readonly string[]): Promise<TabletStatus[]> {
    const ddl = this.#ddl(ks.name);
    const shards = ks.shards.filter((s) => !only || only.includes(s.name));
    return Promise.all(
      shards.map(async (s) =>
        unwrap(
          await tabletStub(this.env.TABLET, ks.name, s.name).sync(
            { keyspace: ks.name, shard: s.name, keyRange: s.keyRange, serving: s.serving, version: ks.version },
            ddl,
          ),
        ),
      ),
    );
  }

  async #bootstrap(): Promise<void> {
    if (this.#meta("bootstrapped") !== undefined) return;
    const name = this.env.DEFAULT_KEYSPACE || "main";
    const count = Number(this.env.DEFAULT_SHARDS || "2");
    if (this.#keyspace(name) === undefined) await this.#createKeyspace(name, count);
    this.#setMeta("bootstrapped", "1");
  }

  async #createKeyspace(name: string, shards: number | readonly string[]): Promise<ServingGraph> {
    if (typeof name !== "string" || !isValidKeyspaceName(name)) {
      throw new VtError("INVALID_ARGUMENT", `keyspace name "${String(name)}" must start with a letter and hold only letters, digits and _ (at most 63)`);
    }
    if (this.#keyspace(name)) throw new VtError("INVALID_ARGUMENT", `keyspace "${name}" already exists`);
    let names: string[];
    if (typeof shards === "number") {
      names = evenShards(shards);
    } else if (Array.isArray(shards) && shards.every((s) => typeof s === "string")) {
      names = validateShardSet(shards).map(formatKeyRange);
    } else {
      throw new VtError("INVALID_ARGUMENT", "shards must be a count or a list of key ranges such as [\"-80\", \"80-\"]");
    }
    const sharded = !(names.length === 1 && names[0] === "-");
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec(
        "INSERT INTO _vt_topo_keyspaces (name, vschema, version, auto_tables) VALUES (?, ?, 0, '[]')",
        name,
        JSON.stringify(defaultVSchema(sharded)),
      );
      for (const s of names) this.#sql.exec("INSERT INTO _vt_topo_shards (keyspace, name, serving) VALUES (?, ?, 1)", name, s);
      this.#bump(name);
    });
    const ks = this.#keyspace(name);
    if (ks) await this.#syncTablets(ks);
    return this.#graph();
  }

  graph(): Promise<Envelope<ServingGraph>> {
    return envelope(async () => {
      if (this.#meta("bootstrapped") === undefined) await this.#serial(() => this.#bootstrap());
      return this.#graph();
    });
  }

  createKeyspace(name: string, shards: number | string[]): Promise<Envelope<ServingGraph>> {
    return envelope(() =>
      this.#serial(async () => {
        await this.#bootstrap();
        return this.#createKeyspace(name, shards);
      }),
    );
  }

  applyVSchema(keyspace: string, input: unknown): Promise<Envelope<ServingGraph>> {
    return envelope(() =>
      this.#serial(async () => {
        await this.#bootstrap();
        const ks = this.#keyspace(keyspace);
        if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${keyspace}"`);
        const vschema = validateVSchema(input);
        if (!vschema.sharded && ks.shards.length > 1) {
          throw new VtError("INVALID_ARGUMENT", `keyspace "${keyspace}" has ${ks.shards.length} shards, so its vschema must be sharded`);
        }
        this.ctx.storage.transactionSync(() => {
          this.#sql.exec("UPDATE _vt_topo_keyspaces SET vschema = ?, auto_tables = '[]' WHERE name = ?", JSON.stringify(vschema), keyspace);
          this.#bump(keyspace);
        });
        const updated = this.#keyspace(keyspace);
        if (updated) await this.#syncTablets(updated);
        return this.#graph();
      }),
    );
  }

  /**
   * Applies one DDL statement to every shard of a keyspace and records it. The first shard
   * validates it: if it fails there, nothing is recorded and the error is returned as is.
   */
  applyDdl(req: DdlRequest): Promise<Envelope<ServingGraph>> {
    return envelope(() =>
      this.#serial(async () => {
        await this.#bootstrap();
        const ks = this.#keyspace(req.keyspace);
        if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${req.keyspace}"`);
        const first = ks.shards[0];
        if (!first) throw new VtError("INTERNAL", `keyspace "${req.keyspace}" has no shards`);
        const entry: DdlEntry = { index: ks.schemaIndex + 1, sql: req.sql };
        const ddl = [...this.#ddl(ks.name), entry];
        const status = unwrap(
          await tabletStub(this.env.TABLET, ks.name, first.name).sync(
            { keyspace: ks.name, shard: first.name, keyRange: first.keyRange, serving: first.serving, version: ks.version },
            ddl,
          ),
        );
        this.ctx.storage.transactionSync(() => {
          this.#sql.exec("INSERT INTO _vt_topo_schema (keyspace, idx, sql) VALUES (?, ?, ?)", ks.name, entry.index, entry.sql);
          this.#sql.exec("DELETE FROM _vt_topo_tables WHERE keyspace = ?", ks.name);
          for (const t of status.tables) {
            this.#sql.exec("INSERT INTO _vt_topo_tables (keyspace, name, info) VALUES (?, ?, ?)", ks.name, t.name.toLowerCase(), JSON.stringify(t));
          }
          const row = this.#sql.exec<{ auto_tables: string }>("SELECT auto_tables FROM _vt_topo_keyspaces WHERE name = ?", ks.name).one();
          let auto = JSON.parse(row.auto_tables) as string[];
          const vschema: VSchema = structuredClone(ks.vschema);
          if (req.addTable && status.tables.some((t) => t.name.toLowerCase() === req.addTable?.name.toLowerCase())) {
            setOwn(vschema.tables, req.addTable.name, req.addTable.entry);
            auto.push(req.addTable.name);
          }
          if (req.dropTable !== undefined) {
            const drop = req.dropTable.toLowerCase();
            for (const name of auto.filter((n) => n.toLowerCase() === drop)) delete vschema.tables[name];
            auto = auto.filter((n) => n.toLowerCase() !== drop);
          }
          this.#sql.exec("UPDATE _vt_topo_keyspaces SET vschema = ?, auto_tables = ? WHERE name = ?", JSON.stringify(vschema), JSON.stringify(auto), ks.name);
          this.#bump(ks.name);
        });
        const updated = this.#keyspace(ks.name);
        if (updated) await this.#syncTablets(updated);
        return this.#graph();
      }),
    );
  }

  /**
   * Re-sends a keyspace's config and schema to its tablets. Gates call it when a tablet answers
   * NOT_SERVING with a version older than the graph's (a sync that did not reach it).
   */
  repair(keyspace: string): Promise<Envelope<ServingGraph>> {
    return envelope(() =>
      this.#serial(async () => {
        const ks = this.#keyspace(keyspace);
        if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${keyspace}"`);
        await this.#syncTablets(ks);
        return this.#graph();
      }),
    );
  }

  /** The ⚑ GET /v1/topology view: the graph plus each shard's row count, size and position. */
  view(): Promise<Envelope<TopologyView>> {
    return envelope(async () => {
      if (this.#meta("bootstrapped") === undefined) await this.#serial(() => this.#bootstrap());
      const graph = this.#graph();
      const keyspaces = await Promise.all(
        Object.values(graph.keyspaces).map(async (ks) => ({
          name: ks.name,
          sharded: ks.sharded,
          vschema: ks.vschema,
          // The gate's system lookup tables (`_vtl_…`) are not the user's to see.
          tables: Object.values(ks.tables).map((t) => t.name).filter((n) => !n.toLowerCase().startsWith("_vtl_")),
          shards: await Promise.all(
            ks.shards.map(async (s) => {
              const st = await tabletStub(this.env.TABLET, ks.name, s.name).status();
              return {
                name: s.name,
                keyRange: s.keyRange,
                serving: s.serving,
                rowCount: st.ok ? st.value.rowCount : null,
                bytes: st.ok ? st.value.bytes : null,
                position: st.ok ? st.value.position : null,
              };
            }),
          ),
        })),
      );
      return { version: graph.version, keyspaces, workflows: [] };
    });
  }
}

function compareShardNames(a: string, b: string): number {
  const ka = parseKeyRange(a).start;
  const kb = parseKeyRange(b).start;
  const n = Math.min(ka.length, kb.length);
  for (let i = 0; i < n; i++) {
    const d = (ka[i] ?? 0) - (kb[i] ?? 0);
    if (d !== 0) return d;
  }
  return ka.length - kb.length;
}
