// The last check over every text a tablet runs for a user request, made where the gate renders
// it and again inside the tablet before sql.exec (which would run every statement in a string).
// It reads the text with SQLite's own tokenizer, so what it passes is what SQLite will run:
// exactly one statement, bound only through plain `?`, naming none of the system's objects,
// and a query or DML statement (SQLite decides a statement's kind by its first word), so no
// query can change the schema: DDL reaches tablets only through `sync`. (Durable Object SQLite
// does not authorize PRAGMA schema_version, so this is checked before running, not after.)

import { VtError } from "../contract/errors.ts";
import { unsupportedError } from "./refusals.ts";
import { tokenize, tokenName, type Token } from "./sql-lexer.ts";
import { systemObjectKind } from "./system-names.ts";

/** The first words of statements that read or change rows, never the schema or settings. */
const ROW_STATEMENTS: ReadonlySet<string> = new Set(["select", "values", "with", "insert", "replace", "update", "delete"]);

/** A string literal that could stand for a name (SQLite takes 'x' as a name in places). */
const NAME_LIKE = /^[A-Za-z0-9_$\u0080-\uffff]+$/;

function refuseName(name: string, t: Token): never {
  const kind = systemObjectKind(name);
  if (kind === "catalog" || kind === "pragma") {
    throw unsupportedError("VD2004", `${name}: SQLite's catalogs and PRAGMA functions are per shard; use GET /v1/topology`, { position: t.start });
  }
  throw new VtError("PERMISSION_DENIED", `"${name}": the system's own objects cannot be named`, { position: t.start });
}

/**
 * Throws unless `sql` is one SELECT / VALUES / WITH / INSERT / REPLACE / UPDATE / DELETE statement whose placeholders are `paramCount` plain `?` and whose
 * names (bare, quoted, or a name-like string) include no system object (system-names.ts).
 */
export function checkShardSql(sql: string, paramCount: number): void {
  let significant = 0;
  let placeholders = 0;
  for (const t of tokenize(sql)) {
    switch (t.kind) {
      case "space":
      case "comment":
        continue;
      case "illegal":
        throw new VtError(
          "SYNTAX_ERROR",
          `syntax error: SQLite cannot read ${JSON.stringify(sql.slice(t.start, t.start + 20))} at position ${t.start} of a shard statement`,
          {
            position: t.start,
          },
        );
      case "semi":
        throw new VtError("INVALID_ARGUMENT", `a shard statement holds exactly one statement; found ";" at position ${t.start}`, { position: t.start });
      case "variable":
        if (t.end - t.start !== 1) {
          throw new VtError("INVALID_ARGUMENT", `a shard statement binds only through "?"; found ${JSON.stringify(sql.slice(t.start, t.end))}`, {
            position: t.start,
          });
        }
        placeholders++;
        break;
      case "word":
      case "quoted": {
        const name = tokenName(sql, t);
        if (systemObjectKind(name) !== undefined) refuseName(name, t);
        break;
      }
      case "string": {
        const text = tokenName(sql, t);
        if (NAME_LIKE.test(text) && systemObjectKind(text) !== undefined) refuseName(text, t);
        break;
      }
      default:
        break;
    }
    if (significant === 0) {
      const first = t.kind === "word" ? sql.slice(t.start, t.end).toLowerCase() : "";
      if (!ROW_STATEMENTS.has(first)) {
        throw new VtError(
          "PERMISSION_DENIED",
          `a shard query reads or changes rows only (SELECT, VALUES, WITH, INSERT, REPLACE, UPDATE, DELETE); schema changes go through the Topology (found ${JSON.stringify(sql.slice(t.start, t.end))})`,
          { position: t.start },
        );
      }
    }
    significant++;
  }
  if (significant === 0) throw new VtError("INVALID_ARGUMENT", "a shard statement is empty");
  if (placeholders !== paramCount) {
    throw new VtError("INVALID_ARGUMENT", `a shard statement has ${placeholders} placeholders but ${paramCount} values`);
  }
}
