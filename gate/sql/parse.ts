// The only door to sql-parser-cst. Everything else in the gate sees `ParsedStatement`.

import { cstVisitor, parse, type Node, type ParserOptions, type Program, type Statement } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import { type Token, tokenize } from "../../topology/sql-lexer.ts";
import { checkAgreement, checkParenDepth, MAX_PAREN_DEPTH } from "./agreement.ts";
import { readPragma } from "./pragma.ts";

export type { Node, Statement } from "sql-parser-cst";

const OPTIONS: ParserOptions = {
  dialect: "sqlite",
  includeRange: true,
  // Comments too, so agreement.ts can check the parser and SQLite see the same ones.
  includeComments: true,
  paramTypes: ["?", "?nr", "$nr", ":name", "@name", "$name"],
};

/**
 * A placeholder as written: positional (`?`, `?NNN`, `$N`, 0-based index) or named (`:n`, `@n`,
 * `$n`: name without its sigil, and the sigil, since SQLite takes `:n` and `@n` as two parameters).
 */
export type ParamRef = { readonly kind: "index"; readonly index: number } | { readonly kind: "name"; readonly name: string; readonly sigil: ":" | "@" | "$" };

export interface ParsedStatement {
  readonly stmt: Statement;
  /** The whole request text; node ranges index into it. */
  readonly text: string;
  /** The statement's own range in `text` (without the trailing semicolon). */
  readonly range: readonly [number, number];
  /** Each placeholder node (by start offset) → what it refers to. */
  readonly params: ReadonlyMap<number, ParamRef>;
  /**
   * Text ranges every template slice replaces (uncorrelated subqueries, whose results are bound
   * in at execution). Set by the planner, never by the parser.
   */
  readonly replacements?: readonly { readonly start: number; readonly end: number; readonly parts: readonly unknown[] }[];
  /**
   * Text the planner inserts into every template slice that covers it (the exact copies of a
   * write's RETURNING list); unlike `replacements`, they say nothing about subqueries.
   */
  readonly additions?: readonly { readonly start: number; readonly end: number; readonly parts: readonly unknown[] }[];
  /** Set once the planner decided the statement's subqueries run on the shards as written. */
  readonly subqueriesKept?: boolean;
  /** The statement's WITH clause (template parts and a space), for SQL the gate builds for the shards. */
  readonly withPrefix?: readonly unknown[];
  /** Names of the statement's CTEs, once planned as tables. */
  readonly ctes?: readonly string[];
}

export function rangeOf(node: Node): [number, number] {
  const r = node.range;
  if (!r) throw new VtError("INTERNAL", `parser gave no range for ${node.type}`);
  return r;
}

function lineColToOffset(text: string, line: number, col: number): number {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf("\n", off);
    if (nl < 0) break;
    off = nl + 1;
  }
  return off + col - 1;
}

function syntaxError(text: string, e: unknown): VtError {
  const msg = e instanceof Error ? e.message : String(e);
  const loc = /-->\s*\S*?:(\d+):(\d+)/.exec(msg);
  const position = loc ? lineColToOffset(text, Number(loc[1]), Number(loc[2])) : 0;
  const first = msg.split("\n")[0] ?? "syntax error";
  const expected = /Was expecting to see: (.*)/.exec(msg)?.[1];
  const short = expected && expected.length > 160 ? `${expected.slice(0, 160)}…` : expected;
  return new VtError("SYNTAX_ERROR", `${first.replace(/^Syntax Error: /, "syntax error: ")} at position ${position}${short ? ` (expected ${short})` : ""}`, {
    position,
  });
}

/** A stack overflow in the parser or planner: a catalogued refusal, never an INTERNAL error. */
export function tooDeep(e: unknown): VtError | undefined {
  if (!(e instanceof RangeError) || !/call stack/i.test(e.message)) return undefined;
  return unsupportedError(
    "VD2003",
    `the statement nests too deeply for the gate (parentheses at most ${MAX_PAREN_DEPTH} deep; CASE, subqueries and function calls count too)`,
  );
}

/**
 * Parses exactly one statement, read the same way by the parser and by SQLite (agreement.ts).
 * Empty text and several statements are INVALID_ARGUMENT.
 */
