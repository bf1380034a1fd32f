// ORDER BY / LIMIT / DISTINCT over a scatter: each shard sorts and limits its own rows (to
// count + offset), MergeSort merges the sorted streams at the gate and Limit applies the offset.

import type { Node, SelectStmt } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import type { Collation, SortKey } from "../engine/compare.ts";
import { Distinct } from "../engine/distinct.ts";
import { Limit } from "../engine/limit.ts";
import { MergeSort } from "../engine/merge-sort.ts";
import type { Primitive } from "../engine/primitive.ts";
import { Route } from "../engine/route.ts";
import { parseOne, rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate, type Edit, type Part } from "../sql/template.ts";
import { declaredCollation, type SelectItem, unsupported } from "./ast.ts";
import type { Scope } from "./scope.ts";
import { scopedKey } from "./expr-key.ts";
import { clause, itemWidth, limitEdit, positionOf, sortTerms, type RouteBase } from "./select-parts.ts";

export function planMergeSort(ps: ParsedStatement, s: SelectStmt, scope: Scope, items: SelectItem[], base: RouteBase, distinct: boolean): Primitive {
  const exprKeyOf = (n: Node): string => scopedKey(ps, scope, n);
  const terms = sortTerms(s);
  const widths = items.map((i) => itemWidth(scope, i));
  const visible = widths.reduce((a, b) => a + b, 0);
  const hiddenParts: Part[] = [];
  let hiddenCount = 0;
  /** The collation of output column `at`: of the select item (or table column under `*`) it shows. */
  const outputCollation = (at: number): Collation => {
    let start = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const w = widths[i] ?? 1;
      if (item && at < start + w) {
        if (!item.star) return scope.collation(item.expr);
        const c = scope.star(item.node)[at - start];
        return c ? declaredCollation(c.table.info?.sql, c.column, parseOne) : "BINARY";
      }
      start += w;
    }
    return "BINARY";
  };
  const keys: SortKey[] = terms.map((term) => {
    let column = -1;
    const pos = positionOf(ps, term.expr);
    if (pos !== undefined) {
      if (pos < 1 || pos > visible) {
        throw new VtError("INVALID_ARGUMENT", `ORDER BY term ${pos} is out of range (1..${visible})`);
      }
      column = pos - 1;
    } else if (term.expr.type === "identifier") {
      const name = term.expr.name.toLowerCase();
      let at = 0;
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item?.alias?.toLowerCase() === name) {
          column = at;
          break;
        }
        // Columns a `*` expands to are named like aliases (SQLite resolves ORDER BY id to them).
        const under = item?.star && !scope.single ? scope.star(item.node).findIndex((c) => c.column.toLowerCase() === name) : -1;
        if (under >= 0) {
          column = at + under;
          break;
        }
        at += widths[i] ?? 1;
      }
    }
    if (column < 0 && distinct) {
      // Rows are deduplicated on the selected columns only: the term must be one of them.
      const wanted = exprKeyOf(term.expr);
      let at = 0;
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item && !item.star && exprKeyOf(item.expr) === wanted) {
          column = at;
          break;
        }
        const r = item?.star ? scope.resolve(term.expr) : undefined;
        const under = r && item ? scope.star(item.node).findIndex((c) => c.table === r.table && c.column.toLowerCase() === r.column.toLowerCase()) : -1;
        if (under >= 0) {
          column = at + under;
          break;
        }
        at += widths[i] ?? 1;
      }
      if (column < 0) throw unsupported("VD1013", "SELECT DISTINCT ordered by a term that is not selected");
    }
    const collation = term.collation ?? (column >= 0 ? outputCollation(column) : scope.collation(term.expr));
    if (column < 0) {
      column = visible + hiddenCount;
      const [es, ee] = rangeOf(term.expr);
      hiddenParts.push(", ", ...sliceTemplate(ps, es, ee), ` AS _vtg_ord${hiddenCount}`);
      hiddenCount += 1;
    }
    return { column, desc: term.desc, nullsFirst: term.nullsFirst, collation };
  });
  const hidden = hiddenCount;
  const edits: Edit[] = [];
  const selectClause = clause(s, "select_clause");
  if (hiddenParts.length > 0 && selectClause?.columns) {
    const end = rangeOf(selectClause.columns)[1];
    edits.push({ start: end, end, parts: hiddenParts });
  }
  const lim = limitEdit(ps, s);
  if (lim) edits.push(lim.edit);
  const route = new Route({ ...base, template: sliceTemplate(ps, ps.range[0], ps.range[1], edits) });
  let plan: Primitive = keys.length > 0 ? new MergeSort(route, keys, hidden) : route;
  if (distinct)
    plan = new Distinct(
      plan,
      Array.from({ length: visible }, (_, i) => outputCollation(i)),
    );
  if (lim) plan = new Limit(plan, lim.count, lim.offset);
  return plan;
}
