// What a MoveTables request may ask, checked before anything changes: tables of a source keyspace
// that exist there, not in the target, in no other open workflow, each with a PRIMARY KEY, and
// placeable in the target (its vschema entry, or the default rule CREATE TABLE applies). Pure:
// the Topology records the plan; the controller creates the tables in the target with the
// source's CREATE TABLE text and streams their rows.

import { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { TablePlacement } from "../contract/stream-rpc.ts";
import type { TableInfo } from "../contract/tablet-rpc.ts";
import type { TableVSchema } from "../contract/vschema.ts";
import { isOpen, type WorkflowRecord } from "../contract/workflow-record.ts";
import { own } from "./own.ts";
import { checkKeyCollations, noPrimaryKey, primaryKeyColumns, referencedTables, tablePlacements } from "./placements.ts";
import { unsupportedError } from "./refusals.ts";
import { tokenize, tokenName } from "./sql-lexer.ts";
import { tableVSchema } from "./vschema.ts";

/** The DDL that makes a moved table in the target: the source's CREATE TABLE text, and the vschema entry the default rule gives it. */
export interface MoveDdl {
  readonly table: string;
  readonly sql: string;
  readonly addTable?: { readonly name: string; readonly entry: TableVSchema };
}

/** The tables of a request: a non-empty list of distinct names (as the source names them, in its spelling). */
function tableList(source: KeyspaceGraph, v: unknown): TableInfo[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((t) => typeof t === "string" && t !== "")) {
    throw new VtError("INVALID_ARGUMENT", 'tables must be a non-empty list of table names such as ["customer", "corder"]');
  }
  const out: TableInfo[] = [];
  for (const name of v as string[]) {
    const info = /^_vt/i.test(name) ? undefined : own(source.tables, name.toLowerCase());
    if (!info) throw new VtError("UNKNOWN_TABLE", `table ${name} does not exist in keyspace ${source.name}`, { table: name, keyspace: source.name });
    if (out.includes(info)) throw new VtError("INVALID_ARGUMENT", `table ${name} is given twice`, { table: name });
    out.push(info);
  }
  return out;
}

/** The target's vschema entry for `info` (given beforehand, or the default: the first PRIMARY KEY column by the first vindex). */
function targetEntry(target: KeyspaceGraph, info: TableInfo): { entry: TableVSchema; added: boolean } | null {
  if (!target.sharded) return null;
  const given = tableVSchema(target.vschema, info.name);
  if (given) return { entry: given, added: false };
  const vindex = Object.keys(target.vschema.vindexes)[0];
  const column = primaryKeyColumns(info)[0];
  if (!vindex || !column) {
    throw new VtError(
      "INVALID_ARGUMENT",
      `table ${info.name} has no vschema entry in keyspace ${target.name}, which defines no vindex; apply one for it first (vtctl vschema apply ${target.name})`,
      { table: info.name },
    );
  }
  return { entry: { column_vindexes: [{ column, name: vindex }] }, added: true };
}

/** Whether the table's PRIMARY KEY holds its primary vindex column (then each shard enforces it for the whole keyspace). */
function keyHoldsVindexColumn(info: TableInfo, entry: TableVSchema): boolean {
  const column = entry.column_vindexes?.[0]?.column.toLowerCase();
  return column !== undefined && primaryKeyColumns(info).some((c) => c.toLowerCase() === column);
}

/** The name a CREATE INDEX text gives its index (lower-cased), or "" when it cannot be read. */
export function indexName(sql: string): string {
  const toks = tokenize(sql).filter((t) => t.kind !== "space" && t.kind !== "comment");
  const word = (i: number) => {
    const t = toks[i];
    return t?.kind === "word" ? sql.slice(t.start, t.end).toUpperCase() : "";
  };
  let i = toks.findIndex((t, j) => j < 3 && t.kind === "word" && sql.slice(t.start, t.end).toUpperCase() === "INDEX") + 1;
  if (i === 0) return "";
  if (word(i) === "IF" && word(i + 1) === "NOT" && word(i + 2) === "EXISTS") i += 3;
  // A schema-qualified name (main.x) names x.
  const dot = toks[i + 1];
  if (dot?.kind === "op" && sql.slice(dot.start, dot.end) === ".") i += 2;
  const t = toks[i];
  return t && (t.kind === "word" || t.kind === "quoted" || t.kind === "string") ? tokenName(sql, t).toLowerCase() : "";
}

