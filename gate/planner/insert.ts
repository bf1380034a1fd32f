// INSERT on a sharded keyspace: one table, rows placed by its primary vindex (values, INSERT … SELECT,
// upserts, lookups, sequences).

import type { Node } from "sql-parser-cst";
import { VtError } from "../../contract/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { autoPart, Insert, type InsertRow } from "../engine/insert.ts";
import { InsertSelect } from "../engine/insert-select.ts";
import type { LookupTable } from "../engine/lookup.ts";
import { affinityOf, type ValueExpr } from "../engine/values.ts";
import { tableVSchema } from "../../topology/vschema.ts";
import { quoteIdent } from "../../contract/sql-values.ts";
import type { Primitive } from "../engine/primitive.ts";
import { Route } from "../engine/route.ts";
import { rangeOf, type ParsedStatement } from "../sql/parse.ts";
import { sliceTemplate, type Edit } from "../sql/template.ts";
import { hasSubquery, isRealLiteral, kw, tableRef, unsupported, valueExprOf } from "./ast.ts";
import { tableRouting, type TableRouting } from "./routing.ts";
import { rowidColumn, uniqueConstraints } from "./unique-keys.ts";
import type { IdSource } from "../engine/sequence.ts";
import type { TableInfo } from "../../contract/tablet-rpc.ts";
import { exactNumberColumns } from "./insert-select-values.ts";
import { planSelect } from "./select.ts";
import { own } from "../../topology/own.ts";
import { checkNothingTargets, conflictTargetColumns, ignoredLocalKeys, planUpsert, upsertUpdate } from "./upsert.ts";
import { nullVindexInSqlite } from "./null-vindex.ts";

import { planReferenceWrite } from "./reference-write.ts";

