// The tables a SELECT reads (one, or several joined) and how its column references resolve to
// them: which table, which declared column, with what collation and affinity.

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { TableInfo } from "../../contract/tablet-rpc.ts";
import type { Collation } from "../engine/compare.ts";
import { affinityOf, type Affinity } from "../engine/values.ts";
import { parseOne } from "../sql/parse.ts";
import { declaredCollation, kw, splitCollate, type TableRef } from "./ast.ts";
import { own } from "../../topology/own.ts";

export interface ScopeTable {
  readonly ref: TableRef;
  readonly info: TableInfo | undefined;
}

export interface ResolvedColumn {
  readonly table: ScopeTable;
  /** The column as declared (SQLite names a result column by its declared spelling). */
  readonly column: string;
  /** False when the name matches no declared column (rowid, say). */
  readonly declared: boolean;
}

/** A column seen through unary +, CAST and parentheses keeps its collation in SQLite. */
export function throughCasts(expr: Node): Node {
  let e = expr;
  for (;;) {
    if (e.type === "prefix_op_expr" && e.operator === "+") e = e.expr;
    else if (e.type === "cast_expr") e = e.args.expr.expr;
    else if (e.type === "paren_expr" && (e.expr as Node).type !== "list_expr" && (e.expr as Node).type !== "select_stmt") e = e.expr as Node;
    else return e;
  }
}

/**
 * A COLLATE written in an expression, as SQLite carries it up through operators and CAST (left
 * operand first); not through function calls or subqueries.
 */
export function explicitCollation(n: Node): Collation | undefined {
  switch (n.type) {
    case "binary_expr":
      if (kw(n.operator) === "COLLATE") return splitCollate(n).collation ?? "BINARY";
      return explicitCollation(n.left) ?? explicitCollation(n.right);
    case "paren_expr":
      return (n.expr as Node).type === "list_expr" || (n.expr as Node).type === "select_stmt" ? undefined : explicitCollation(n.expr as Node);
    case "prefix_op_expr":
    case "postfix_op_expr":
      return explicitCollation(n.expr);
    case "cast_expr":
      return explicitCollation(n.args.expr.expr);
    default:
      return undefined;
  }
}

export class Scope {
  readonly ks: KeyspaceGraph;
  readonly tables: readonly ScopeTable[];
  /** Columns named in a USING (lower case): unqualified, they name the leftmost table's. */
  readonly using = new Set<string>();
  /** Tables on the right of a LEFT JOIN: their columns read NULL for unmatched rows. */
  readonly nullable = new Set<ScopeTable>();

  constructor(ks: KeyspaceGraph, refs: readonly TableRef[]) {
    this.ks = ks;
    this.tables = refs.map((ref) => ({ ref, info: own(ks.tables, ref.name.toLowerCase()) }));
  }

  get single(): boolean {
    return this.tables.length === 1;
  }

  /** The table a qualifier (`alias.` or `name.` when unaliased) names. */
  byQualifier(q: string): ScopeTable | undefined {
    const l = q.toLowerCase();
    return this.tables.find((t) => t.ref.alias.toLowerCase() === l) ?? this.tables.find((t) => t.ref.alias === t.ref.name && t.ref.name.toLowerCase() === l);
  }

  #find(t: ScopeTable, name: string): string | undefined {
    const l = name.toLowerCase();
    return t.info?.columns.find((c) => c.name.toLowerCase() === l)?.name;
  }

  /** What `col`, `alias.col` or `(col)` refers to; undefined for anything else or no match. */
  resolve(n: Node): ResolvedColumn | undefined {
    if (n.type === "paren_expr" && !Array.isArray(n.expr) && (n.expr as Node).type !== "list_expr" && (n.expr as Node).type !== "select_stmt")
      return this.resolve(n.expr as Node);
    if (n.type === "identifier") {
      let hit: ResolvedColumn | undefined;
      for (const t of this.tables) {
        const c = this.#find(t, n.name);
        if (c === undefined) continue;
        if (!hit) hit = { table: t, column: c, declared: true };
        // As SQLite: a name two tables have is ambiguous unless a USING joined them on it.
        else if (!this.using.has(n.name.toLowerCase())) throw new VtError("INVALID_ARGUMENT", `ambiguous column name: ${n.name}`);
      }
      if (hit) return hit;
      // One table: an undeclared name (rowid) still belongs to it.
      const only = this.tables[0];
      return this.single && only ? { table: only, column: n.name, declared: false } : undefined;
    }
    // `main.t.col`: the keyspace's one schema, then as `t.col`.
    if (
      n.type === "member_expr" &&
      n.object.type === "member_expr" &&
      n.object.object.type === "identifier" &&
      n.object.object.name.toLowerCase() === "main" &&
      n.object.property.type === "identifier" &&
      n.property.type === "identifier"
    ) {
      const t = this.byQualifier(n.object.property.name);
      if (!t || t.ref.alias !== t.ref.name) return undefined;
      const c = this.#find(t, n.property.name);
      return { table: t, column: c ?? n.property.name, declared: c !== undefined };
    }
    if (n.type === "member_expr" && n.object.type === "identifier" && n.property.type === "identifier") {
      const t = this.byQualifier(n.object.name);
      if (!t) return undefined;
      const c = this.#find(t, n.property.name);
      return { table: t, column: c ?? n.property.name, declared: c !== undefined };
    }
    return undefined;
  }

  /** The declared column `name` of table `t`, if it has one. */
  resolveIn(t: ScopeTable, name: string): ResolvedColumn | undefined {
    const c = this.#find(t, name);
    return c === undefined ? undefined : { table: t, column: c, declared: true };
  }

  /** Affinity of a resolved column (BLOB, no affinity, for an undeclared name). */
  affinityOfColumn(c: ResolvedColumn): Affinity {
    const col = c.table.info?.columns.find((x) => x.name === c.column);
    return affinityOf(col?.type ?? "");
  }

  /** True when `name` is a declared column of some table in scope (a column wins over an alias in GROUP BY). */
  isColumn(name: string): boolean {
    return this.tables.some((t) => this.#find(t, name) !== undefined);
  }

  /** Affinity of a plain column reference, else undefined. */
  affinity(n: Node): Affinity | undefined {
    const r = this.resolve(n);
    if (!r?.declared) return undefined;
    const c = r.table.info?.columns.find((x) => x.name === r.column);
    return c ? affinityOf(c.type) : undefined;
  }

  /** Collation SQLite compares `expr` with: explicit COLLATE, else its column's declared one. */
  collation(expr: Node, explicit?: Collation): Collation {
    if (explicit) return explicit;
    const written = explicitCollation(expr);
    if (written) return written;
    const inner = throughCasts(expr);
    const r = this.resolve(inner);
    if (!r) return "BINARY";
    return declaredCollation(r.table.info?.sql, r.column, parseOne);
  }

  /** The columns `*` or `q.*` expands to, in order. */
  star(node: Node): { table: ScopeTable; column: string }[] {
    const of = (t: ScopeTable) => {
      if (!t.info) throw new VtError("UNKNOWN_TABLE", `table ${t.ref.name} does not exist in keyspace ${this.ks.name}`);
      return t.info.columns.map((c) => ({ table: t, column: c.name }));
    };
    if (node.type === "member_expr" && node.object.type === "identifier") {
      const t = this.byQualifier(node.object.name);
      if (!t) throw new VtError("INVALID_ARGUMENT", `no such table: ${node.object.name}`);
      return of(t);
    }
    return this.tables.flatMap(of);
  }
}