/** Refuses a moved table whose index is named like a table or index the target already has (SQLite gives them one namespace). */
function checkIndexNames(target: KeyspaceGraph, info: TableInfo): void {
  const taken = new Set<string>();
  for (const t of Object.values(target.tables)) {
    taken.add(t.name.toLowerCase());
    for (const x of t.indexes ?? []) taken.add(indexName(x));
  }
  for (const x of info.indexes ?? []) {
    const name = indexName(x);
    if (taken.has(name)) {
      throw new VtError(
        "INVALID_ARGUMENT",
        `index ${name} of table ${info.name}: keyspace ${target.name} already has a table or index of that name; rename one first`,
        {
          table: info.name,
          index: name,
        },
      );
    }
  }
}

function hasUnique(sql: string): boolean {
  return tokenize(sql).some((t) => t.kind === "word" && sql.slice(t.start, t.end).toUpperCase() === "UNIQUE");
}

export interface MoveTablesPlan {
  /** The tables, as the source names them, parents before children. */
  readonly tables: readonly string[];
  readonly ddl: readonly MoveDdl[];
}

/**
 * Checks a move of `tables` from `source` to `target` against both keyspaces and every open
 * workflow. Refusals change nothing: INVALID_ARGUMENT (UNKNOWN_TABLE for a table the source does
 * not have), UNSUPPORTED VD2700 (no PRIMARY KEY), VD2707 (a key collating otherwise than its column), VD2704 (a UNIQUE key, a lookup vindex, or a
 * PRIMARY KEY without the vindex column and not "per_shard", in a sharded target), VD2705 (a foreign key to a table that stays).
 */
export function planMoveTables(source: KeyspaceGraph, target: KeyspaceGraph, tables: unknown, workflows: readonly WorkflowRecord[]): MoveTablesPlan {
  if (source.name === target.name) {
    throw new VtError("INVALID_ARGUMENT", `MoveTables moves tables between two keyspaces: the source and the target are both ${source.name}`);
  }
  const infos = tableList(source, tables);
  const names = new Set(infos.map((i) => i.name.toLowerCase()));
  for (const w of workflows) {
    if (!isOpen(w)) continue;
    if (w.kind !== "movetables" && (w.keyspace === source.name || w.keyspace === target.name)) {
      throw new VtError("INVALID_ARGUMENT", `keyspace ${w.keyspace} is in workflow ${w.name} (${w.state}); complete or cancel it first`, { workflow: w.name });
    }
    const busy =
      w.kind === "movetables"
        ? (w.tables ?? []).find((t) => names.has(t.toLowerCase()) && (w.sourceKeyspace === source.name || w.keyspace === source.name))
        : undefined;
    if (busy !== undefined) {
      throw new VtError("INVALID_ARGUMENT", `table ${busy} is in workflow ${w.keyspace}.${w.name} (${w.state}); complete or cancel it first`, {
        table: busy,
        workflow: w.name,
      });
    }
  }
  const ddl: MoveDdl[] = [];
  for (const info of infos) {
    if (own(target.tables, info.name.toLowerCase())) {
      throw new VtError("INVALID_ARGUMENT", `table ${info.name} already exists in keyspace ${target.name}`, { table: info.name, keyspace: target.name });
    }
    if (primaryKeyColumns(info).length === 0) throw noPrimaryKey(info.name);
    checkKeyCollations(info);
    const parent = referencedTables(info.sql).find((p) => !names.has(p.toLowerCase()));
    if (parent !== undefined) {
      throw unsupportedError("VD2705", `moving table ${info.name}: it references table ${parent}, which does not move with it; move both`, {
        table: info.name,
        references: parent,
      });
    }
    const e = targetEntry(target, info);
    if (e && (hasUnique(info.sql) || (info.indexes ?? []).some(hasUnique) || (e.entry.column_vindexes?.length ?? 0) > 1)) {
      throw unsupportedError(
        "VD2704",
        `moving table ${info.name} into sharded keyspace ${target.name}: a UNIQUE key or a lookup vindex (its keyspace-wide lookup rows would not be moved); drop it first`,
        { table: info.name },
      );
    }
    if (e && e.entry.type === undefined && e.entry.unique !== "per_shard" && !keyHoldsVindexColumn(info, e.entry)) {
      throw unsupportedError(
        "VD2704",
        `moving table ${info.name} into sharded keyspace ${target.name}: its PRIMARY KEY (${primaryKeyColumns(info).join(", ")}) does not hold its vindex column ${e.entry.column_vindexes?.[0]?.column ?? "?"}, so it would need a keyspace-wide lookup whose rows would not be moved; shard it by a key column, or give its vschema entry "unique": "per_shard"`,
        { table: info.name },
      );
    }
    checkIndexNames(target, info);
    ddl.push({ table: info.name, sql: info.sql, ...(e?.added ? { addTable: { name: info.name, entry: e.entry } } : {}) });
  }
  // The placements check every entry's vindex exists, and give the order (parents first).
  const order = targetPlacements(
    source,
    target,
    infos.map((i) => i.name),
    ddl,
  ).map((p) => p.table.toLowerCase());
  ddl.sort((a, b) => order.indexOf(a.table.toLowerCase()) - order.indexOf(b.table.toLowerCase()));
  return { tables: ddl.map((d) => d.table), ddl };
}

