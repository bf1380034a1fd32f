// Introspection. A statement that reads only SQLite's schema catalog — sqlite_master /
// sqlite_schema, the schema PRAGMA table functions (pragma_table_info(x), …) and the matching
// PRAGMA statements — runs on the keyspace's Catalog (engine/catalog-route.ts), which shows
// exactly the keyspace's tables, indexes, views and triggers: never a shard's system objects.
// A statement mixing catalog objects with the keyspace's tables is refused (the catalog has
// no rows, the shards have the system objects).

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import { reservedNameReason } from "../../topology/system-names.ts";
import { CatalogRoute } from "../engine/catalog-route.ts";
import type { Primitive } from "../engine/primitive.ts";
import { walk, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate } from "../sql/template.ts";
import { funcName } from "./ast.ts";

/** The catalog tables a statement may read (SQLite's own names for sqlite_master). */
const CATALOG_TABLES = new Set(["sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"]);

/** Read-only schema PRAGMAs, as statements (`PRAGMA table_info(t)`) and table functions (`pragma_table_info(t)`). */
const SCHEMA_PRAGMAS = new Set(["table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list", "table_list"]);

/** What a FROM source is: the schema catalog, a table of the keyspace (or a CTE), or neither. */
type Source = { kind: "catalog"; name: string } | { kind: "table"; name: string } | { kind: "other" };

/** A table named in FROM: a catalog table, a schema PRAGMA function without arguments (`FROM pragma_table_list`), or a table. */
function named(name: string): Source {
  if (CATALOG_TABLES.has(name) || (name.startsWith("pragma_") && SCHEMA_PRAGMAS.has(name.slice(7)))) return { kind: "catalog", name };
  return name.startsWith("pragma_") || name.startsWith("sqlite_") ? { kind: "other" } : { kind: "table", name };
}

/** The FROM sources of every SELECT in `stmt` (subqueries included), CTE names excluded. */
function sources(stmt: Node): Source[] {
  const ctes = new Set<string>();
  walk(stmt, (n) => {
    if (n.type === "common_table_expr") ctes.add(n.table.name.toLowerCase());
  });
  const out: Source[] = [];
  const add = (n: Node): void => {
    switch (n.type) {
      case "join_expr":
        add(n.left);
        add(n.right as Node);
        return;
      case "alias":
        add(n.expr as Node);
        return;
      case "paren_expr":
        // A subquery's own FROM is visited by the walk; a parenthesized join is walked here.
        if ((n.expr as Node).type === "join_expr") add(n.expr as Node);
        return;
      case "identifier": {
        const name = n.name.toLowerCase();
        if (ctes.has(name)) return;
        out.push(named(name));
        return;
      }
      case "member_expr": {
        if (n.object.type === "identifier" && n.object.name.toLowerCase() === "main" && n.property.type === "identifier")
          out.push(named(n.property.name.toLowerCase()));
        else out.push({ kind: "other" });
        return;
      }
      case "func_call": {
        const name = funcName(n) ?? "";
        out.push(name.startsWith("pragma_") && SCHEMA_PRAGMAS.has(name.slice(7)) ? { kind: "catalog", name } : { kind: "other" });
        return;
      }
      default:
        out.push({ kind: "other" });
    }
  };
  walk(stmt, (n) => {
    if (n.type === "from_clause") add(n.expr as Node);
  });
  return out;
}

/** Names starting with _vt (any case), _cf_ or miniflare's are the system's own, in introspection too. */
function checkSystemName(text: string): void {
  const lower = text.replace(/^["'`[]|["'`\]]$/g, "").toLowerCase();
  if (lower.startsWith("_vt") || lower.startsWith("_cf_") || lower === "__miniflare_do_name") {
    throw new VtError("PERMISSION_DENIED", reservedNameReason(text.replace(/^["'`[]|["'`\]]$/g, "")));
  }
}

/**
 * The plan of a statement that reads only the schema catalog; undefined for any other statement
 * (one naming no catalog object, or a catalog object that is not introspection, which the
 * planner refuses as before). UNSUPPORTED when catalog objects and tables meet in one statement.
 */
export function planCatalog(ps: ParsedStatement): Primitive | undefined {
  const stmt = ps.stmt;
  if (stmt.type === "pragma_stmt") {
    const p = stmt.pragma;
    // PRAGMA name(value), PRAGMA name = value, or PRAGMA name alone.
    const entity = p.type === "pragma_func_call" || p.type === "pragma_assignment" ? p.name : p;
    const nameNode = entity.type === "member_expr" ? entity.property : entity;
    const schema = entity.type === "member_expr" && entity.object.type === "identifier" ? entity.object.name.toLowerCase() : "main";
    if (nameNode.type !== "identifier" || !SCHEMA_PRAGMAS.has(nameNode.name.toLowerCase()) || schema !== "main") return undefined;
    walk(p, (n) => {
      if (n.type === "identifier" || n.type === "keyword") checkSystemName(n.text);
    });
    return new CatalogRoute(sliceTemplate(ps, ps.range[0], ps.range[1]));
  }
  if (stmt.type !== "select_stmt" && stmt.type !== "compound_select_stmt") return undefined;
  const found = sources(stmt);
  const catalog = found.filter((s) => s.kind === "catalog");
  if (catalog.length === 0) return undefined;
  const tables = found.filter((s) => s.kind !== "catalog");
  if (tables.length > 0) {
    const named = tables.map((t) => ("name" in t ? t.name : "a table function")).join(", ");
    throw unsupportedError(
      "VD2500",
      `a statement reading both the schema catalog (${catalog.map((c) => c.name).join(", ")}) and ${named}: the catalog holds the keyspace's schema only; read the two in separate statements`,
    );
  }
  walk(stmt, (n) => {
    if (n.type === "identifier") checkSystemName(n.name);
  });
  return new CatalogRoute(sliceTemplate(ps, ps.range[0], ps.range[1]));
}