export function planInsert(ps: ParsedStatement, ks: KeyspaceGraph): Primitive {
  const s = ps.stmt;
  if (s.type !== "insert_stmt") throw new VtError("INTERNAL", `planInsert got ${s.type}`);
  const ic = s.clauses.find((c) => c.type === "insert_clause");
  if (ic?.type !== "insert_clause") throw new VtError("INTERNAL", "INSERT without insert clause");
  const t = tableRef(ic.table as Node);
  const routing = tableRouting(ks, t.name);
  const full = sliceTemplate(ps, ps.range[0], ps.range[1]);
  if (routing.kind === "reference") return planReferenceWrite(ps, ks, t.name, "insert");
  if (routing.kind === "unsharded") return new Route({ opcode: "unsharded", table: t.name, template: full, kind: "insert" });
  const source = s.clauses.find((c) => c.type === "select_stmt" || c.type === "compound_select_stmt") as Node | undefined;
  if (hasSubquery(source ? { ...s, clauses: s.clauses.filter((c) => c !== source) } : s))
    throw unsupported("VD1032", "subqueries in INSERT (other than INSERT … SELECT)");
  const info = own(ks.tables, t.name.toLowerCase());
  if (!info) throw new VtError("UNKNOWN_TABLE", `table ${t.name} does not exist in keyspace ${ks.name}`);
  const vcol = (routing.column ?? "").toLowerCase();
  const cols = ic.columns ? (ic.columns.expr.items as Node[]).map((c) => (c.type === "identifier" ? c.name : "")) : info.columns.map((c) => c.name);
  const at = cols.findIndex((c) => c.toLowerCase() === vcol);
  const ai = autoIncrement(ks, t.name, info, vcol);
  const aiCol = ai?.column.toLowerCase();
  const autoAt = ai ? cols.findIndex((c) => c.toLowerCase() === aiCol) : -1;
  const auto = ai ? { ...ai, vindex: aiCol === vcol, resolves: ai.resolves || resolvesConflicts(s) } : undefined;
  const vindexDeclared = routing.column ?? "";
  if (at < 0 && !auto?.vindex) {
    if (!source && nullVindexInSqlite(s, info, vindexDeclared, false) === "fails") throw notNullFailed(t.name, vindexDeclared, "VD2604");
    throw unsupported("VD2604", `INSERT into ${t.name} without its vindex column ${routing.column} (it decides the shard; give it, or configure a sequence)`);
  }
  const lookups = routing.lookups ?? [];
  checkKeyspaceKeys(routing, t.name, cols, aiCol);
  const replace = lookups.length > 0 && (kw(ic.insertKw) === "REPLACE" || (ic.orAction !== undefined && kw(ic.orAction.actionKw) === "REPLACE"));
  const update = upsertUpdate(s, t.name, lookups);
  checkNothingTargets(s, t.name, info, lookups);
  const ignore = ignoredLookups(s, t.name, lookups);
  const replacesByVindex = replace && uniqueConstraints(info.sql).some((k) => k.columns.length === 1 && k.columns[0]?.toLowerCase() === vcol);
  /** Where each lookup's columns are in the column list (-1: not given; "auto": the sequence's column). */
  const lookupAt = lookups.map((l) =>
    (l.system ? l.system.columns.map((c) => c.name) : [l.column]).map((name): number | "auto" =>
      ai && name.toLowerCase() === aiCol ? "auto" : cols.findIndex((c) => c.toLowerCase() === name.toLowerCase()),
    ),
  );
  /**
   * A value that places the row (its vindex or lookup column) must be the value SQLite stores: a
   * REAL literal in a TEXT column is stored as its text ('1.0'), not as the integer JavaScript
   * reads (ast.ts isRealLiteral), so it is refused rather than placed where no query finds it.
   */
  const placing = (n: Node, column: string): ValueExpr | undefined => {
    const declared = info.columns.find((c) => c.name.toLowerCase() === column.toLowerCase());
    if (isRealLiteral(n) && affinityOf(declared?.type ?? "") === "TEXT") {
      throw unsupportedError(
        "VD2602",
        `a REAL literal (${ps.text.slice(...rangeOf(n))}) as the value of TEXT column ${column}, which places the row by a vindex, is not supported across shards: SQLite stores the REAL's text, which the gate does not compute; write it as a string`,
      );
    }
    return valueExprOf(ps, n);
  };
  /** With the auto-increment column omitted, it is added first to the column list. */
  const addAutoColumn = (): Edit[] => {
    if (!ai || autoAt >= 0) return [];
    if (!ic.columns) throw new VtError("INTERNAL", "INSERT without a column list lacks a column");
    const open = rangeOf(ic.columns)[0] + 1;
    return [{ start: open, end: open, parts: [`${quoteIdent(ai.column)}, `] }];
  };
  /** The ON CONFLICT DO UPDATE plan, when there is one; the statement's text up to `headEnd` comes before its rows. */
  const upsertUpTo = (headEnd: number) =>
    update && routing.column
      ? planUpsert({
          ps,
          update,
          table: t.name,
          info,
          vindexColumn: routing.column,
          lookups,
          cols,
          head: sliceTemplate(ps, ps.range[0], headEnd, addAutoColumn()),
        })
      : undefined;
  /** A VALUES row's vindex value, which must be a literal or a placeholder. */
  const vindexValueOf = (items: readonly Node[]): ValueExpr => {
    const vnode = items[at];
    const v = vnode ? placing(vnode, routing.column ?? "") : undefined;
    if (!v) throw unsupported("VD1037", `an expression as the vindex value of ${routing.column} (use a literal or a placeholder)`);
    return v;
  };
  const checkRoutable = (): void => {
    if (routing.routable === false) {
      throw unsupported(
        "VD1034",
        `INSERT into ${t.name}: its vindex column ${routing.column} has a non-BINARY collation, so equal values could land on different shards`,
      );
    }
  };
  if (source) {
    if (!routing.vindex) throw new VtError("INTERNAL", "sharded table without a vindex");
    checkRoutable();
    checkUpsert(s, vcol, routing.column);
    const [start, end] = rangeOf(source);
    const select = planSelect({ ...ps, stmt: source as ParsedStatement["stmt"], range: [start, end] }, ks);
    // TEXT columns that place the row, with whether the SELECT's numbers there are surely INTEGERs (see placing()).
    const exact = exactNumberColumns(ps, source, ks);
    const textPlacing = [...new Set([at, ...lookupAt.flat()])].flatMap((i) => {
      if (typeof i !== "number" || i < 0) return [];
      const column = cols[i] ?? "";
      const declared = info.columns.find((c) => c.name.toLowerCase() === column.toLowerCase());
      return affinityOf(declared?.type ?? "") === "TEXT" ? [{ at: i, column, exact: exact?.[i] === true }] : [];
    });
    const up = upsertUpTo(start);
    // Keys holding the vindex column that the upsert targets, or whose taken values the statement skips (as for VALUES rows).
    const skipped = !up && lookups.length > 0 && routing.column ? ignoredLocalKeys(ps, s, t.name, info, routing.column, cols).keys : [];
    const localAt = (keys: readonly (readonly string[])[]) =>
      keys.map((k) => k.map((c) => (c === vcol ? ("vindex" as const) : cols.findIndex((x) => x.toLowerCase() === c))));
    const upsert = up
      ? { upsert: up.spec, localAt: localAt(up.spec.localKeys) }
      : skipped.length > 0
        ? { ignoreLocal: skipped, localAt: localAt(skipped) }
        : {};
    return new InsertSelect(select, {
      ...upsert,
      table: t.name,
      vindex: routing.vindex,
      prefix: [...sliceTemplate(ps, ps.range[0], start, addAutoColumn()), "VALUES "],
      suffix: [" ", ...sliceTemplate(ps, end, ps.range[1])],
      affinity: routing.affinity ?? "BLOB",
      width: cols.length,
      vindexColumn: at,
      ...nullVindexSpec(s, info, vindexDeclared),
      ...(textPlacing.length > 0 ? { textPlacing } : {}),
      ...(auto ? { auto: { ...auto, at: autoAt } } : {}),
      ...(lookups.length > 0
        ? { lookups: lookups.map((l, i) => ({ table: l, at: lookupAt[i] ?? [] })), vindexColumnName: routing.column ?? "", ignore, replace, replacesByVindex }
        : {}),
    });
  }
  checkUpsert(s, vcol, routing.column);
  const values = s.clauses.find((c) => c.type === "values_clause");
  if (values?.type !== "values_clause") {
    if (!auto?.vindex && s.clauses.some((c) => c.type === "default_values") && nullVindexInSqlite(s, info, vindexDeclared, false) === "fails") {
      throw notNullFailed(t.name, vindexDeclared, "VD2607");
    }
    throw unsupported("VD2607", `INSERT into ${t.name} without VALUES or SELECT (DEFAULT VALUES gives no value for its vindex column ${routing.column})`);
  }
  const rowNodes = values.values.items as Node[];
  const up = upsertUpTo(rangeOf(values)[0]);
  const skipped = lookups.length > 0 && routing.column ? ignoredLocalKeys(ps, s, t.name, info, routing.column, cols) : undefined;
  const rows: InsertRow[] = rowNodes.map((row, i) => {
    if (row.type !== "paren_expr" || (row.expr as Node).type !== "list_expr") throw unsupported("VD1035", "this VALUES form");
    const list = row.expr as Extract<Node, { type: "list_expr" }>;
    const items = list.items as Node[];
    if (items.length !== cols.length) {
      throw new VtError("INVALID_ARGUMENT", `VALUES row ${i + 1} has ${items.length} values for ${cols.length} columns`);
    }
    const [rs, re] = rangeOf(row);
    const lookupValues = lookups.map((l, k) =>
      (lookupAt[k] ?? []).map((at): ValueExpr | "auto" => {
        if (at === "auto") return "auto";
        const n = items[at];
        if (!n) return { literal: null };
        const v = placing(n, cols[at] ?? l.column);
        if (!v) {
          if (l.system)
            throw unsupported(
              "VD2403",
              `an expression as the value of ${cols[at] ?? ""}, which is in keyspace-wide unique key (${l.column}) of ${t.name} (use a literal or a placeholder, or opt out with "unique": "per_shard")`,
            );
          throw unsupported("VD1036", `an expression as the value of ${l.column}, which has lookup vindex ${l.name} (use a literal or a placeholder)`);
        }
        return v;
      }),
    );
    const local = up ? up.localValues(items) : skipped && skipped.keys.length > 0 ? skipped.values(items) : undefined;
    const withLookups = lookups.length > 0 ? { lookupValues, ...(local ? { localValues: local } : {}) } : {};
    if (!auto) return { parts: sliceTemplate(ps, rs, re), vindexValue: vindexValueOf(items), ...withLookups };
    // The auto-increment value is bound at execution: the written one, or the sequence's next id.
    let autoValue: ValueExpr | "omitted" | undefined = "omitted";
    let edit: Edit = { start: rs + 1, end: rs + 1, parts: [autoPart(i), ", "] };
    const anode = items[autoAt];
    if (anode) {
      const v = placing(anode, ai?.column ?? "");
      autoValue = v;
      edit = v ? { start: rangeOf(anode)[0], end: rangeOf(anode)[1], parts: [autoPart(i)] } : { start: rs, end: rs, parts: [] };
    }
    let vindexValue: ValueExpr = { literal: null };
    if (!auto.vindex) {
      vindexValue = vindexValueOf(items);
    } else if (anode && !autoValue) {
      throw unsupported(
        "VD1038",
        `an expression as the vindex value of ${routing.column} (use a literal, a placeholder, NULL, or leave it out for the sequence)`,
      );
    }
    return {
      parts: sliceTemplate(ps, rs, re, edit.parts.length > 0 ? [edit] : []),
      vindexValue,
      ...(autoValue !== undefined ? { autoValue } : {}),
      ...withLookups,
    };
  });
  const first = rowNodes[0];
  const last = rowNodes[rowNodes.length - 1];
  if (!first || !last || !routing.vindex) throw new VtError("INTERNAL", "INSERT without rows");
  const prefix = sliceTemplate(ps, ps.range[0], rangeOf(first)[0], addAutoColumn());
  const suffix = sliceTemplate(ps, rangeOf(last)[1], ps.range[1]);
  checkRoutable();
  return new Insert(
    t.name,
    routing.vindex,
    prefix,
    rows,
    suffix,
    routing.affinity ?? "BLOB",
    auto,
    lookups,
    routing.column,
    ignore,
    replace,
    replacesByVindex,
    up?.spec,
    skipped?.keys,
    nullVindexIn(s, info, vindexDeclared) ?? "unsupported",
  );
}

