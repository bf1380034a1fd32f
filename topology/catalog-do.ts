// Catalog: one SQLite Durable Object per keyspace (by the keyspace's name) holding only that
// keyspace's schema — the Topology's schema history replayed without the entries about the
// system's own objects (`_vtl_…` lookup tables), no rows, no system tables — so
// that introspection (sqlite_master, pragma_table_info(…), PRAGMA table_info(…), …) sees the
// keyspace as one SQLite database would show it. The gate sends it only statements that read
// catalog objects alone (gate/planner/catalog.ts); each runs inside a transaction that is always
// rolled back, so nothing a statement could do persists.
//
// Bookkeeping lives in memory, never in a table a statement could see (nor in the KV API, which
// adds a _cf_KV table): a fresh instance does not know what its storage holds, so it deletes it
// all and replays the whole history. A fresh SQLite Durable Object has no table of its own.

import { DurableObject } from "cloudflare:workers";
import type { BoundQuery, DdlEntry, QueryResult } from "../contract/tablet-rpc.ts";
import { envelopeAsync, unwrap, type Envelope } from "../contract/envelope.ts";
import { topologyRpc, type CatalogRpc } from "../contract/topology-rpc.ts";
import { checkCatalogSql } from "./catalog-sql-guard.ts";
import { tokenize, tokenName } from "./sql-lexer.ts";
import { VtError } from "../contract/errors.ts";
import type { SqlValue } from "../contract/sql-values.ts";

/** Thrown out of the read's transaction to roll it back; carries the result out. */
class RolledBack {
  readonly result: QueryResult;
  constructor(result: QueryResult) {
    this.result = result;
  }
}

export class Catalog extends DurableObject<Env> implements CatalogRpc {
  readonly #sql: SqlStorage;
  /** Schema entries applied to this storage by this instance; undefined until the first sync. */
  #applied: number | undefined;
  #syncing: Promise<void> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
  }

  /**
   * Runs one read-only statement against the keyspace's schema as of at least `schemaIndex`
   * (newer when the Topology has newer entries). The gate checked that it reads only catalog
   * objects; the rollback makes sure it changes nothing.
   */
  query(keyspace: string, schemaIndex: number, q: BoundQuery): Promise<Envelope<QueryResult>> {
    return envelopeAsync(async () => {
      if (this.#applied === undefined || this.#applied < schemaIndex) await this.#sync(keyspace);
      return this.#read(q);
    });
  }

  #read(q: BoundQuery): QueryResult {
    checkCatalogSql(q.sql, q.params.length);
    try {
      this.ctx.storage.transactionSync(() => {
        const cursor = this.#sql.exec(q.sql, ...q.params);
        const rows = Array.from(cursor.raw(), (row) => row.map((v): SqlValue => (v instanceof ArrayBuffer ? new Uint8Array(v) : v)));
        throw new RolledBack({ columns: cursor.columnNames, rows, rowsAffected: 0 });
      });
    } catch (e) {
      if (e instanceof RolledBack) return e.result;
      throw catalogError(e);
    }
    throw new VtError("INTERNAL", "catalog read did not run");
  }

  /** Brings the storage to the Topology's latest schema of `keyspace` (one sync at a time). */
  #sync(keyspace: string): Promise<void> {
    const run = this.#syncing.then(async () => {
      const topology = topologyRpc(this.env.TOPOLOGY);
      const entries = [...unwrap(await topology.schemaHistory(keyspace))].sort((a, b) => a.index - b.index);
      const latest = entries[entries.length - 1]?.index ?? 0;
      if (this.#applied === latest) return;
      if (this.#applied === undefined || latest < this.#applied) {
        // Unknown or newer than the history: start from nothing (deleteAll leaves no table behind).
        await this.ctx.storage.deleteAll();
        this.#applied = 0;
      }
      this.#apply(entries, this.#applied, latest);
    });
    this.#syncing = run.catch(() => undefined);
    return run;
  }

  /** Applies the entries after `from`, all in one transaction: a failure leaves the storage as it was. */
  #apply(entries: readonly DdlEntry[], from: number, latest: number): void {
    this.ctx.storage.transactionSync(() => {
      for (const e of entries) {
        if (e.index <= from) continue;
        for (const statement of splitStatements(e.sql)) {
          if (namesSystemObject(statement)) continue;
          try {
            this.#sql.exec(statement);
          } catch (err) {
            throw new VtError("INTERNAL", `catalog could not replay schema entry ${e.index}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      }
    });
    this.#applied = latest;
  }
}

/**
 * The statements of a schema entry (an entry may carry the user's DDL and the system's, e.g. a
 * CREATE TABLE and its `_vtl_…` lookup table), split at `;` as SQLite's sqlite3_complete does:
 * inside CREATE [TEMP] TRIGGER only a `;` right after END ends the statement.
 */
function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let head: string[] = [];
  let prev = "";
  for (const t of tokenize(sql)) {
    if (t.kind === "space" || t.kind === "comment") continue;
    const word = t.kind === "word" ? sql.slice(t.start, t.end).toLowerCase() : "";
    if (t.kind === "semi") {
      const trigger = head[0] === "create" && (head[1] === "trigger" || ((head[1] === "temp" || head[1] === "temporary") && head[2] === "trigger"));
      if (!trigger || prev === "end") {
        if (head.length > 0) out.push(sql.slice(start, t.start));
        start = t.end;
        head = [];
        prev = "";
        continue;
      }
    }
    if (head.length < 3) head.push(word || t.kind);
    prev = word || t.kind;
  }
  if (head.length > 0) out.push(sql.slice(start));
  return out;
}

/**
 * True for a statement about one of the system's own objects (the gate's `_vtl_…` lookup
 * tables and their indexes): users never name them, so such a statement is the system's alone
 * and the Catalog leaves it out.
 */
function namesSystemObject(sql: string): boolean {
  return tokenize(sql).some((t) => (t.kind === "word" || t.kind === "quoted") && /^_vt/i.test(tokenName(sql, t)));
}

function catalogError(e: unknown): VtError {
  if (e instanceof VtError) return e;
  const message = (e instanceof Error ? e.message : String(e)).replace(/: SQLITE_[A-Z_]+( \(extended: [A-Z_]+\))?$/, "");
  if (/syntax error/.test(message)) return new VtError("SYNTAX_ERROR", message);
  if (/no such table/.test(message)) return new VtError("UNKNOWN_TABLE", message);
  return new VtError("INVALID_ARGUMENT", message);
}
