// Validation of a vschema (its shape: contract/vschema.ts), naming the JSON path of the first
// problem.

import { VtError } from "../contract/errors.ts";
import { unsupportedError } from "./refusals.ts";
import { own, setOwn } from "./own.ts";
import { isReservedName } from "./system-names.ts";
import { createVindex } from "./vindex.ts";
import type { TableVSchema, VindexDef, VSchema } from "../contract/vschema.ts";

function fail(path: string, msg: string): never {
  throw new VtError("INVALID_ARGUMENT", `vschema ${path}: ${msg}`);
}

/** INVALID_ARGUMENT when a name the vschema gives is the system's own (system-names.ts isReservedName). */
function checkName(path: string, name: string): void {
  if (isReservedName(name)) fail(path, `${JSON.stringify(name)} is a system name (names starting with _vt, sqlite_, _cf_, pragma_ are reserved)`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkKeys(path: string, o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(path, `unknown field "${k}" (allowed: ${allowed.join(", ")})`);
  }
}

/** Parses and validates a vschema; returns a normalised copy. */
export function validateVSchema(input: unknown): VSchema {
  if (!isObject(input)) fail("", "must be a JSON object");
  checkKeys("", input, ["sharded", "vindexes", "tables"]);
  const sharded = input["sharded"] ?? false;
  if (typeof sharded !== "boolean") fail(".sharded", "must be true or false");
  const vindexes: Record<string, VindexDef> = {};
  const rawVindexes = input["vindexes"] ?? {};
  if (!isObject(rawVindexes)) fail(".vindexes", "must be an object");
  for (const [name, def] of Object.entries(rawVindexes)) {
    const path = `.vindexes.${name}`;
    if (!isObject(def)) fail(path, "must be an object with a type");
    checkKeys(path, def, ["type", "params", "owner"]);
    const type = def["type"];
    if (typeof type !== "string") fail(`${path}.type`, "must be a string");
    const params = def["params"];
    const out: VindexDef = { type };
    if (params !== undefined) {
      if (!isObject(params) || Object.values(params).some((p) => typeof p !== "string")) {
        fail(`${path}.params`, "must be an object of strings");
      }
      out.params = params as Record<string, string>;
      for (const k of ["table", "from", "to"]) if (typeof params[k] === "string") checkName(`${path}.params.${k}`, params[k]);
    }
    if (def["owner"] !== undefined) {
      if (typeof def["owner"] !== "string") fail(`${path}.owner`, "must be a table name");
      checkName(`${path}.owner`, def["owner"]);
      out.owner = def["owner"];
    }
    try {
      createVindex(type, out.params);
    } catch (e) {
      fail(`${path}.type`, e instanceof Error ? e.message : String(e));
    }
    setOwn(vindexes, name, out);
  }
  const tables: Record<string, TableVSchema> = {};
  const rawTables = input["tables"] ?? {};
  if (!isObject(rawTables)) fail(".tables", "must be an object");
  for (const [name, def] of Object.entries(rawTables)) {
    const path = `.tables.${name}`;
    checkName(path, name);
    if (!isObject(def)) fail(path, "must be an object");
    checkKeys(path, def, ["type", "column_vindexes", "auto_increment", "pinned", "unique"]);
    if (def["pinned"] !== undefined) throw unsupportedError("VD1105", `vschema ${path}.pinned: pinned tables are not supported`);
    const t: TableVSchema = {};
    const ai = def["auto_increment"];
    if (ai !== undefined) {
      if (!isObject(ai)) fail(`${path}.auto_increment`, 'must be {"column": …, "sequence": …}');
      checkKeys(`${path}.auto_increment`, ai, ["column", "sequence"]);
      const column = ai["column"];
      const sequence = ai["sequence"];
      if (typeof column !== "string" || column === "") fail(`${path}.auto_increment.column`, "must name a column");
      if (typeof sequence !== "string" || !/^([A-Za-z][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/.test(sequence)) {
        fail(`${path}.auto_increment.sequence`, "must name a sequence table (name or keyspace.name)");
      }
      checkName(`${path}.auto_increment.column`, column);
      checkName(`${path}.auto_increment.sequence`, sequence);
      if (def["type"] !== undefined) fail(`${path}.auto_increment`, `a ${String(def["type"])} table has no auto_increment`);
      t.auto_increment = { column, sequence };
    }
    const unique = def["unique"];
    if (unique !== undefined) {
      if (unique !== "keyspace" && unique !== "per_shard") fail(`${path}.unique`, 'must be "keyspace" (the default) or "per_shard"');
      if (def["type"] !== undefined) fail(`${path}.unique`, `a ${String(def["type"])} table has no unique setting (it is not sharded)`);
      t.unique = unique;
    }
    const type = def["type"];
    if (type !== undefined) {
      if (type !== "reference" && type !== "sequence") fail(`${path}.type`, 'must be "reference" or "sequence"');
      t.type = type;
    }
    const cvs = def["column_vindexes"];
    if (cvs !== undefined) {
      if (!Array.isArray(cvs) || cvs.length === 0) fail(`${path}.column_vindexes`, "must be a non-empty array");
      if (t.type !== undefined) fail(path, `a ${t.type} table has no column_vindexes`);
      t.column_vindexes = cvs.map((cv: unknown, i) => {
        const p = `${path}.column_vindexes[${i}]`;
        if (!isObject(cv)) fail(p, "must be an object");
        checkKeys(p, cv, ["column", "columns", "name"]);
        let column = cv["column"];
        const columns = cv["columns"];
        if (column === undefined && Array.isArray(columns)) {
          if (columns.length !== 1) throw unsupportedError("VD1106", `vschema ${p}.columns: multi-column vindexes are not supported yet`);
          column = columns[0];
        }
        if (typeof column !== "string" || column === "") fail(`${p}.column`, "must name a column");
        checkName(`${p}.column`, column);
        const vname = cv["name"];
        if (typeof vname !== "string") fail(`${p}.name`, "must name a vindex");
        if (!own(vindexes, vname)) fail(`${p}.name`, `no vindex "${vname}" in .vindexes`);
        return { column, name: vname };
      });
      const primary = t.column_vindexes[0];
      if (primary && !vindexOf({ sharded, vindexes, tables }, primary.name).unique) {
        fail(`${path}.column_vindexes[0]`, "the primary vindex must be unique");
      }
      if (primary && vindexOf({ sharded, vindexes, tables }, primary.name).lookup) {
        fail(`${path}.column_vindexes[0]`, "the primary vindex must compute the keyspace id (a lookup vindex can only be secondary)");
      }
      t.column_vindexes.slice(1).forEach((cv, i) => {
        const p = `${path}.column_vindexes[${i + 1}]`;
        const def = own(vindexes, cv.name);
        if (!vindexOf({ sharded, vindexes, tables }, cv.name).lookup) {
          throw unsupportedError("VD1107", `vschema ${p}: a secondary vindex must be a lookup vindex (lookup_unique or lookup)`);
        }
        if (def?.owner?.toLowerCase() !== name.toLowerCase())
          fail(`${p}.name`, `lookup vindex "${cv.name}" must name ${name} as its "owner" (the gate keeps an owned lookup table in step)`);
        if (t.column_vindexes?.some((o, j) => j !== i + 1 && o.column.toLowerCase() === cv.column.toLowerCase()))
          fail(p, `column ${cv.column} has two vindexes`);
      });
    }
    if (sharded && t.type === undefined && t.column_vindexes === undefined) {
      fail(path, 'a table of a sharded keyspace needs column_vindexes or "type": "reference"');
    }
    if (t.type === "sequence" && sharded) fail(path, "sequence tables live in unsharded keyspaces");
    setOwn(tables, name, t);
  }
  return { sharded, vindexes, tables };
}

export function vindexOf(vs: VSchema, name: string) {
  const def = own(vs.vindexes, name);
  if (!def) throw new VtError("INVALID_ARGUMENT", `vschema has no vindex "${name}"`);
  return createVindex(def.type, def.params);
}

/** The vschema entry of a table, matched case-insensitively as SQLite matches table names. */
export function tableVSchema(vs: VSchema, table: string): TableVSchema | undefined {
  const direct = own(vs.tables, table);
  if (direct) return direct;
  const lower = table.toLowerCase();
  for (const [name, t] of Object.entries(vs.tables)) if (name.toLowerCase() === lower) return t;
  return undefined;
}

export function defaultVSchema(sharded: boolean): VSchema {
  return sharded ? { sharded, vindexes: { xxhash: { type: "xxhash" } }, tables: {} } : { sharded, vindexes: {}, tables: {} };
}
