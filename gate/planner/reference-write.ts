// A write to a reference table: the same statement on every shard's copy, refused when it could
// do something different on one.

import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { Primitive } from "../engine/primitive.ts";
import { Route } from "../engine/route.ts";
import { walk, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate } from "../sql/template.ts";
import { funcName, hasSubquery, unsupported } from "./ast.ts";
import { omittedColumns, perCallDefaultColumns } from "./reference-defaults.ts";
import { own } from "../../topology/own.ts";
import { checkReferenceKeyUpdate } from "./foreign-key-actions.ts";

/** Functions whose value differs from shard to shard (time, randomness, per-connection state). */
const NONDETERMINISTIC = new Set([
  "random",
  "randomblob",
  "date",
  "time",
  "datetime",
  "julianday",
  "strftime",
  "unixepoch",
  "timediff",
  "changes",
  "total_changes",
  "last_insert_rowid",
  "current_time",
  "current_date",
  "current_timestamp",
]);

/**
 * A write to a reference table runs on every shard, so it must do the same thing on each copy:
 * no subqueries (they could read sharded rows) and nothing that differs per shard or per call.
 */
export function planReferenceWrite(ps: ParsedStatement, ks: KeyspaceGraph, table: string, kind: "insert" | "write"): Primitive {
  const create = own(ks.tables, table.toLowerCase())?.sql ?? "";
  const omitted = ps.stmt.type === "insert_stmt" ? omittedColumns(ps.stmt, perCallDefaultColumns(create, NONDETERMINISTIC)) : [];
  if (omitted.length > 0) {
    throw unsupported(
      "VD1040",
      `INSERT into reference table ${table}: a column DEFAULT that differs per shard (time or randomness) for ${omitted.join(", ")}; give the value explicitly and drop the DEFAULT`,
    );
  }
  if (hasSubquery(ps.stmt)) throw unsupported("VD1041", `a subquery in a write to reference table ${table}`);
  checkReferenceKeyUpdate(ks, table, ps.stmt);
  walk(ps.stmt, (n) => {
    const name = funcName(n);
    if (name !== undefined && NONDETERMINISTIC.has(name)) {
      throw unsupported("VD1042", `${name}() in a write to reference table ${table} (each shard's copy would get a different value)`);
    }
  });
  return new Route({ opcode: "all", table, template: sliceTemplate(ps, ps.range[0], ps.range[1]), kind });
}
