// Statement → plan. Plans are cached by keyspace, graph version and statement text: a cold
// parse+plan costs milliseconds, a cache hit microseconds.

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import { reservedNameReason, systemObjectKind } from "../../topology/system-names.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { Primitive } from "../engine/primitive.ts";
import { Route } from "../engine/route.ts";
import { parseOne, tooDeep, walk, type ParamRef, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate } from "../sql/template.ts";
import { tableRef } from "./ast.ts";
import { DDL_TYPES, planDdl } from "./ddl.ts";
import { planUpdateDelete } from "./dml.ts";
import { planInsert } from "./insert.ts";
import { checkRowids } from "./rowid.ts";
import { planSelect } from "./select.ts";
import { own } from "../../topology/own.ts";
import { refuseEndless } from "./endless.ts";
import { withExactReturning } from "./returning.ts";
import { planCatalog } from "./catalog.ts";
import { resultNames, type ResultNames } from "./column-names.ts";

export type StatementKind = "read" | "insert" | "write" | "ddl";

export interface Plan {
  readonly primitive: Primitive;
  readonly kind: StatementKind;
  /** Every placeholder of the statement, to check the request's params against. */
  readonly params: readonly ParamRef[];
  /** SQLite's names for the result columns the gate's rewrites rename (column-names.ts); apply with withResultNames. */
  readonly names?: ResultNames;
}

const REFUSED: Record<string, string> = {
  pragma_stmt: "PRAGMA (use GET /v1/topology for schema and sizes)",
  explain_stmt: "EXPLAIN",
  start_transaction_stmt: 'BEGIN (use /v1/batch with "transaction": true)',
  commit_transaction_stmt: 'COMMIT (use /v1/batch with "transaction": true)',
  rollback_transaction_stmt: 'ROLLBACK (use /v1/batch with "transaction": true)',
  savepoint_stmt: "SAVEPOINT",
  release_savepoint_stmt: "RELEASE SAVEPOINT",
  attach_database_stmt: "ATTACH",
  detach_database_stmt: "DETACH",
  vacuum_stmt: "VACUUM",
  analyze_stmt: "ANALYZE",
  reindex_stmt: "REINDEX",
};

/**
 * User SQL never names the system's own objects (⚑ `_vt` tables), SQLite's catalogs or PRAGMA
 * table functions, in any position or spelling (the parser gives identifiers unquoted). This is
 * the one place catalogs are refused: a gate-answered catalog view would hook in here.
 */
function checkNames(stmt: Node): void {
  walk(stmt, (n) => {
    if (n.type !== "identifier") return;
    const kind = systemObjectKind(n.name);
    if (/^_vt/i.test(n.name) || kind === "tablet" || kind === "platform") {
      throw new VtError("PERMISSION_DENIED", reservedNameReason(n.name));
    }
    if (kind === "catalog") throw unsupportedError("VD1082", `${n.name}: SQLite's catalogs are per shard; use GET /v1/topology`);
    if (kind === "pragma") throw unsupportedError("VD1083", `${n.name}(): PRAGMA functions are not supported (use GET /v1/topology for schema)`);
  });
}

/** Tables named by a DML statement or SELECT (FROM items, INSERT/UPDATE/DELETE targets). */
export function namedTables(stmt: Node): string[] {
  const out: string[] = [];
  const ctes = new Set<string>();
  walk(stmt, (n) => {
    if (n.type === "common_table_expr") ctes.add(n.table.name.toLowerCase());
  });
  const add = (n: Node): void => {
    if (n.type === "join_expr") {
      add(n.left);
      add(n.right);
      return;
    }
    try {
      const name = tableRef(n).name;
      if (!ctes.has(name.toLowerCase())) out.push(name);
    } catch {
      // subqueries and table functions are not table names
    }
  };
  walk(stmt, (n) => {
    if (n.type === "from_clause") add(n.expr as Node);
    else if (n.type === "insert_clause") add(n.table as Node);
    else if (n.type === "update_clause" || n.type === "delete_clause") for (const t of n.tables.items as Node[]) add(t);
  });
  return out;
}

function statementKind(type: string): StatementKind | undefined {
  if (type === "select_stmt" || type === "compound_select_stmt") return "read";
  if (type === "insert_stmt") return "insert";
  if (type === "update_stmt" || type === "delete_stmt") return "write";
  if (DDL_TYPES.has(type) || /^(create|drop|alter)_/.test(type)) return "ddl";
  return undefined;
}