function nullVindexSpec(s: Extract<Node, { type: "insert_stmt" }>, info: TableInfo, column: string): { nullVindex?: "constraint" | "skip" } {
  const v = nullVindexIn(s, info, column);
  return v ? { nullVindex: v } : {};
}

/** What an INSERT does with a row whose vindex value is NULL, when SQLite itself decides it (null-vindex.ts). */
function nullVindexIn(s: Extract<Node, { type: "insert_stmt" }>, info: TableInfo, column: string): "constraint" | "skip" | undefined {
  const v = nullVindexInSqlite(s, info, column, true);
  return v === "fails" ? "constraint" : v === "skips" ? "skip" : undefined;
}

/** SQLite's own NOT NULL failure for a row that leaves the vindex column without a value (null-vindex.ts), with the id of the refusal it replaces. */
function notNullFailed(table: string, column: string, id: "VD2604" | "VD2607"): VtError {
  return new VtError("CONSTRAINT", `NOT NULL constraint failed: ${table}.${column}`, { id });
}

/**
 * The column an INSERT fills with fresh ids when it is omitted or NULL: the vschema's
 * `auto_increment` (its sequence table), else the table's INTEGER PRIMARY KEY (its automatic
 * sequence), unless that key is not the vindex column and the table opted into per-shard
 * uniqueness (each shard numbers its own rows then, as SQLite on that shard would).
 */
