// Application-side adapters, written as an application would: a Kysely Dialect and a Drizzle
// sqlite-proxy callback over the client SDK. Neither knows anything about the gate's internals.

import {
  type CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from "kysely";
import type { Client } from "../../client/index.ts";

class SdkConnection implements DatabaseConnection {
  readonly #db: Client;
  constructor(db: Client) {
    this.#db = db;
  }

  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    const rs = await this.#db.execute(q.sql, q.parameters as unknown[] as never);
    const rows = rs.rows.map((r) => Object.fromEntries(rs.columns.map((c, i) => [c, r[i]])) as R);
    return { rows, numAffectedRows: BigInt(rs.rowsAffected), ...(rs.lastInsertRowid !== undefined ? { insertId: BigInt(rs.lastInsertRowid) } : {}) };
  }

  // biome-ignore lint/correctness/useYield: streaming is not offered by this dialect
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming is not supported");
  }
}

class SdkDriver implements Driver {
  readonly #db: Client;
  constructor(db: Client) {
    this.#db = db;
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return new SdkConnection(this.#db);
  }
  async beginTransaction(): Promise<void> {
    throw new Error("interactive transactions are not supported; use batch");
  }
  async commitTransaction(): Promise<void> {}
  async rollbackTransaction(): Promise<void> {}
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

/** A Kysely dialect over the SDK: SQLite's adapter, compiler and introspector, queries through `db.execute`. */
export function sdkDialect(db: Client): Dialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new SdkDriver(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
    createIntrospector: (k: Kysely<unknown>) => new SqliteIntrospector(k),
  };
}

/** Drizzle's sqlite-proxy callback over the SDK ("get" answers one row, the others all rows). */
export function drizzleProxy(db: Client): (sql: string, params: unknown[], method: "run" | "all" | "values" | "get") => Promise<{ rows: unknown[] }> {
  return async (sql, params, method) => {
    const rs = await db.execute(sql, params as never);
    return { rows: method === "get" ? (rs.rows[0] ?? []) : rs.rows };
  };
}
