// A fake gate for the client tests: a capnweb RpcTarget with the GateRpc methods over one tiny
// in-memory table `t (id, v)`. It understands only the statements the tests send.

import { RpcTarget } from "capnweb";
import { toWireError, VtError } from "../contract/errors.ts";
import { checkSqlValue, type SqlValue } from "../contract/sql-values.ts";
import type { TopologyView } from "./api.ts";
import type { BatchRequest, ExecuteRequest, WireResultSet } from "./gate-rpc.ts";
import type { WireParams } from "./params.ts";

export class FakeDb {
  rows = new Map<string, SqlValue[]>();
  /** Every execute/batch request the fake received, in order. */
  readonly received: (ExecuteRequest | BatchRequest)[] = [];
  /** Method names in the order they were called (across sessions). */
  readonly calls: string[] = [];
  constructor(
    readonly token?: string,
    readonly adminToken?: string,
  ) {}
}

function key(v: SqlValue): string {
  return typeof v === "bigint" ? `n${v}` : `${typeof v}:${String(v)}`;
}

function param(params: WireParams | undefined, index: number, name: string): SqlValue {
  if (Array.isArray(params)) return params[index] ?? null;
  if (params === undefined) return null;
  for (const k of [name, `:${name}`, `@${name}`, `$${name}`]) {
    const v = params[k];
    if (v !== undefined) return v;
  }
  return null;
}

function fail(code: ConstructorParameters<typeof VtError>[0], message: string, extra?: Record<string, unknown>): never {
  throw toWireError(new VtError(code, message, extra));
}

/** Parameters as the real gate sees them: integers within 2^53 are numbers. */
function normalize(params: WireParams | undefined): WireParams | undefined {
  if (params === undefined) return undefined;
  if (Array.isArray(params)) return params.map((v, i) => checkSqlValue(v, `params[${i}]`));
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, checkSqlValue(v, k)]));
}

export function run(db: FakeDb, sql: string, rawParams: WireParams | undefined): WireResultSet {
  const s = sql.trim();
  const params = normalize(rawParams);
  if (/^INSERT INTO t VALUES \((\?, \?|:id, :v)\)$/.test(s)) {
    const id = param(params, 0, "id");
    const v = param(params, 1, "v");
    if (db.rows.has(key(id))) fail("CONSTRAINT", "UNIQUE constraint failed: t.id");
    db.rows.set(key(id), [id, v]);
    return { columns: [], rows: [], rowsAffected: 1, lastInsertRowid: typeof id === "number" || typeof id === "bigint" ? id : 0 };
  }
  if (s === "SELECT id, v FROM t") return { columns: ["id", "v"], rows: [...db.rows.values()], rowsAffected: 0 };
  if (/^SELECT id, v FROM t WHERE id = (\?|:id)$/.test(s)) {
    const row = db.rows.get(key(param(params, 0, "id")));
    return { columns: ["id", "v"], rows: row ? [row] : [], rowsAffected: 0 };
  }
  if (s === "SELECT ECHO") {
    // Answers the parameters as they arrived: one column per parameter.
    if (params === undefined) return { columns: [], rows: [[]], rowsAffected: 0 };
    const entries = Array.isArray(params) ? params.map((v, i): [string, SqlValue] => [`p${i}`, v]) : Object.entries(params);
    return { columns: entries.map(([k]) => k), rows: [entries.map(([, v]) => v)], rowsAffected: 0 };
  }
  if (s === "SELECT 1 AS a, 2 AS a") return { columns: ["a", "a"], rows: [[1, 2]], rowsAffected: 0 };
  if (s === "BUSY") fail("NOT_SERVING", "shard main/-80 is not serving");
  fail("SYNTAX_ERROR", `near "${s.split(/\s+/)[0] ?? ""}": syntax error`, { position: 0 });
}

export const TOPOLOGY: TopologyView = {
  version: 3,
  keyspaces: [
    {
      name: "main",
      sharded: true,
      shards: [
        { name: "-80", keyRange: "-80", serving: true, tablet: "main/-80", rowCount: 10, bytes: 8192, position: null },
        { name: "80-", keyRange: "80-", serving: true, tablet: "main/80-", rowCount: 12, bytes: 12288, position: null },
      ],
      tables: ["t"],
      vschema: { sharded: true },
    },
  ],
  workflows: [],
};

/** One capnweb session's main object; authentication is per session, as on the real gate. */
export class FakeGate extends RpcTarget {
  #authed = false;
  readonly #db: FakeDb;

  constructor(db: FakeDb) {
    super();
    this.#db = db;
  }

  authenticate(token: string): void {
    this.#db.calls.push("authenticate");
    if (token !== this.#db.token && token !== this.#db.adminToken) fail("UNAUTHENTICATED", "the token is wrong");
    this.#authed = true;
  }

  #check(method: string): void {
    this.#db.calls.push(method);
    if (this.#db.token !== undefined && !this.#authed) fail("UNAUTHENTICATED", "call authenticate(token) first");
  }

  execute(req: ExecuteRequest): WireResultSet {
    this.#check("execute");
    this.#db.received.push(req);
    return run(this.#db, req.sql, req.params);
  }

  batch(req: BatchRequest): { results: WireResultSet[] } {
    this.#check("batch");
    this.#db.received.push(req);
    const before = new Map(this.#db.rows);
    const results: WireResultSet[] = [];
    for (const [i, st] of req.statements.entries()) {
      try {
        results.push(run(this.#db, st.sql, st.params));
      } catch (e) {
        if (req.transaction === true) this.#db.rows = before;
        Object.assign(e as object, { statementIndex: i });
        throw e;
      }
    }
    return { results };
  }

  topology(): TopologyView {
    this.#check("topology");
    return TOPOLOGY;
  }
}
