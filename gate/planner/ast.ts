// Small readers over the sql-parser-cst tree used by the planners.

import type { Node } from "sql-parser-cst";
import type { VtError } from "../../contract/errors.ts";
import { type RefusalId, unsupportedError } from "../../topology/refusals.ts";
import { normalizeInt, type SqlValue } from "../../contract/sql-values.ts";
import type { Collation } from "../engine/compare.ts";
import type { ValueExpr } from "../engine/values.ts";
import { rangeOf, walk, type ParsedStatement } from "../sql/parse.ts";

/** UNSUPPORTED with its catalogue id, phrased "<what> is not supported across shards yet". */
export function unsupported(id: RefusalId, what: string): VtError {
  return unsupportedError(id, `${what} is not supported across shards yet`);
}

export function textOf(ps: ParsedStatement, n: Node): string {
  const [s, e] = rangeOf(n);
  return ps.text.slice(s, e);
}

/** Whitespace-collapsed text, for matching an expression against another written the same way. */
export function exprKey(ps: ParsedStatement, n: Node): string {
  return normalizedText(textOf(ps, n)).trim();
}

/** SQL text with whitespace runs collapsed to one space and everything but string literals lower-cased ('a' != 'A'). */
export function normalizedText(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === "'") {
      let j = i + 1;
      while (j < text.length && !(text[j] === "'" && text[j + 1] !== "'")) j += text[j] === "'" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (/\s/.test(ch)) {
      while (i < text.length && /\s/.test(text[i] as string)) i++;
      out += " ";
    } else {
      out += ch.toLowerCase();
      i++;
    }
  }
  return out;
}

export function kw(n: unknown): string {
  if (typeof n === "string") return n.toUpperCase();
  if (Array.isArray(n)) return n.map(kw).join(" ");
  if (typeof n === "object" && n !== null && "text" in n) return String((n as { text: unknown }).text).toUpperCase();
  return "";
}

/** A table named in FROM / INTO / UPDATE: its name and the alias it goes by. */
export interface TableRef {
  readonly name: string;
  readonly alias: string;
}

export function tableRef(n: Node): TableRef {
  let node = n;
  let alias: string | undefined;
  if (node.type === "alias") {
    alias = node.alias.type === "identifier" ? node.alias.name : undefined;
    node = node.expr as Node;
  }
  if (node.type === "member_expr" && node.object.type === "identifier" && node.property.type === "identifier") {
    if (node.object.name.toLowerCase() !== "main")
      throw unsupportedError("VD1050", `schema "${node.object.name}": only the keyspace's own tables can be named`);
    node = node.property;
  }
  if (node.type !== "identifier") throw unsupported("VD1051", `a ${node.type.replaceAll("_", " ")} in place of a table`);
  return { name: node.name, alias: alias ?? node.name };
}

/** Column name of `col` or `alias.col` when `n` refers to a column of `t`. */
export function columnOf(n: Node, t: TableRef): string | undefined {
  if (n.type === "identifier") return n.name;
  if (n.type === "member_expr" && n.object.type === "identifier" && n.property.type === "identifier") {
    const q = n.object.name.toLowerCase();
    if (q === t.alias.toLowerCase() || q === t.name.toLowerCase()) return n.property.name;
  }
  // `main.t.col`, when `t` goes by its own name.
  if (n.type === "member_expr" && n.object.type === "member_expr" && n.object.object.type === "identifier" && n.object.object.name.toLowerCase() === "main") {
    const tn = n.object.property;
    if (tn.type === "identifier" && n.property.type === "identifier" && t.alias === t.name && tn.name.toLowerCase() === t.name.toLowerCase())
      return n.property.name;
  }
  if (n.type === "paren_expr" && !Array.isArray(n.expr) && (n.expr as Node).type !== "list_expr") return columnOf(n.expr as Node, t);
  return undefined;
}

/** A literal or placeholder, or undefined when `n` is anything else. */
export function valueExprOf(ps: ParsedStatement, n: Node): ValueExpr | undefined {
  switch (n.type) {
    case "parameter": {
      const ref = ps.params.get(rangeOf(n)[0]);
      return ref ? { param: ref } : undefined;
    }
    case "number_literal":
      return { literal: numberLiteral(n.text) };
    case "string_literal":
      return { literal: n.value };
    case "blob_literal":
      return { literal: new Uint8Array(n.value) };
    case "null_literal":
      return { literal: null };
    case "boolean_literal":
      return { literal: n.value ? 1 : 0 };
    case "prefix_op_expr": {
      if (n.operator !== "-" && n.operator !== "+") return undefined;
      // SQLite reads -9223372036854775808 as the smallest INTEGER, not as minus a REAL.
      if (n.operator === "-" && n.expr.type === "number_literal" && /^\d+$/.test(n.expr.text) && BigInt(n.expr.text) === 2n ** 63n)
        return { literal: -(2n ** 63n) };
      const inner = n.expr.type === "number_literal" ? numberLiteral(n.expr.text) : undefined;
      if (inner === undefined || inner === null) return undefined;
      if (n.operator === "+") return { literal: inner };
      return { literal: typeof inner === "bigint" ? normalizeInt(-inner) : -(inner as number) };
    }
    case "paren_expr":
      return (n.expr as Node).type === "list_expr" ? undefined : valueExprOf(ps, n.expr as Node);
    default:
      return undefined;
  }
}

