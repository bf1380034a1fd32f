// A VCursor backed by in-memory SQLite databases (node:sqlite), one per shard, plus a single
// "reference" database that holds every table and every row. Differential tests run a statement
// through the gate's planner and engine against the shards, the same statement against the
// reference, and compare: a plan over N shards must answer what one SQLite holding all rows
// answers.
//
// Values follow the production convention (tablet/tablet.ts): INTEGER is a number when safe and
// a bigint beyond ±(2^53−1), REAL a number, TEXT a string, BLOB a Uint8Array. A bound JS number
// that is a safe integer is bound as INTEGER (node:sqlite would bind every number as REAL), so a
// bound value and the literal the gate inlines for it (sqlLiteral) mean the same thing.

import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { planParsed } from "../../gate/planner/plan.ts";
import { withResultNames } from "../../gate/planner/column-names.ts";
import { keyspaceKeys, systemLookupDdl } from "../../gate/planner/unique-keys.ts";
import type { VCursor } from "../../gate/engine/primitive.ts";
import type { IdSource } from "../../gate/engine/sequence.ts";
import { parseOne } from "../../gate/sql/parse.ts";
import { Bindings } from "../../gate/sql/template.ts";
import { fromSqliteError } from "../../tablet/sqlite-errors.ts";
import { fromQuotedCopies } from "../../tablet/exact-values.ts";
import type { BoundQuery, ColumnInfo, QueryResult, TableInfo } from "../../contract/tablet-rpc.ts";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { evenShards, keyRangeContains, parseKeyRange } from "../../topology/keyrange.ts";
import type { SqlValue } from "../../contract/sql-values.ts";
import { createVindex } from "../../topology/vindex.ts";
import type { VSchema } from "../../contract/vschema.ts";

export type Params = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;

export interface TableSpec {
  /** The CREATE TABLE statement (run on every shard and on the reference). */
  readonly create: string;
  /** The column sharded by the xxhash vindex; omit for a reference table. */
  readonly column?: string;
  /** A reference table: copied to every shard, `{"type": "reference"}` in the vschema. */
  readonly reference?: boolean;
  /** vschema auto_increment: the column a sequence fills. */
  readonly autoIncrement?: { column: string; sequence: string };
  /** Secondary (lookup) vindexes: column and the name of a vindex in ClusterOptions.vindexes. */
  readonly secondary?: readonly { column: string; name: string }[];
  /** vschema "unique": "per_shard" opts out of keyspace-wide unique keys. */
  readonly unique?: "keyspace" | "per_shard";
}

export interface ClusterOptions {
  /** Number of shards, split evenly (evenShards). */
  readonly shards: number;
  readonly tables: Readonly<Record<string, TableSpec>>;
  readonly keyspace?: string;
  /** Extra vindexes (lookup vindexes) besides the xxhash one every sharded table uses. */
  readonly vindexes?: Readonly<Record<string, { type: string; params?: Record<string, string>; owner?: string }>>;
}

/** Name of the vindex every sharded table uses. */
export const VINDEX = "xx";

function toInput(v: SqlValue): SQLInputValue {
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  return v;
}

function fromOutput(v: unknown): SqlValue {
  if (typeof v === "bigint") return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (v === null || typeof v === "number" || typeof v === "string") return v;
  if (v instanceof Uint8Array) return new Uint8Array(v);
  throw new Error(`unexpected value from node:sqlite: ${String(v)}`);
}

const PRIMARY_CODES: Record<number, string> = { 1: "ERROR", 13: "FULL", 18: "TOOBIG", 19: "CONSTRAINT", 20: "MISMATCH", 25: "RANGE" };

/** A node:sqlite error in the shape the Durable Object SQLite reports, translated as the tablet does. */
function translate(e: unknown): VtError {
  if (e instanceof VtError) return e;
  const rec = e as { message?: unknown; errcode?: unknown };
  const message = typeof rec.message === "string" ? rec.message : String(e);
  const code = typeof rec.errcode === "number" ? PRIMARY_CODES[rec.errcode & 0xff] : undefined;
  return fromSqliteError(new Error(code ? `${message}: SQLITE_${code}` : message));
}

