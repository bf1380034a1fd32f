// The collations of a table's PRIMARY KEY columns, read from its CREATE TABLE text with SQLite's
// tokenizer: the column's own (its last COLLATE clause, BINARY when none), which every comparison
// and ORDER BY of the column uses, and the key's (a table constraint's `col COLLATE x`, else the
// column's), which decides which values are distinct keys. A stream pages a copy and deletes rows
// by comparing the column, so where the key keeps apart two values the column calls equal, a
// page could skip one and a delete remove both (checked in placements.ts).

import type { TableInfo } from "../contract/tablet-rpc.ts";
import { type Token, tokenize, tokenName } from "./sql-lexer.ts";

export interface KeyCollation {
  readonly column: string;
  /** Upper-cased: BINARY, NOCASE or RTRIM. */
  readonly columnCollation: string;
  readonly keyCollation: string;
}

interface Parsed {
  /** By lower-cased column: its collation, and whether a column-level PRIMARY KEY DESC made it a key (then it is no rowid alias). */
  readonly columns: Map<string, { collation: string; pkDesc: boolean }>;
  /** By lower-cased column: the collation a table-level PRIMARY KEY gives it (absent when it gives none). */
  readonly keyCollations: Map<string, string>;
  readonly withoutRowid: boolean;
}

const isOp = (sql: string, t: Token | undefined, op: string) => t?.kind === "op" && sql.slice(t.start, t.end) === op;
const wordOf = (sql: string, t: Token | undefined) => (t?.kind === "word" ? sql.slice(t.start, t.end).toUpperCase() : "");

/** Splits `toks` at the commas outside parentheses. */
function splitTop(sql: string, toks: readonly Token[]): Token[][] {
  const out: Token[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (isOp(sql, t, "(")) depth++;
    else if (isOp(sql, t, ")")) depth--;
    if (depth === 0 && isOp(sql, t, ",")) out.push([]);
    else out.at(-1)?.push(t);
  }
  return out;
}

/** The collation named after each COLLATE outside parentheses in `toks` (the last wins), or null. */
function lastCollate(sql: string, toks: readonly Token[]): string | null {
  let depth = 0;
  let found: string | null = null;
  toks.forEach((t, i) => {
    if (isOp(sql, t, "(")) depth++;
    else if (isOp(sql, t, ")")) depth--;
    const next = toks[i + 1];
    if (depth === 0 && wordOf(sql, t) === "COLLATE" && next) found = tokenName(sql, next).toUpperCase();
  });
  return found;
}

const TABLE_CONSTRAINT = new Set(["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"]);

function parse(sql: string): Parsed | null {
  const toks = tokenize(sql).filter((t) => t.kind !== "space" && t.kind !== "comment");
  const open = toks.findIndex((t) => isOp(sql, t, "("));
  if (open < 0) return null;
  let depth = 0;
  let close = -1;
  for (let i = open; i < toks.length; i++) {
    if (isOp(sql, toks[i], "(")) depth++;
    else if (isOp(sql, toks[i], ")") && --depth === 0) {
      close = i;
      break;
    }
  }
  if (close < 0) return null;
  const columns: Parsed["columns"] = new Map();
  const keyCollations = new Map<string, string>();
  for (const item of splitTop(sql, toks.slice(open + 1, close))) {
    const first = item[0];
    if (!first) continue;
    if (first.kind === "word" && TABLE_CONSTRAINT.has(wordOf(sql, first))) {
      const at = item.findIndex((t, i) => wordOf(sql, t) === "PRIMARY" && wordOf(sql, item[i + 1]) === "KEY");
      if (at < 0 || !isOp(sql, item[at + 2], "(")) continue;
      let d = 0;
      let end = at + 2;
      for (; end < item.length; end++) {
        if (isOp(sql, item[end], "(")) d++;
        else if (isOp(sql, item[end], ")") && --d === 0) break;
      }
      for (const el of splitTop(sql, item.slice(at + 3, end))) {
        const name = el[0];
        if (!name) continue;
        const c = lastCollate(sql, el);
        if (c !== null) keyCollations.set(tokenName(sql, name).toLowerCase(), c);
      }
      continue;
    }
    const pk = item.findIndex((t, i) => wordOf(sql, t) === "PRIMARY" && wordOf(sql, item[i + 1]) === "KEY");
    columns.set(tokenName(sql, first).toLowerCase(), {
      collation: lastCollate(sql, item.slice(1)) ?? "BINARY",
      pkDesc: pk >= 0 && wordOf(sql, item[pk + 2]) === "DESC",
    });
  }
  const rest = toks.slice(close + 1);
  const withoutRowid = rest.some((t, i) => wordOf(sql, t) === "WITHOUT" && wordOf(sql, rest[i + 1]) === "ROWID");
  return { columns, keyCollations, withoutRowid };
}

/**
 * The collations of `info`'s PRIMARY KEY columns, in key order; empty for a table keyed by its
 * rowid (an INTEGER PRIMARY KEY holds integers only, whatever it declares) or whose text cannot
 * be read.
 */
export function keyCollations(info: TableInfo): KeyCollation[] {
  const pk = info.columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
  const p = parse(info.sql);
  if (!p || pk.length === 0) return [];
  const only = pk.length === 1 ? pk[0] : undefined;
  if (only && !p.withoutRowid && only.type.toUpperCase() === "INTEGER" && !p.columns.get(only.name.toLowerCase())?.pkDesc) return [];
  return pk.map((c) => {
    const col = p.columns.get(c.name.toLowerCase());
    const columnCollation = col?.collation ?? "BINARY";
    return { column: c.name, columnCollation, keyCollation: p.keyCollations.get(c.name.toLowerCase()) ?? columnCollation };
  });
}
