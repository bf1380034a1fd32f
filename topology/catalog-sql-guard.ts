// The check over every text the Catalog runs (made where the gate renders it and again inside
// the Catalog before sql.exec): exactly one statement, bound only through plain `?`, a read
// (SELECT, VALUES, WITH or a PRAGMA), naming none of the tablet's or the platform's objects.
// SQLite's catalogs and PRAGMA functions are what it is for; the Catalog holds no other object.

import { VtError } from "../contract/errors.ts";
import { tokenize, tokenName } from "./sql-lexer.ts";
import { systemObjectKind } from "./system-names.ts";

const READ_STATEMENTS: ReadonlySet<string> = new Set(["select", "values", "with", "pragma"]);

/** Throws unless `sql` is one read of the catalog with `paramCount` plain `?` placeholders and no `_vt_` / `_cf_` name. */
export function checkCatalogSql(sql: string, paramCount: number): void {
  let significant = 0;
  let placeholders = 0;
  for (const t of tokenize(sql)) {
    if (t.kind === "space" || t.kind === "comment") continue;
    if (t.kind === "illegal")
      throw new VtError("SYNTAX_ERROR", `syntax error: SQLite cannot read ${JSON.stringify(sql.slice(t.start, t.start + 20))} at position ${t.start}`, {
        position: t.start,
      });
    if (t.kind === "semi")
      throw new VtError("INVALID_ARGUMENT", `a catalog statement holds exactly one statement; found ";" at position ${t.start}`, { position: t.start });
    if (t.kind === "variable") {
      if (t.end - t.start !== 1) throw new VtError("INVALID_ARGUMENT", `a catalog statement binds only through "?"`, { position: t.start });
      placeholders++;
    }
    if (t.kind === "word" || t.kind === "quoted" || t.kind === "string") {
      const kind = systemObjectKind(tokenName(sql, t));
      if (kind === "tablet" || kind === "platform")
        throw new VtError("PERMISSION_DENIED", `"${tokenName(sql, t)}": the system's own objects cannot be named`, { position: t.start });
    }
    if (significant === 0 && !(t.kind === "word" && READ_STATEMENTS.has(sql.slice(t.start, t.end).toLowerCase()))) {
      throw new VtError(
        "PERMISSION_DENIED",
        `the catalog answers reads only (SELECT, VALUES, WITH, PRAGMA); found ${JSON.stringify(sql.slice(t.start, t.end))}`,
        { position: t.start },
      );
    }
    significant++;
  }
  if (significant === 0) throw new VtError("INVALID_ARGUMENT", "a catalog statement is empty");
  if (placeholders !== paramCount) throw new VtError("INVALID_ARGUMENT", `a catalog statement has ${placeholders} placeholders but ${paramCount} values`);
}
