// The gate checks the statement sql-parser-cst read, but the tablet runs the text as SQLite reads
// it. This file makes sure the two readings are the same, token for token: every comment, string,
// name, number, blob and placeholder the parser saw is exactly one SQLite token of that kind at
// the same place, and SQLite sees no such token the parser did not. So nothing can hide from the
// gate's checks in text that one of them takes for a comment (`#` is a comment for the parser and
// a parameter for SQLite), a string, whitespace (U+00A0 is an identifier character for SQLite)
// or a longer word. It also bounds nesting, so deep statements get a catalogued error, never a
// stack overflow.

import type { Node, Program } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import type { Token, TokenKind } from "../../topology/sql-lexer.ts";

/** Parentheses nested deeper than this are refused before parsing (the parser recurses per level). */
export const MAX_PAREN_DEPTH = 100;
/**
 * Syntax trees deeper than this are refused after parsing, so no recursion in the planner runs
 * out of stack. Durable Object SQLite refuses expressions nested more than 100 deep anyway
 * (SQLITE_MAX_EXPR_DEPTH; stock SQLite allows 1000), so this bound refuses nothing it would run.
 */
export const MAX_TREE_DEPTH = 1100;

/** Which SQLite token kinds each leaf node type of the parser may be. */
const LEAF_KINDS: Readonly<Record<string, readonly TokenKind[]>> = {
  keyword: ["word"],
  // SQLite also takes a '…' string as a name where a name is expected (`AS 'x'`).
  identifier: ["word", "quoted", "string"],
  string_literal: ["string"],
  number_literal: ["number"],
  blob_literal: ["blob"],
  parameter: ["variable"],
  all_columns: ["op"],
  line_comment: ["comment"],
  block_comment: ["comment"],
};

/** SQLite tokens the parser must have seen as a leaf of its tree (operators are not leaves). */
const MUST_MATCH: ReadonlySet<TokenKind> = new Set(["comment", "string", "word", "quoted", "blob", "number", "variable"]);

function quote(text: string, t: { start: number; end: number }): string {
  const s = text.slice(t.start, Math.min(t.end, t.start + 40));
  return JSON.stringify(t.end - t.start > 40 ? `${s}…` : s);
}

/** Refuses parentheses nested deeper than MAX_PAREN_DEPTH (run before parsing). */
export function checkParenDepth(text: string, tokens: readonly Token[]): void {
  let depth = 0;
  for (const t of tokens) {
    if (t.kind !== "op" || t.end - t.start !== 1) continue;
    const c = text.charCodeAt(t.start);
    if (c === 40) {
      depth++;
      if (depth > MAX_PAREN_DEPTH) {
        throw unsupportedError(
          "VD2001",
          `parentheses nested more than ${MAX_PAREN_DEPTH} deep (at position ${t.start}); the gate parses at most ${MAX_PAREN_DEPTH} levels`,
          {
            position: t.start,
          },
        );
      }
    } else if (c === 41) depth = Math.max(0, depth - 1);
  }
}

interface Leaf {
  readonly type: string;
  readonly start: number;
  readonly end: number;
}

/**
 * The parser's leaves (nodes without child nodes) and comments, found without recursion, and
 * the tree's depth. Refuses a tree deeper than MAX_TREE_DEPTH.
 */
function leavesOf(program: Program): Leaf[] {
  const out: Leaf[] = [];
  const stack: [unknown, number][] = [[program, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [value, depth] = top;
    if (Array.isArray(value)) {
      for (const v of value) stack.push([v, depth]);
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    const rec = value as Record<string, unknown>;
    if (typeof rec["type"] !== "string") continue;
    if (depth > MAX_TREE_DEPTH) {
      const r = (value as Node).range;
      throw unsupportedError(
        "VD2002",
        `the statement nests more than ${MAX_TREE_DEPTH} levels deep; the gate accepts at most ${MAX_TREE_DEPTH} (Durable Object SQLite refuses expressions nested more than 100 deep)`,
        {
          position: r?.[0] ?? 0,
        },
      );
    }
    let children = 0;
    for (const [k, v] of Object.entries(rec)) {
      if (k === "range" || typeof v !== "object" || v === null) continue;
      if (k !== "leading" && k !== "trailing") children++;
      stack.push([v, depth + 1]);
    }
    const r = (value as Node).range;
    // Some leaves carry values as objects (a blob's bytes): their type says they are leaves.
    if ((children === 0 || rec["type"] in LEAF_KINDS) && r && r[1] > r[0]) out.push({ type: rec["type"], start: r[0], end: r[1] });
  }
  return out;
}

/**
 * Throws unless SQLite's tokens of `text` and the parser's tree agree (see the file comment).
 * `program` must come from a parse with comments and ranges included.
 */
export function checkAgreement(text: string, tokens: readonly Token[], program: Program): void {
  const byStart = new Map<number, Token>();
  for (const t of tokens) {
    if (t.kind === "illegal") {
      throw new VtError("SYNTAX_ERROR", `syntax error: SQLite cannot read ${quote(text, t)} at position ${t.start}`, { position: t.start });
    }
    if (t.kind !== "space") byStart.set(t.start, t);
  }
  const matched = new Set<number>();
  for (const leaf of leavesOf(program)) {
    const t = byStart.get(leaf.start);
    const kinds = LEAF_KINDS[leaf.type];
    const ok = t !== undefined && t.end === leaf.end && (kinds === undefined ? t.kind !== "comment" : kinds.includes(t.kind));
    if (!ok) {
      const sqlite = t ? `${t.kind} ${quote(text, t)}` : "something else";
      throw unsupportedError(
        "VD2000",
        `the text at position ${leaf.start} reads differently to the gate's parser (${leaf.type.replace("_", " ")} ${quote(text, leaf)}) and to SQLite (${sqlite}); rewrite it plainly`,
        {
          position: leaf.start,
        },
      );
    }
    matched.add(leaf.start);
  }
  for (const t of byStart.values()) {
    if (!MUST_MATCH.has(t.kind) || matched.has(t.start)) continue;
    throw unsupportedError(
      "VD2000",
      `the text at position ${t.start} reads differently to the gate's parser and to SQLite (${t.kind} ${quote(text, t)}), which the parser does not see as one; rewrite it plainly`,
      {
        position: t.start,
      },
    );
  }
}