export function planParsed(parsed: ParsedStatement, ks: KeyspaceGraph): Plan {
  const stmt = parsed.stmt;
  // Introspection reads the keyspace's Catalog, never a shard's own catalog.
  const catalog = planCatalog(parsed);
  if (catalog) {
    const names = resultNames(parsed);
    return { primitive: catalog, kind: "read", params: [...parsed.params.values()], ...(names ? { names } : {}) };
  }
  checkNames(stmt);
  const kind = statementKind(stmt.type);
  if (!kind) {
    throw unsupportedError(
      "VD1084",
      `${
        REFUSED[stmt.type] ??
        stmt.type
          .replace(/_stmt$/, "")
          .replaceAll("_", " ")
          .toUpperCase()
      } is not supported`,
    );
  }
  const ps = kind === "insert" || kind === "write" ? withExactReturning(parsed, ks) : parsed;
  if (kind === "ddl") return { primitive: planDdl(ps, ks), kind, params: [...ps.params.values()] };
  const names = resultNames(parsed);
  const params = { params: [...ps.params.values()], ...(names ? { names } : {}) };
  refuseEndless(stmt);
  if (!ks.sharded) {
    const template = sliceTemplate(ps, ps.range[0], ps.range[1]);
    return { primitive: new Route({ opcode: "unsharded", table: null, template, kind }), kind, ...params };
  }
  const tables = namedTables(stmt);
  for (const name of tables) {
    if (!own(ks.tables, name.toLowerCase())) throw new VtError("UNKNOWN_TABLE", `table ${name} does not exist in keyspace ${ks.name}`, { table: name });
  }
  checkRowids(stmt, ks, tables);
  if (kind !== "read" && (stmt as { clauses?: Node[] }).clauses?.some((c) => c.type === "with_clause")) {
    throw unsupportedError("VD1085", "WITH before INSERT / UPDATE / DELETE is not supported across shards yet");
  }
  const primitive = kind === "read" ? planSelect(ps, ks) : kind === "insert" ? planInsert(ps, ks) : planUpdateDelete(ps, ks);
  return { primitive, kind, ...params };
}

/**
 * An upper bound of the heap one cached plan holds, from its statement's length. Measured with
 * bench/plan-cache-memory.node.ts (retained heap after GC, per plan): short statements cost
 * 3–13 KB (runs vary; once 45 KB for a 50-column select list), up to ~170 bytes per
 * character when nearly every character is a token; long ones 2–12 bytes per character (a long
 * IN list ~5.5, multi-row literal INSERTs ~11, a long string literal ~2). So: 8 KB, plus 150
 * bytes per character of the first 2,048, plus 12 per character beyond, which is above every
 * shape measured but the noisiest short ones.
 */
export function planBytes(chars: number): number {
  const head = Math.min(chars, 2048);
  return 8192 + 150 * head + 12 * (chars - head);
}

/**
 * An LRU of plans, bounded both by entries and by the planBytes() estimate of the heap they
 * hold: at the defaults at most 2,000 plans and 16 MiB of estimate, so (the estimate being an
 * upper bound) about 16 MiB of heap at most, however long the statements; the 100,000-character
 * statement limit makes one plan's estimate at most ~1.5 MiB, and the cheapest plan's ~14 KB
 * lets at most ~1,200 of the shortest statements share the budget. A plan whose estimate is over
 * the whole budget is returned but not kept.
 */
export class PlanCache {
  readonly #plans = new Map<string, { plan: Plan; bytes: number }>();
  readonly #capacity: number;
  readonly #maxBytes: number;
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(capacity = 2000, maxBytes = 16 * 1024 * 1024) {
    this.#capacity = capacity;
    this.#maxBytes = maxBytes;
  }

  /** The estimated heap held by the cached plans. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#plans.size;
  }

  plan(sql: string, ks: KeyspaceGraph): Plan {
    const key = `${ks.name}\u0001${ks.version}\u0001${sql}`;
    const hit = this.#plans.get(key);
    if (hit) {
      this.hits++;
      this.#plans.delete(key);
      this.#plans.set(key, hit);
      return hit.plan;
    }
    this.misses++;
    let plan: Plan;
    try {
      plan = planParsed(parseOne(sql), ks);
    } catch (e) {
      throw tooDeep(e) ?? e;
    }
    const bytes = planBytes(key.length);
    if (bytes > this.#maxBytes) return plan;
    this.#plans.set(key, { plan, bytes });
    this.#bytes += bytes;
    while (this.#plans.size > this.#capacity || this.#bytes > this.#maxBytes) {
      const oldest = this.#plans.entries().next().value;
      if (oldest === undefined) break;
      this.#plans.delete(oldest[0]);
      this.#bytes -= oldest[1].bytes;
    }
    return plan;
  }
}