/** Numbered placeholders as written in `sql`: node:sqlite binds `?NNN` and `$N` by name only. */
const NUMBERED = /[?$](\d+)/g;

function bind(sql: string, params: Params | undefined, anonymousOnly: boolean): { named: Record<string, SQLInputValue> | undefined; anon: SQLInputValue[] } {
  if (params === undefined) return { named: undefined, anon: [] };
  if (!Array.isArray(params)) {
    const named: Record<string, SQLInputValue> = {};
    for (const [k, v] of Object.entries(params as Record<string, SqlValue>)) named[k.replace(/^[:@$]/, "")] = toInput(v);
    return { named, anon: [] };
  }
  const list = params as readonly SqlValue[];
  const numbered = anonymousOnly ? [] : [...sql.matchAll(NUMBERED)];
  if (numbered.length === 0) return { named: undefined, anon: list.map(toInput) };
  if (/\?(?!\d)/.test(sql)) throw new Error("test helper: mixing ? with ?NNN / $N is not supported by the reference binder");
  const named: Record<string, SQLInputValue> = {};
  for (const m of numbered) named[m[0]] = toInput(list[Number(m[1]) - 1] ?? null);
  return { named, anon: [] };
}

/**
 * Runs one statement on `db` and answers as the tablet does (rowsAffected / lastInsertRowid for
 * writes). `anonymousOnly`: the SQL has only `?` placeholders (what the gate sends shards).
 */
export function runOn(db: DatabaseSync, sql: string, params: Params | undefined, kind: BoundQuery["kind"], anonymousOnly = false, reals = false): QueryResult {
  try {
    const stmt = db.prepare(sql);
    stmt.setReadBigInts(true);
    stmt.setReturnArrays(true);
    const { named, anon } = bind(sql, params, anonymousOnly);
    const columns = stmt.columns().map((c) => c.name);
    let rows: SqlValue[][] = [];
    let realCells: number[][] = [];
    if (columns.length > 0) {
      const raw = (named ? stmt.all(named, ...anon) : stmt.all(...anon)) as unknown as unknown[][];
      rows = raw.map((r) => r.map(fromOutput));
      // With readBigInts an INTEGER reads as a bigint, so an integral number is a REAL (as the tablet reports with BoundQuery.reals).
      realCells = raw.map((r) => r.flatMap((v, i) => (typeof v === "number" && Number.isInteger(v) ? [i] : [])));
    } else if (named) stmt.run(named, ...anon);
    else stmt.run(...anon);
    // As the tablet: a write's quote() copies of its RETURNING items give the exact values.
    const copied = kind === "read" ? undefined : fromQuotedCopies(columns, rows);
    const result: QueryResult = copied ? { ...copied, rowsAffected: 0 } : { columns, rows, rowsAffected: 0 };
    if (reals && kind === "read") result.reals = realCells;
    if (kind !== "read") {
      const c = db.prepare("SELECT changes(), last_insert_rowid()");
      c.setReturnArrays(true);
      c.setReadBigInts(true);
      const [n, id] = (c.get() as unknown as [bigint, bigint] | undefined) ?? [0n, 0n];
      result.rowsAffected = Number(n);
      const rowid = fromOutput(id);
      if (kind === "insert" && n > 0n && (typeof rowid === "number" || typeof rowid === "bigint")) result.lastInsertRowid = rowid;
    }
    return result;
  } catch (e) {
    throw translate(e);
  }
}

function statementKind(sql: string): BoundQuery["kind"] {
  const head = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase();
  if (head === "SELECT" || head === "VALUES" || head === "WITH") return "read";
  if (head === "INSERT" || head === "REPLACE") return "insert";
  return "write";
}

function readTables(db: DatabaseSync): Record<string, TableInfo> {
  const out: Record<string, TableInfo> = {};
  const names = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all() as {
    name: string;
    sql: string;
  }[];
  for (const { name, sql } of names) {
    const cols = db.prepare('SELECT name, type, pk, "notnull" AS nn FROM pragma_table_info(?)').all(name) as {
      name: string;
      type: string;
      pk: number;
      nn: number;
    }[];
    const columns: ColumnInfo[] = cols.map((c) => ({ name: c.name, type: c.type, pk: c.pk, notNull: c.nn === 1 }));
    out[name.toLowerCase()] = { name, columns, sql };
  }
  return out;
}