/**
 * True when `n` is a literal SQLite reads as a REAL: a number written with a point or an
 * exponent, or an integer too large for 64 bits (optionally signed or parenthesized). Its value
 * here is a JavaScript number, which for 1.0 is the integer 1: SQLite keeps the REAL, and a
 * TEXT column stores its text ('1.0'), so such a value must not stand for the integer.
 */
export function isRealLiteral(n: Node): boolean {
  if (n.type === "number_literal") {
    if (/^0x/i.test(n.text)) return false;
    return /[.eE]/.test(n.text) || BigInt(n.text) > 2n ** 63n - 1n;
  }
  // SQLite reads -9223372036854775808 as the smallest INTEGER, not as minus a REAL.
  if (n.type === "prefix_op_expr" && n.operator === "-" && n.expr.type === "number_literal" && /^\d+$/.test(n.expr.text))
    return BigInt(n.expr.text) > 2n ** 63n;
  if (n.type === "prefix_op_expr" && (n.operator === "-" || n.operator === "+")) return isRealLiteral(n.expr);
  if (n.type === "paren_expr" && (n.expr as Node).type !== "list_expr") return isRealLiteral(n.expr as Node);
  return false;
}

function numberLiteral(text: string): SqlValue {
  if (/^\d+$/.test(text)) {
    const b = BigInt(text);
    return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b <= 2n ** 63n - 1n ? b : Number(text);
  }
  if (/^0x[0-9a-f]+$/i.test(text)) return normalizeInt(BigInt.asIntN(64, BigInt(text)));
  return Number(text);
}

/** The AND-ed conjuncts of a WHERE expression. */
export function conjuncts(n: Node): Node[] {
  if (n.type === "binary_expr" && kw(n.operator) === "AND") return [...conjuncts(n.left), ...conjuncts(n.right)];
  if (n.type === "paren_expr" && (n.expr as Node).type !== "list_expr" && (n.expr as Node).type !== "select_stmt") {
    return conjuncts(n.expr as Node);
  }
  return [n];
}

/** True when a SELECT (or any statement) appears below `n` (not counting `n` itself). */
export function hasSubquery(n: Node): boolean {
  let found = false;
  walk(n, (x) => {
    if (x !== n && (x.type === "select_stmt" || x.type === "compound_select_stmt")) found = true;
  });
  return found;
}

export function hasWindow(n: Node): boolean {
  let found = false;
  walk(n, (x) => {
    if (x.type === "func_call" && x.over) found = true;
  });
  return found;
}

const AGGREGATES = new Set(["count", "sum", "total", "min", "max", "avg", "group_concat", "string_agg", "json_group_array", "json_group_object"]);

export function funcName(n: Node): string | undefined {
  return n.type === "func_call" && n.name.type === "identifier" ? n.name.name.toLowerCase() : undefined;
}

function argCount(n: Node): number {
  if (n.type !== "func_call" || !n.args) return 0;
  const fa = n.args.expr;
  return fa.type === "func_args" ? fa.args.items.length : 0;
}

/** An aggregate call (min/max with one argument only: with several they are scalar functions). */
export function isAggregateCall(n: Node): boolean {
  const name = funcName(n);
  if (name === undefined || !AGGREGATES.has(name) || (n.type === "func_call" && n.over)) return false;
  if ((name === "min" || name === "max") && argCount(n) !== 1) return false;
  return true;
}

/** True when `n` holds an aggregate call of its own (aggregates inside a subquery are the subquery's). */
export function containsAggregate(n: Node): boolean {
  const visit = (x: unknown, top: boolean): boolean => {
    if (typeof x !== "object" || x === null) return false;
    if (Array.isArray(x)) return x.some((c) => visit(c, false));
    const node = x as Node;
    if (typeof (node as { type?: unknown }).type !== "string") return false;
    if (!top && (node.type === "select_stmt" || node.type === "compound_select_stmt")) return false;
    if (isAggregateCall(node)) return true;
    return Object.entries(node).some(([k, v]) => k !== "range" && typeof v === "object" && visit(v, false));
  };
  return visit(n, true);
}