function autoIncrement(
  ks: KeyspaceGraph,
  table: string,
  info: TableInfo,
  vcol: string,
): { source: IdSource; column: string; keyed: boolean; resolves: boolean } | undefined {
  const entry = tableVSchema(ks.vschema, table);
  const configured = entry?.auto_increment;
  const keys = uniqueConstraints(info.sql);
  const key = (column: string) => keys.find((k) => k.columns.length === 1 && k.columns[0]?.toLowerCase() === column.toLowerCase());
  if (configured) {
    const col = info.columns.find((c) => c.name.toLowerCase() === configured.column.toLowerCase());
    if (!col) throw new VtError("INVALID_ARGUMENT", `vschema auto_increment of ${table} names column ${configured.column}, which the table does not have`);
    const k = key(col.name);
    return { source: { sequence: configured.sequence }, column: col.name, keyed: k !== undefined, resolves: k?.conflictClause ?? false };
  }
  const rowid = rowidColumn(info.sql);
  const col = rowid === undefined ? undefined : info.columns.find((c) => c.name.toLowerCase() === rowid.toLowerCase());
  if (!col || (col.name.toLowerCase() !== vcol && entry?.unique === "per_shard")) return undefined;
  return { source: { table: info.name, column: col.name }, column: col.name, keyed: true, resolves: key(col.name)?.conflictClause ?? false };
}

