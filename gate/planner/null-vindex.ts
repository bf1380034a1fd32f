// A row with no value for its vindex column (left out, or NULL) has no shard. When its column is
// NOT NULL, SQLite itself refuses such a row with a NOT NULL constraint failure (or skips it under
// OR IGNORE), so the gate does the same; where SQLite would store the row, the gate can only
// refuse it for a sharding reason (UNSUPPORTED).

import type { Node } from "sql-parser-cst";
import type { TableInfo } from "../../contract/tablet-rpc.ts";
import { parseOne } from "../sql/parse.ts";
import { kw } from "./ast.ts";

type InsertStmt = Extract<Node, { type: "insert_stmt" }>;

/**
 * What SQLite does with a row that leaves `column` out (`given` false) or gives it NULL:
 * "fails" the whole statement with a NOT NULL constraint, "skips" the row, or "stores" it. The
 * column must be NOT NULL for the first two; then the conflict resolution that applies (the
 * statement's OR clause, else the column's own ON CONFLICT, else ABORT) decides: IGNORE skips,
 * REPLACE fails where the column has no DEFAULT (it stores the DEFAULT otherwise), the others
 * fail. A left-out column with a DEFAULT takes it. ON CONFLICT … DO (upsert) does not apply to
 * NOT NULL.
 */
export function nullVindexInSqlite(s: InsertStmt, info: TableInfo, column: string, given: boolean): "fails" | "skips" | "stores" {
  const lower = column.toLowerCase();
  if (info.columns.find((c) => c.name.toLowerCase() === lower)?.notNull !== true) return "stores";
  const decl = declaration(info.sql, lower);
  if (!given && decl.hasDefault) return "stores";
  const ic = s.clauses.find((c) => c.type === "insert_clause");
  const stated = ic?.type !== "insert_clause" ? "" : kw(ic.insertKw) === "REPLACE" ? "REPLACE" : ic.orAction ? kw(ic.orAction.actionKw) : "";
  const resolution = stated || decl.onConflict || "ABORT";
  if (resolution === "UNKNOWN") return "stores";
  if (resolution === "IGNORE") return "skips";
  if (resolution === "REPLACE") return decl.hasDefault ? "stores" : "fails";
  return "fails";
}

interface Declaration {
  readonly hasDefault: boolean;
  /** The ON CONFLICT resolution declared on the column's NOT NULL, "" without one, "UNKNOWN" beside one on its PRIMARY KEY. */
  readonly onConflict: string;
}

const cache = new Map<string, Declaration>();

/** What the CREATE TABLE text declares for one column (parsed once per text and column). */
function declaration(createSql: string, lower: string): Declaration {
  const key = `${lower}\u0000${createSql}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let out: Declaration = { hasDefault: false, onConflict: "" };
  let stmt: Node | undefined;
  try {
    stmt = parseOne(createSql).stmt;
  } catch {
    stmt = undefined;
  }
  if (stmt?.type === "create_table_stmt" && stmt.columns) {
    for (const item of stmt.columns.expr.items as Node[]) {
      if (item.type !== "column_definition" || item.name.name.toLowerCase() !== lower) continue;
      let hasDefault = false;
      let onConflict = "";
      for (const c of item.constraints as Node[]) {
        const inner = c.type === "constraint" ? (c.constraint as Node) : c;
        if (inner.type === "constraint_default") hasDefault = true;
        if (inner.type !== "constraint_not_null" && inner.type !== "constraint_primary_key") continue;
        // Which of a NOT NULL's and a PRIMARY KEY's resolutions SQLite applies is not read here: a PRIMARY KEY's marks it unknown.
        for (const k of inner.clauses as Node[]) {
          if (k.type !== "on_conflict_clause") continue;
          onConflict = inner.type === "constraint_primary_key" ? "UNKNOWN" : onConflict === "UNKNOWN" ? onConflict : kw(k.resolutionKw);
        }
      }
      out = { hasDefault, onConflict };
    }
  }
  if (cache.size > 1000) cache.clear();
  cache.set(key, out);
  return out;
}