export interface CursorCall {
  readonly shard: string;
  readonly queries: readonly BoundQuery[];
}

/** The VCursor: each shard is one in-memory database; a call runs its queries in one transaction. */
export class FakeCursor implements VCursor {
  #ks: KeyspaceGraph;
  readonly dbs: ReadonlyMap<string, DatabaseSync>;
  /** The single database that also receives every DDL applied through applyDdl. */
  readonly referenceDb: DatabaseSync;
  /** Every execute call, in order. */
  readonly calls: CursorCall[] = [];

  constructor(ks: KeyspaceGraph, dbs: ReadonlyMap<string, DatabaseSync>, referenceDb: DatabaseSync) {
    this.#ks = ks;
    this.dbs = dbs;
    this.referenceDb = referenceDb;
  }

  get keyspace(): KeyspaceGraph {
    return this.#ks;
  }

  async execute(shard: string, queries: BoundQuery[]): Promise<QueryResult[]> {
    const db = this.dbs.get(shard);
    if (!db) throw new VtError("NOT_SERVING", `fake cursor has no shard ${shard}`, { shard });
    this.calls.push({ shard, queries });
    db.exec("BEGIN");
    try {
      const out = queries.map((q) => runOn(db, q.sql, q.params, q.kind, true, q.reals === true));
      db.exec("COMMIT");
      return out;
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
  }

  /**
   * Sequences: one counter per sequence name, from 1, and per table for automatic ones
   * (`auto <table>`), from one past the table's max id (the gate's block reservation is tested in
   * workerd). A floor moves a counter up to it.
   */
  readonly sequences = new Map<string, number>();

  async nextIds(source: IdSource, count: number, floor?: bigint): Promise<SqlValue[]> {
    const key = "sequence" in source ? source.sequence : `auto ${source.table.toLowerCase()}`;
    let next = this.sequences.get(key);
    if (next === undefined && !("sequence" in source)) {
      const c = `"${source.column}"`;
      next = 1;
      for (const db of this.dbs.values()) {
        const max = runOn(db, `SELECT max(${c}) FROM "${source.table}" WHERE typeof(${c}) = 'integer'`, undefined, "read").rows[0]?.[0];
        if (typeof max === "number" && max + 1 > next) next = max + 1;
      }
    }
    next = Math.max(next ?? 1, floor === undefined ? 1 : Number(floor));
    this.sequences.set(key, next + count);
    return Array.from({ length: count }, (_, i) => (next as number) + i);
  }

  /** Lookup tables live in this same keyspace here: the statement is planned and run like any other. */
  async lookupExecute(keyspace: string, sql: string, params: SqlValue[]): Promise<QueryResult> {
    if (keyspace !== this.#ks.name) throw new VtError("INVALID_ARGUMENT", `fake cursor has no keyspace ${keyspace}`);
    const plan = planParsed(parseOne(sql), this.#ks);
    const b = new Bindings(params);
    b.check(plan.params);
    return plan.primitive.execute(this, b);
  }

  async applyDdl(req: {
    sql: string;
    addTable?: { name: string; entry: { column_vindexes: { column: string; name: string }[] } };
    dropTable?: string;
  }): Promise<void> {
    for (const db of [...this.dbs.values(), this.referenceDb]) {
      try {
        db.exec(req.sql);
      } catch (e) {
        throw translate(e);
      }
    }
    const tables = { ...this.#ks.vschema.tables };
    if (req.addTable) tables[req.addTable.name] = req.addTable.entry;
    if (req.dropTable !== undefined) {
      for (const k of Object.keys(tables)) if (k.toLowerCase() === req.dropTable.toLowerCase()) delete tables[k];
    }
    const first = this.dbs.values().next().value;
    this.#ks = {
      ...this.#ks,
      vschema: { ...this.#ks.vschema, tables },
      tables: first ? readTables(first) : {},
      schemaIndex: this.#ks.schemaIndex + 1,
      version: this.#ks.version + 1,
    };
  }
}

export interface Cluster {
  readonly cursor: FakeCursor;
  readonly keyspace: KeyspaceGraph;
  /** Shard names in key order, e.g. ["-80", "80-"]. */
  readonly shardNames: readonly string[];
  /** Shards the last `run` reached, in the order the gate called them (no repeats). */
  readonly lastTouched: readonly string[];
  /** Plans `sql` with planParsed(parseOne(sql)), checks and binds `params`, executes through the fake cursor. */
  run(sql: string, params?: Params): Promise<QueryResult>;
  /** Runs `sql` on the single reference database. */
  reference(sql: string, params?: Params): QueryResult;
  /** Runs `sql` directly on one shard's database (bypassing the gate). */
  onShard(shard: string, sql: string, params?: Params): QueryResult;
  /** The shard whose key range holds the xxhash keyspace id of `value`, computed without the gate. */
  shardOf(value: SqlValue): string;
  close(): void;
}

/** Builds a sharded keyspace of `shards` even shards holding `tables`, and its reference database. */
export function createCluster(opts: ClusterOptions): Cluster {
  const names = evenShards(opts.shards);
  const dbs = new Map<string, DatabaseSync>();
  for (const n of names) dbs.set(n, new DatabaseSync(":memory:"));
  const referenceDb = new DatabaseSync(":memory:");
  const vschema: VSchema = { sharded: true, vindexes: { [VINDEX]: { type: "xxhash" }, ...(opts.vindexes ?? {}) }, tables: {} };
  for (const [name, spec] of Object.entries(opts.tables)) {
    for (const db of [...dbs.values(), referenceDb]) db.exec(spec.create);
    if (spec.reference) vschema.tables[name] = { type: "reference" };
    else {
      if (spec.column === undefined) throw new Error(`table ${name}: a sharded table needs a vindex column`);
      const entry = {
        column_vindexes: [{ column: spec.column, name: VINDEX }, ...(spec.secondary ?? [])],
        ...(spec.autoIncrement ? { auto_increment: spec.autoIncrement } : {}),
        ...(spec.unique ? { unique: spec.unique } : {}),
      };
      vschema.tables[name] = entry;
      // As the gate's CREATE TABLE does: the system lookup tables of keys without the vindex column.
      for (const ddl of systemLookupDdl(name, keyspaceKeys(spec.create, spec.column, entry))) for (const db of dbs.values()) db.exec(ddl);
    }
  }
  const first = dbs.values().next().value;
  const ks: KeyspaceGraph = {
    name: opts.keyspace ?? "main",
    sharded: true,
    vschema,
    shards: names.map((n) => ({ name: n, keyRange: n, serving: true, tablet: n })),
    tables: first ? readTables(first) : {},
    schemaIndex: 1,
    version: 1,
  };
  const cursor = new FakeCursor(ks, dbs, referenceDb);
  const vindex = createVindex("xxhash");
  const ranges = names.map((n) => ({ name: n, range: parseKeyRange(n) }));
  let lastTouched: string[] = [];
  return {
    cursor,
    get keyspace() {
      return cursor.keyspace;
    },
    shardNames: names,
    get lastTouched() {
      return lastTouched;
    },
    async run(sql, params) {
      const before = cursor.calls.length;
      lastTouched = [];
      try {
        const plan = planParsed(parseOne(sql), cursor.keyspace);
        const b = new Bindings(params);
        b.check(plan.params);
        // As the executor: SQLite's names on the columns the gate's rewrites renamed.
        return withResultNames(await plan.primitive.execute(cursor, b), plan.names);
      } finally {
        for (const c of cursor.calls.slice(before)) if (!lastTouched.includes(c.shard)) lastTouched.push(c.shard);
      }
    },
    reference(sql, params) {
      return runOn(referenceDb, sql, params, statementKind(sql));
    },
    onShard(shard, sql, params) {
      const db = dbs.get(shard);
      if (!db) throw new Error(`no shard ${shard}`);
      return runOn(db, sql, params, statementKind(sql));
    },
    shardOf(value) {
      const ksid = vindex.map(value);
      const hit = ranges.find((r) => keyRangeContains(r.range, ksid));
      if (!hit) throw new Error("no shard covers the keyspace id");
      return hit.name;
    },
    close() {
      for (const db of dbs.values()) db.close();
      referenceDb.close();
    },
  };
}