/** An INSERT that skips or overwrites a conflicting row instead of failing (OR IGNORE, REPLACE, ON CONFLICT). */
function resolvesConflicts(s: Extract<Node, { type: "insert_stmt" }>): boolean {
  const ic = s.clauses.find((c) => c.type === "insert_clause");
  if (ic?.type !== "insert_clause") return false;
  const or = ic.orAction ? kw(ic.orAction.actionKw) : "";
  return kw(ic.insertKw) === "REPLACE" || or === "IGNORE" || or === "REPLACE" || s.clauses.some((c) => c.type === "upsert_clause");
}

/**
 * Keyspace-wide unique keys an INSERT cannot keep exactly: one without its system table (the
 * table predates its vschema entry), one declaring its own ON CONFLICT resolution, an omitted
 * column with a DEFAULT, and an INTEGER PRIMARY KEY left for each shard to pick (no sequence).
 */
function checkKeyspaceKeys(routing: TableRouting, table: string, cols: readonly string[], aiCol: string | undefined): void {
  const given = (c: string) => cols.some((x) => x.toLowerCase() === c.toLowerCase());
  for (const key of routing.missingKeys ?? []) {
    throw unsupportedError(
      "VD2401",
      `writes to ${table}: its unique key (${key.columns.join(", ")}) has no keyspace-wide index (the table was created before its vschema sharded it by ${routing.column ?? "another column"}); re-create the table, or opt out with "unique": "per_shard" in its vschema`,
    );
  }
  for (const l of routing.lookups ?? []) {
    if (!l.system) continue;
    const key = l.system.columns.map((c) => c.name);
    for (const c of key) {
      if (c.toLowerCase() === aiCol || given(c)) continue;
      const info = l.key;
      if (info?.rowid) {
        throw unsupported(
          "VD2404",
          `INSERT into ${table} without its INTEGER PRIMARY KEY ${c} (each shard would pick its own rowid; ${table} is sharded by ${routing.column ?? "another column"}, and its auto_increment fills another column): give the id`,
        );
      }
      if (info?.defaults.some((d) => d.toLowerCase() === c.toLowerCase())) {
        throw unsupported(
          "VD2405",
          `INSERT into ${table} leaving out ${c}, which has a DEFAULT and is in keyspace-wide unique key (${l.column}) (give the value)`,
        );
      }
    }
    if (l.key?.conflictClause) {
      throw unsupported(
        "VD2408",
        `writes to ${table}: its unique key (${l.column}) declares an ON CONFLICT resolution, which cannot be applied across shards (drop the clause, or opt out with "unique": "per_shard")`,
      );
    }
  }
}

/**
 * Per lookup: true when a taken value skips the row instead of failing it — INSERT OR IGNORE, or
 * ON CONFLICT DO NOTHING with no target or with exactly that key's columns as its target.
 */
function ignoredLookups(s: Extract<Node, { type: "insert_stmt" }>, table: string, lookups: readonly LookupTable[]): boolean[] {
  const ic = s.clauses.find((c) => c.type === "insert_clause");
  if (ic?.type === "insert_clause" && ic.orAction && kw(ic.orAction.actionKw) === "IGNORE") return lookups.map(() => true);
  const out = lookups.map(() => false);
  for (const c of s.clauses) {
    if (c.type !== "upsert_clause" || c.action.type !== "upsert_action_nothing") continue;
    if (!c.conflictTarget) return lookups.map(() => true);
    const target = conflictTargetColumns(c, table);
    if (!target) continue;
    lookups.forEach((l, i) => {
      const cols = (l.system ? l.system.columns.map((k) => k.name) : [l.column]).map((n) => n.toLowerCase());
      if (cols.length === target.length && cols.every((n) => target.includes(n))) out[i] = true;
    });
  }
  return out;
}

/** ON CONFLICT DO UPDATE must not change the vindex column: that would move the row. */
function checkUpsert(s: Extract<Node, { type: "insert_stmt" }>, vcol: string, column: string | undefined): void {
  for (const upsert of s.clauses) {
    if (upsert.type !== "upsert_clause" || upsert.action.type !== "upsert_action_update") continue;
    for (const a of upsert.action.set.assignments.items as Node[]) {
      if (a.type === "column_assignment" && a.column.type === "identifier" && a.column.name.toLowerCase() === vcol) {
        throw unsupported("VD1039", `ON CONFLICT DO UPDATE of the vindex column ${column} (it would move the row)`);
      }
    }
  }
}
