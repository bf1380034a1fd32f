// The implicit rowid (`rowid`, `oid`, `_rowid_`) numbers a table's rows within one SQLite
// database, and every shard numbers its own: across shards one rowid names a row on each shard
// (`UPDATE … WHERE rowid = 1` would change one row per shard) and `SELECT rowid` answers
// duplicates. So in a sharded keyspace the implicit rowid is refused. It stays usable where it is
// another name of a declared column: an INTEGER PRIMARY KEY (the rowid is then that column, whose
// values the rows carry to any shard), or a column declared with that name.

import type { Node } from "sql-parser-cst";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { own } from "../../topology/own.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import type { TableInfo } from "../../contract/tablet-rpc.ts";
import { walk } from "../sql/parse.ts";

const ROWID_NAMES: ReadonlySet<string> = new Set(["rowid", "oid", "_rowid_"]);

/**
 * True when `name` means a declared column of the table: a column of that name, or (for a
 * rowid name) its INTEGER PRIMARY KEY. SQLite makes only a single-column primary key declared
 * exactly `INTEGER` an alias of the rowid, and not `INTEGER PRIMARY KEY DESC` on the column
 * itself; any form in doubt counts as no alias, so it is refused rather than misread.
 */
function isDeclared(info: TableInfo, name: string): boolean {
  if (info.columns.some((c) => c.name.toLowerCase() === name)) return true;
  const pk = info.columns.filter((c) => c.pk > 0);
  const only = pk[0];
  if (pk.length !== 1 || only === undefined || only.type.toUpperCase() !== "INTEGER") return false;
  return !/\bPRIMARY\s+KEY\s+DESC\b/i.test(info.sql) && !/\bWITHOUT\s+ROWID\b/i.test(info.sql);
}

/** Every name an `AS` gives in the statement (result columns and tables), lower-cased. */
function aliasNames(stmt: Node): Set<string> {
  const out = new Set<string>();
  walk(stmt, (n) => {
    if (n.type === "alias" && n.alias.type === "identifier") out.add(n.alias.name.toLowerCase());
  });
  return out;
}

/**
 * The identifiers of `node` that SQLite may resolve as a column: not what an `AS` defines, not a
 * qualifier (`s.` in `s.rowid`), not a function's name, and not a bare ORDER BY / GROUP BY term
 * naming a result alias (SQLite resolves those as the alias first). Elsewhere a table's columns,
 * its rowid included, take precedence over result aliases, so an alias does not hide them.
 */
function columnNames(node: Node, aliases: ReadonlySet<string>, out: Node[], ordering = false): void {
  const visit = (v: unknown, ord: boolean): void => {
    if (Array.isArray(v)) {
      for (const c of v) visit(c, ord);
      return;
    }
    if (typeof v !== "object" || v === null || typeof (v as { type?: unknown }).type !== "string") return;
    const n = v as Node;
    switch (n.type) {
      case "identifier":
        if (!(ord && aliases.has(n.name.toLowerCase()))) out.push(n);
        return;
      case "alias":
        visit(n.expr, ord);
        return;
      case "member_expr":
        visit(n.property, false);
        return;
      case "func_call":
        visit(n.args, false);
        visit(n.filter, false);
        visit(n.over, false);
        return;
      default: {
        const inOrder = n.type === "order_by_clause" || n.type === "group_by_clause";
        for (const [k, c] of Object.entries(n))
          if (k !== "range" && typeof c === "object") visit(c, inOrder || (ord && (n.type === "list_expr" || n.type === "sort_specification")));
      }
    }
  };
  visit(node, ordering);
}

/**
 * Throws UNSUPPORTED (VD2601) when the statement names a rowid (bare, qualified or quoted, in any
 * clause) while one of its tables has no declared column that the name would mean. Checked
 * against every table the statement names, whichever one the reference belongs to: a refusal of
 * a rowid that is in fact another table's INTEGER PRIMARY KEY costs an alias, never a wrong row.
 */
export function checkRowids(stmt: Node, ks: KeyspaceGraph, tables: readonly string[]): void {
  if (!ks.sharded) return;
  const names: Node[] = [];
  columnNames(stmt, aliasNames(stmt), names);
  for (const n of names) {
    if (n.type !== "identifier") continue;
    const name = n.name.toLowerCase();
    if (!ROWID_NAMES.has(name)) continue;
    for (const t of tables) {
      const info = own(ks.tables, t.toLowerCase());
      if (info === undefined || isDeclared(info, name)) continue;
      throw unsupportedError(
        "VD2601",
        `the implicit ${n.name} of ${t} in sharded keyspace ${ks.name}: each shard numbers its own rows, so it names a row on every shard; declare an INTEGER PRIMARY KEY, or use the table's key`,
      );
    }
  }
}
