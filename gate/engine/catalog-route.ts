// CatalogRoute: a statement that reads only the schema catalog (sqlite_master, pragma_table_info(…),
// PRAGMA table_info(…), …) runs on the keyspace's Catalog, which holds the keyspace's schema and
// nothing else (topology/catalog-do.ts), so introspection sees the keyspace as one SQLite would.

import { VtError } from "../../contract/errors.ts";
import { checkCatalogSql } from "../../topology/catalog-sql-guard.ts";
import { renderText, type Bindings, type Template } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";

export class CatalogRoute implements Primitive {
  readonly template: Template;

  constructor(template: Template) {
    this.template = template;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    if (!vc.catalog) throw new VtError("INTERNAL", "this cursor has no catalog");
    const q = renderText(this.template, b);
    checkCatalogSql(q.sql, q.params.length);
    return vc.catalog({ ...q, kind: "read" });
  }

  describe(x?: Explain): PlanDescription {
    const sql = this.template.map((p) => (typeof p === "string" ? p : "?")).join("");
    return { operator: "CatalogRoute", sql, ...(x ? { query: renderText(this.template, x.bindings) } : {}) };
  }
}