export function parseOne(text: string): ParsedStatement {
  const tokens = tokenize(text);
  const pragma = readPragma(text, tokens);
  if (pragma) return { stmt: pragma.stmt, text, range: pragma.range, params: new Map() };
  checkParenDepth(text, tokens);
  const forParser = parserText(text, tokens);
  let program: Program;
  try {
    program = parse(forParser.text, OPTIONS);
  } catch (e) {
    throw tooDeep(e) ?? syntaxError(text, e);
  }
  checkAgreement(text, forParser.tokens, program);
  const stmts = program.statements.filter((s) => s.type !== "empty");
  const stmt = stmts[0];
  if (!stmt) throw new VtError("INVALID_ARGUMENT", "the SQL text holds no statement");
  if (stmts.length > 1) {
    throw new VtError("INVALID_ARGUMENT", "send one statement per request; use /v1/batch for several", {
      position: rangeOf(stmts[1] ?? stmt)[0],
    });
  }
  return { stmt, text, range: rangeOf(stmt), params: collectParams(stmt) };
}

/**
 * The text the parser reads: the user's text with, at the same offsets, what SQLite reads alike
 * but the parser would refuse or misread — \f, \v and U+FEFF in whitespace as spaces, `1.e5` as
 * `1e+5` (`1.e-5` as `1e-05`), and an unterminated block comment ending the text as spaces (the
 * tokens the agreement check compares then count it as whitespace; it ends the text, so nothing
 * can follow it). The statement's ranges are those of the user's text, which is what runs.
 */
function parserText(text: string, tokens: readonly Token[]): { text: string; tokens: readonly Token[] } {
  let out = "";
  let changed = false;
  const outTokens: Token[] = [];
  for (const t of tokens) {
    const raw = text.slice(t.start, t.end);
    let norm = raw;
    let tok = t;
    if (t.kind === "space") norm = raw.replace(/[\f\v\ufeff]/g, " ");
    else if (t.kind === "number") {
      const m = /^(\d+)\.([eE])([+-]?)(\d+)$/.exec(raw);
      if (m) norm = m[3] ? `${m[1]}${m[2]}${m[3]}0${m[4]}` : `${m[1]}${m[2]}+${m[4]}`;
      else if (/^\d[\d_]*\.$/.test(raw)) {
        throw unsupportedError("VD2005", `the number ${raw} (at position ${t.start}) ends with a point, which the gate's parser cannot read; write ${raw}0`, {
          position: t.start,
        });
      }
    } else if (t.kind === "comment" && t.end === text.length && raw.startsWith("/*") && (raw.length < 4 || !raw.endsWith("*/"))) {
      norm = " ".repeat(raw.length);
      tok = { kind: "space", start: t.start, end: t.end };
    }
    if (norm !== raw) changed = true;
    out += norm;
    outTokens.push(tok);
  }
  return changed ? { text: out, tokens: outTokens } : { text, tokens };
}

function collectParams(stmt: Statement): Map<number, ParamRef> {
  const nodes: { start: number; text: string }[] = [];
  cstVisitor({
    parameter: (p) => {
      nodes.push({ start: rangeOf(p)[0], text: p.text });
    },
  })(stmt);
  nodes.sort((a, b) => a.start - b.start);
  const out = new Map<number, ParamRef>();
  // SQLite numbering: a bare `?` takes one more than the largest index assigned so far.
  let maxIndex = 0;
  for (const { start, text } of nodes) {
    let ref: ParamRef;
    if (text === "?") {
      maxIndex += 1;
      ref = { kind: "index", index: maxIndex - 1 };
    } else if (/^[?$]\d+$/.test(text)) {
      const n = Number(text.slice(1));
      if (n < 1 || n > 32766) throw new VtError("INVALID_ARGUMENT", `placeholder ${text} is out of range 1..32766`, { position: start });
      maxIndex = Math.max(maxIndex, n);
      ref = { kind: "index", index: n - 1 };
    } else {
      const sigil = text.charAt(0);
      ref = { kind: "name", name: text.slice(1), sigil: sigil === "@" || sigil === "$" ? sigil : ":" };
    }
    out.set(start, ref);
  }
  return out;
}

/** Visits every node below `node` (including it). */
export function walk(node: Node, fn: (n: Node) => void): void {
  const visit = (n: unknown): void => {
    if (typeof n !== "object" || n === null) return;
    if (Array.isArray(n)) {
      for (const c of n) visit(c);
      return;
    }
    const rec = n as Record<string, unknown>;
    if (typeof rec["type"] !== "string") return;
    fn(n as Node);
    for (const [k, v] of Object.entries(rec)) if (k !== "range" && typeof v === "object") visit(v);
  };
  visit(node);
}

/** An identifier node's name (unquoted), or undefined when the node is not one. */
export function identName(n: Node | undefined): string | undefined {
  return n?.type === "identifier" ? n.name : undefined;
}