/** The moved tables' placements in `ks`, parents first, as if `ks` held only them (with `ddl`'s vschema entries added). */
function placementsIn(ks: KeyspaceGraph, infos: readonly TableInfo[], ddl: readonly MoveDdl[]): TablePlacement[] {
  const vschema = structuredClone(ks.vschema);
  for (const d of ddl) if (d.addTable) vschema.tables[d.addTable.name] = d.addTable.entry as TableVSchema;
  return tablePlacements({ ...ks, vschema, tables: Object.fromEntries(infos.map((i) => [i.name.toLowerCase(), i])) });
}

/** Where the moved tables' rows go in the target (the forward streams' filter). */
export function targetPlacements(source: KeyspaceGraph, target: KeyspaceGraph, tables: readonly string[], ddl: readonly MoveDdl[] = []): TablePlacement[] {
  const infos = tables.map((t) => own(source.tables, t.toLowerCase()) ?? own(target.tables, t.toLowerCase())).filter((i): i is TableInfo => i !== undefined);
  return placementsIn(target, infos, ddl);
}

/** Where the moved tables' rows live in the source (the reverse streams' filter). */
export function sourcePlacements(source: KeyspaceGraph, target: KeyspaceGraph, tables: readonly string[]): TablePlacement[] {
  const infos = tables.map((t) => own(target.tables, t.toLowerCase()) ?? own(source.tables, t.toLowerCase())).filter((i): i is TableInfo => i !== undefined);
  return placementsIn(source, infos, []);
}

/** The DDL still to run in the target for a recorded move (a retried create runs only what is missing). */
export function missingDdl(source: KeyspaceGraph, target: KeyspaceGraph, tables: readonly string[]): MoveDdl[] {
  const out: MoveDdl[] = [];
  for (const t of tables) {
    const info = own(source.tables, t.toLowerCase());
    if (!info || own(target.tables, t.toLowerCase())) continue;
    const e = targetEntry(target, info);
    out.push({ table: info.name, sql: info.sql, ...(e?.added ? { addTable: { name: info.name, entry: e.entry } } : {}) });
  }
  return out;
}

/** The moved tables' indexes (their source's CREATE INDEX texts) the target does not have yet: a retried create runs only those. */
export function missingIndexes(source: KeyspaceGraph, target: KeyspaceGraph, tables: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of tables) {
    const have = new Set(own(target.tables, t.toLowerCase())?.indexes ?? []);
    for (const x of own(source.tables, t.toLowerCase())?.indexes ?? []) if (!have.has(x)) out.push(x);
  }
  return out;
}
