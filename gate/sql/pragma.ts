// PRAGMA statements read from SQLite's own tokens. sql-parser-cst reads a bare name as a PRAGMA's
// argument as a keyword without a position (`PRAGMA table_info(users)`) and refuses a quoted one
// (`PRAGMA table_info("users")`), though SQLite takes both; the shape is small enough to read
// here, token by token, so the gate's reading is SQLite's by construction.

import type { Identifier, Keyword, MemberExpr, NumberLiteral, Statement, StringLiteral } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import { type Token, tokenName } from "../../topology/sql-lexer.ts";

type Name = Identifier | MemberExpr;
/** A name as a PRAGMA's value is a keyword node, as the parser makes it (`name` unquoted). */
type Value = Keyword | StringLiteral | NumberLiteral;

function identifier(text: string, t: Token): Identifier {
  return { type: "identifier", text: text.slice(t.start, t.end), name: tokenName(text, t), range: [t.start, t.end] };
}

function value(text: string, t: Token): Value | undefined {
  const raw = text.slice(t.start, t.end);
  if (t.kind === "word" || t.kind === "quoted") return { type: "keyword", text: raw, name: tokenName(text, t), range: [t.start, t.end] };
  if (t.kind === "string") return { type: "string_literal", text: raw, value: tokenName(text, t), range: [t.start, t.end] };
  if (t.kind === "number" && /^\d+$/.test(raw)) return { type: "number_literal", text: raw, value: Number(raw), range: [t.start, t.end] };
  return undefined;
}

const isName = (t: Token | undefined): t is Token => t !== undefined && (t.kind === "word" || t.kind === "quoted" || t.kind === "string");
const isOp = (text: string, t: Token | undefined, op: string): boolean => t !== undefined && t.kind === "op" && text.slice(t.start, t.end) === op;

/**
 * `PRAGMA [schema.]name`, `PRAGMA [schema.]name(value)` or `PRAGMA [schema.]name = value` (value a
 * name, a string or an unsigned integer), with optional `;` around it, as a parser node; undefined for
 * any other text, which the parser then reads as usual.
 */
export function readPragma(text: string, tokens: readonly Token[]): { stmt: Statement; range: [number, number] } | undefined {
  // Empty statements around it (`;PRAGMA …;;`) are nothing, as for SQLite and any other statement.
  const words = tokens.filter((t) => t.kind !== "space" && t.kind !== "comment");
  const lead = words.findIndex((t) => t.kind !== "semi");
  const all = lead < 0 ? [] : words.slice(lead);
  const semi = all.findIndex((t) => t.kind === "semi");
  const ts = semi < 0 ? all : all.slice(0, semi);
  const kw = ts[0];
  if (kw?.kind !== "word" || text.slice(kw.start, kw.end).toLowerCase() !== "pragma") return undefined;
  let i = 1;
  const first = ts[i];
  if (!isName(first)) return undefined;
  let name: Name = identifier(text, first);
  i++;
  const second = ts[i + 1];
  if (isOp(text, ts[i], ".") && isName(second)) {
    const property = identifier(text, second);
    name = { type: "member_expr", object: name, property, range: [first.start, second.end] };
    i += 2;
  }
  const end = (ts.at(-1) ?? kw).end;
  const range: [number, number] = [kw.start, end];
  const pragmaKw: Keyword<"PRAGMA"> = { type: "keyword", text: text.slice(kw.start, kw.end), name: "PRAGMA", range: [kw.start, kw.end] };
  const rest = ts.slice(i);
  const open = rest[0];
  const arg = rest[1];
  const close = rest[2];
  let stmt: Statement | undefined;
  if (rest.length === 0) stmt = { type: "pragma_stmt", pragmaKw, pragma: name, range };
  else if (rest.length === 3 && open && arg && close && isOp(text, open, "(") && isOp(text, close, ")")) {
    const v = value(text, arg);
    if (v) {
      const args = { type: "paren_expr" as const, expr: v, range: [open.start, close.end] as [number, number] };
      stmt = { type: "pragma_stmt", pragmaKw, pragma: { type: "pragma_func_call", name, args, range: [first.start, close.end] }, range };
    }
  } else if (rest.length === 2 && open && arg && isOp(text, open, "=")) {
    const v = value(text, arg);
    if (v) stmt = { type: "pragma_stmt", pragmaKw, pragma: { type: "pragma_assignment", name, value: v, range: [first.start, arg.end] }, range };
  }
  if (stmt && semi >= 0 && all.slice(semi + 1).some((t) => t.kind !== "semi")) {
    throw new VtError("INVALID_ARGUMENT", "send one statement per request; use /v1/batch for several", { position: all[semi + 1]?.start ?? end });
  }
  return stmt ? { stmt, range } : undefined;
}
