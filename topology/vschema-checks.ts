// Checks of a vschema against the keyspace's schema: every vindex column exists, and no change
// re-routes a table that holds rows (the rows would stay where the old vindex put them, so reads
// by the new one miss them; moving rows is what Reshard / MoveTables are for).

import type { TableInfo } from "../contract/tablet-rpc.ts";
import { VtError } from "../contract/errors.ts";
import { setOwn } from "./own.ts";
import { tableVSchema } from "./vschema.ts";
import type { VSchema } from "../contract/vschema.ts";

function columnOf(info: TableInfo, column: string): boolean {
  const lower = column.toLowerCase();
  return info.columns.some((c) => c.name.toLowerCase() === lower);
}

/** INVALID_ARGUMENT naming the first vschema column that a table of the schema does not have. */
export function checkVSchemaColumns(vs: VSchema, tables: Readonly<Record<string, TableInfo>>): void {
  for (const [name, t] of Object.entries(vs.tables)) {
    const info = Object.hasOwn(tables, name.toLowerCase()) ? tables[name.toLowerCase()] : undefined;
    if (!info) continue;
    (t.column_vindexes ?? []).forEach((cv, i) => {
      if (!columnOf(info, cv.column)) {
        throw new VtError("INVALID_ARGUMENT", `vschema .tables.${name}.column_vindexes[${i}].column: table ${info.name} has no column "${cv.column}"`, {
          table: info.name,
          column: cv.column,
        });
      }
    });
    if (t.auto_increment && !columnOf(info, t.auto_increment.column)) {
      throw new VtError("INVALID_ARGUMENT", `vschema .tables.${name}.auto_increment.column: table ${info.name} has no column "${t.auto_increment.column}"`, {
        table: info.name,
        column: t.auto_increment.column,
      });
    }
  }
}

/** How a table's rows are placed: its kind, and each vindex column with the vindex's definition. */
function placement(vs: VSchema, table: string): string {
  const t = tableVSchema(vs, table);
  if (!t) return "none";
  if (t.type !== undefined) return t.type;
  return JSON.stringify(
    (t.column_vindexes ?? []).map((cv) => {
      const def = Object.hasOwn(vs.vindexes, cv.name) ? vs.vindexes[cv.name] : undefined;
      return [cv.column.toLowerCase(), def?.type ?? null, def?.params ?? null, def?.owner?.toLowerCase() ?? null];
    }),
  );
}

/** Tables of the schema whose placement differs between two vschemas (actual table names). */
export function reroutedTables(before: VSchema, after: VSchema, tables: Readonly<Record<string, TableInfo>>): string[] {
  return Object.values(tables)
    .map((t) => t.name)
    .filter((name) => placement(before, name) !== placement(after, name));
}

/**
 * The entries (and their vindexes) of existing tables that a new vschema leaves out, carried
 * over: dropping a table's entry would leave its rows unreachable, and re-adding it later could
 * place them differently. Answers the vschema to store and the carried auto-added table names.
 */
export function carryOver(
  before: VSchema,
  after: VSchema,
  tables: Readonly<Record<string, TableInfo>>,
  auto: readonly string[],
): { vschema: VSchema; auto: string[] } {
  const out: VSchema = structuredClone(after);
  const kept: string[] = [];
  for (const info of Object.values(tables)) {
    if (tableVSchema(after, info.name)) continue;
    const key = Object.keys(before.tables).find((k) => k.toLowerCase() === info.name.toLowerCase());
    const entry = key === undefined || !Object.hasOwn(before.tables, key) ? undefined : before.tables[key];
    if (key === undefined || !entry) continue;
    setOwn(out.tables, key, structuredClone(entry));
    for (const cv of entry.column_vindexes ?? []) {
      const def = Object.hasOwn(before.vindexes, cv.name) ? before.vindexes[cv.name] : undefined;
      if (def && !Object.hasOwn(out.vindexes, cv.name)) setOwn(out.vindexes, cv.name, structuredClone(def));
    }
    if (auto.some((a) => a.toLowerCase() === key.toLowerCase())) kept.push(key);
  }
  return { vschema: out, auto: kept };
}