/** Collation named by a trailing COLLATE in an ORDER BY term, and the term without it. */
export function splitCollate(n: Node): { expr: Node; collation: Collation | undefined } {
  if (n.type === "binary_expr" && kw(n.operator) === "COLLATE" && n.right.type === "identifier") {
    const c = n.right.name.toUpperCase();
    if (c !== "BINARY" && c !== "NOCASE" && c !== "RTRIM") throw unsupportedError("VD1052", `collation ${c}`);
    return { expr: n.left, collation: c };
  }
  return { expr: n, collation: undefined };
}

/** Declared collation of each column, read from the table's CREATE TABLE text. */
const collationCache = new Map<string, Map<string, Collation>>();

/** Declared collation of a column, from the table's CREATE TABLE text (parsed once per text). */
export function declaredCollation(createSql: string | undefined, column: string, parse: (sql: string) => ParsedStatement): Collation {
  if (!createSql) return "BINARY";
  let byColumn = collationCache.get(createSql);
  if (!byColumn) {
    byColumn = readCollations(createSql, parse);
    if (collationCache.size > 1000) collationCache.clear();
    collationCache.set(createSql, byColumn);
  }
  return byColumn.get(column.toLowerCase()) ?? "BINARY";
}

function readCollations(createSql: string, parse: (sql: string) => ParsedStatement): Map<string, Collation> {
  const out = new Map<string, Collation>();
  let ps: ParsedStatement;
  try {
    ps = parse(createSql);
  } catch {
    return out;
  }
  const st = ps.stmt;
  if (st.type !== "create_table_stmt" || !st.columns) return out;
  for (const item of st.columns.expr.items) {
    if (item.type !== "column_definition") continue;
    for (const c of item.constraints) {
      const inner = c.type === "constraint" ? c.constraint : c;
      if (inner.type === "constraint_collate" && inner.collation.type === "identifier") {
        const name = inner.collation.name.toUpperCase();
        out.set(item.name.name.toLowerCase(), name === "NOCASE" || name === "RTRIM" ? name : "BINARY");
      }
    }
  }
  return out;
}

/** One ORDER BY term: the expression without a trailing COLLATE, its direction, NULLs placement and explicit collation. */
export interface OrderTerm {
  readonly expr: Node;
  readonly desc: boolean;
  readonly nullsFirst: boolean;
  readonly collation: Collation | undefined;
}

/** The terms of an ORDER BY clause (none without one). NULLs come first ascending, last descending, unless written. */
export function orderTerms(ob: Node | undefined): OrderTerm[] {
  if (ob?.type !== "order_by_clause") return [];
  return (ob.specifications.items as Node[]).map((spec) => {
    let expr = spec;
    let desc = false;
    let nulls: string | undefined;
    if (spec.type === "sort_specification") {
      expr = spec.expr;
      desc = spec.direction?.type === "sort_direction_desc";
      nulls = spec.nullHandlingKw ? kw(spec.nullHandlingKw[1]) : undefined;
    }
    const { expr: bare, collation } = splitCollate(expr);
    return { expr: bare, desc, nullsFirst: nulls === undefined ? !desc : nulls === "FIRST", collation };
  });
}

/** LIMIT / OFFSET of a limit clause as values (numbers or placeholders; anything else is UNSUPPORTED). */
export function limitValues(ps: ParsedStatement, lc: Extract<Node, { type: "limit_clause" }>): { count: ValueExpr | null; offset: ValueExpr | null } {
  const count = lc.count && lc.count.type !== "limit_all" ? valueExprOf(ps, lc.count) : undefined;
  const offset = lc.offset ? valueExprOf(ps, lc.offset) : undefined;
  if ((lc.count && lc.count.type !== "limit_all" && !count) || (lc.offset && !offset)) {
    throw unsupported("VD1053", "LIMIT / OFFSET expressions other than numbers and placeholders");
  }
  return { count: count ?? null, offset: offset ?? null };
}

/** A result column of a SELECT: the item as written, its expression, its alias, and whether it is `*` / `t.*`. */
export interface SelectItem {
  readonly node: Node;
  readonly expr: Node;
  readonly alias: string | undefined;
  readonly star: boolean;
}

export function selectItems(s: Extract<Node, { type: "select_stmt" }>): SelectItem[] {
  const sc = s.clauses.find((c) => c.type === "select_clause");
  const cols = sc?.type === "select_clause" ? sc.columns : undefined;
  if (!cols) return [];
  return (cols.items as Node[]).map((node) => {
    if (node.type === "alias") {
      return { node, expr: node.expr as Node, alias: node.alias.type === "identifier" ? node.alias.name : undefined, star: false };
    }
    const star = node.type === "all_columns" || (node.type === "member_expr" && node.property.type === "all_columns");
    return { node, expr: node, alias: undefined, star };
  });
}
