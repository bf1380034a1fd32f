// Lookup vindexes: a table (in this keyspace or another) maps each value of a secondary column to
// the keyspace ids of the rows holding it. Reads by that column ask the table first and go only
// to those shards. Writes keep it in step, in the order that never hides a row: lookup rows are
// written before the owner row and deleted after it, so a failure can leave only an extra lookup
// row (a read then visits one more shard and finds nothing there), never a missing one.

import { VtError, toVtError } from "../../topology/errors.ts";
import { quoteIdent, type SqlValue } from "../../topology/sql-values.ts";
import { Bindings, render, type Template } from "../sql/template.ts";
import type { BoundQuery } from "../../tablet/types.ts";
import type { Vindex } from "../../topology/vindex.ts";
import { concatResults, writeEach, type Route } from "./route.ts";
import { shardForKsid } from "./values.ts";
import { groupKey } from "./aggregate.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { describeValue, evalValue, type ValueExpr } from "./values.ts";

/** The Bindings slot holding the keyspace ids a lookup found (no statement text makes a negative id). */
export const LOOKUP_SLOT = -4;

/** Pairs per statement on the lookup table (two params each, under the 100-parameter limit). */
const PAIRS_PER_STATEMENT = 40;

/** Values per re-read of a unique lookup (each bound twice, under the 100-parameter limit). */
const VALUES_PER_READ = 45;

export interface LookupTable {
  /** The vindex's name in the vschema (for messages). */
  readonly name: string;
  /** Keyspace of the lookup table (the owner's when the vindex names no keyspace). */
  readonly keyspace: string;
  readonly table: string;
  readonly from: string;
  readonly to: string;
  readonly unique: boolean;
  /** The owner table's column the vindex covers. */
  readonly column: string;
}

/** The keyspace ids `values` map to, from the lookup table. */
export async function lookupKsids(vc: VCursor, l: LookupTable, values: readonly SqlValue[]): Promise<Uint8Array[]> {
  const present = values.filter((v) => v !== null);
  if (present.length === 0) return [];
  const out: Uint8Array[] = [];
  for (let i = 0; i < present.length; i += 90) {
    const chunk = present.slice(i, i + 90);
    const r = await vc.lookupExecute(l.keyspace, `SELECT ${quoteIdent(l.to)} FROM ${quoteIdent(l.table)} WHERE ${quoteIdent(l.from)} IN (${chunk.map(() => "?").join(", ")})`, chunk);
    for (const [k] of r.rows) if (k instanceof Uint8Array) out.push(k);
  }
  return out;
}

/** Runs `inner` with LOOKUP_SLOT bound to the keyspace ids of `values` (routes read it to pick shards). */
export class LookupResolve implements Primitive {
  readonly lookup: LookupTable;
  readonly values: readonly ValueExpr[];
  readonly inner: Primitive;

  constructor(lookup: LookupTable, values: readonly ValueExpr[], inner: Primitive) {
    this.lookup = lookup;
    this.values = values;
    this.inner = inner;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const ksids = await lookupKsids(vc, this.lookup, this.values.map((v) => evalValue(v, b)));
    return this.inner.execute(vc, b.withSubqueries(new Map([[LOOKUP_SLOT, ksids.map((k) => [k])]])));
  }

  describe(_x?: Explain): PlanDescription {
    return {
      operator: "LookupResolve",
      vindex: this.lookup.name,
      table: `${this.lookup.keyspace}.${this.lookup.table}`,
      values: this.values.map(describeValue),
      // The shards depend on what the lookup table holds, which VEXPLAIN does not read.
      inputs: [this.inner.describe()],
    };
  }
}

/**
 * Adds lookup rows for (value, keyspace id) pairs, before the owner rows are written. A unique
 * lookup refuses a value already mapped to another row that exists; a mapping whose owner row is
 * gone (left by a failed write) is taken over.
 */
export async function addLookupRows(
  vc: VCursor,
  l: LookupTable,
  pairs: readonly (readonly [SqlValue, Uint8Array])[],
  ownerHas: (ksid: Uint8Array, value: SqlValue) => Promise<boolean>,
): Promise<void> {
  const live = pairs.filter(([v]) => v !== null);
  if (live.length === 0) return;
  if (l.unique) {
    const seen = new Set<string>();
    for (const [v] of live) {
      const k = groupKey([v], ["BINARY"]);
      if (seen.has(k)) throw new VtError("CONSTRAINT", `UNIQUE constraint failed: ${l.column} (lookup vindex ${l.name}): ${String(v)} appears twice`);
      seen.add(k);
    }
  }
  const verb = l.unique ? "INSERT" : "INSERT OR IGNORE";
  for (let i = 0; i < live.length; i += PAIRS_PER_STATEMENT) {
    const chunk = live.slice(i, i + PAIRS_PER_STATEMENT);
    try {
      await vc.lookupExecute(l.keyspace, `${verb} INTO ${quoteIdent(l.table)} (${quoteIdent(l.from)}, ${quoteIdent(l.to)}) VALUES ${chunk.map(() => "(?, ?)").join(", ")}`, chunk.flat());
    } catch (e) {
      if (!l.unique || toVtError(e).code !== "CONSTRAINT") throw e;
      for (const pair of chunk) await addUnique(vc, l, pair, ownerHas);
    }
  }
}

async function addUnique(vc: VCursor, l: LookupTable, [value, ksid]: readonly [SqlValue, Uint8Array], ownerHas: (ksid: Uint8Array, value: SqlValue) => Promise<boolean>): Promise<void> {
  const existing = await vc.lookupExecute(l.keyspace, `SELECT ${quoteIdent(l.to)} FROM ${quoteIdent(l.table)} WHERE ${quoteIdent(l.from)} = ?`, [value]);
  const current = existing.rows[0]?.[0];
  if (current === undefined) {
    await vc.lookupExecute(l.keyspace, `INSERT INTO ${quoteIdent(l.table)} (${quoteIdent(l.from)}, ${quoteIdent(l.to)}) VALUES (?, ?)`, [value, ksid]);
    return;
  }
  if (current instanceof Uint8Array && sameBytes(current, ksid)) return;
  if (current instanceof Uint8Array && (await ownerHas(current, value))) {
    throw new VtError("CONSTRAINT", `UNIQUE constraint failed: ${l.column} (lookup vindex ${l.name}): ${String(value)} already exists`);
  }
  await vc.lookupExecute(l.keyspace, `UPDATE ${quoteIdent(l.table)} SET ${quoteIdent(l.to)} = ? WHERE ${quoteIdent(l.from)} = ?`, [ksid, value]);
  // Its owner may have been mid-insert (lookup row first, row second): look again, and give the row back if it appeared.
  if (current instanceof Uint8Array && (await ownerHas(current, value))) {
    await vc.lookupExecute(l.keyspace, `UPDATE ${quoteIdent(l.table)} SET ${quoteIdent(l.to)} = ? WHERE ${quoteIdent(l.from)} = ? AND ${quoteIdent(l.to)} = ?`, [current, value, ksid]);
    throw new VtError("CONSTRAINT", `UNIQUE constraint failed: ${l.column} (lookup vindex ${l.name}): ${String(value)} already exists`);
  }
}

/**
 * After the owner rows are written: the (value, keyspace id) pairs whose unique lookup row no
 * longer names them, because a concurrent INSERT of the same value took it over in between.
 */
export async function lostLookups(vc: VCursor, l: LookupTable, pairs: readonly (readonly [SqlValue, Uint8Array])[]): Promise<(readonly [SqlValue, Uint8Array])[]> {
  const live = pairs.filter(([v]) => v !== null);
  if (!l.unique || live.length === 0) return [];
  // One IN read per chunk (no compound SELECT: SQLite caps its terms, Durable Objects lower than
  // 500). Each value is also compared as `from = ?` in the select list, so the lookup column's
  // affinity applies as it did when the row was written (5 finds '5'), and the answer names which
  // values a row holds without converting values at the gate.
  const lost: (readonly [SqlValue, Uint8Array])[] = [];
  for (let i = 0; i < live.length; i += VALUES_PER_READ) {
    const chunk = live.slice(i, i + VALUES_PER_READ);
    const from = quoteIdent(l.from);
    const marks = chunk.map(() => `${from} = ?`).join(", ");
    const sql = `SELECT ${quoteIdent(l.to)}, ${marks} FROM ${quoteIdent(l.table)} WHERE ${from} IN (${chunk.map(() => "?").join(", ")})`;
    const values = chunk.map(([v]) => v);
    const r = await vc.lookupExecute(l.keyspace, sql, [...values, ...values]);
    chunk.forEach((pair, k) => {
      const held = r.rows.some((row) => row[0] instanceof Uint8Array && sameBytes(row[0], pair[1]) && Number(row[k + 1]) === 1);
      if (!held) lost.push(pair);
    });
  }
  return lost;
}

/** Removes lookup rows for (value, keyspace id) pairs, after the owner rows are gone. */
export async function removeLookupRows(vc: VCursor, l: LookupTable, pairs: readonly (readonly [SqlValue, Uint8Array])[]): Promise<void> {
  const live = pairs.filter(([v]) => v !== null);
  for (let i = 0; i < live.length; i += PAIRS_PER_STATEMENT) {
    const chunk = live.slice(i, i + PAIRS_PER_STATEMENT);
    await vc.lookupExecute(l.keyspace, `DELETE FROM ${quoteIdent(l.table)} WHERE ${chunk.map(() => `(${quoteIdent(l.from)} = ? AND ${quoteIdent(l.to)} = ?)`).join(" OR ")}`, chunk.flat());
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * DELETE from a table that owns lookup vindexes: on each shard, in one transaction, the rows'
 * vindex and lookup values are read, then the DELETE runs; once the owner rows are gone, their
 * lookup rows are removed.
 */
export class OwnedDelete implements Primitive {
  readonly route: Route;
  readonly pre: Template;
  readonly vindex: Vindex;
  readonly lookups: readonly LookupTable[];

  constructor(route: Route, pre: Template, vindex: Vindex, lookups: readonly LookupTable[]) {
    this.route = route;
    this.pre = pre;
    this.vindex = vindex;
    this.lookups = lookups;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const shards = this.route.shards(vc.keyspace, b);
    const del: BoundQuery = { ...render(this.route.spec.template, b), kind: "write" };
    const pre: BoundQuery = { ...render(this.pre, b), kind: "read" };
    const pairs: [SqlValue, Uint8Array][][] = this.lookups.map(() => []);
    const results = await writeEach(shards, async (s) => {
      const [found, deleted] = await vc.execute(s, [pre, del]);
      for (const row of found?.rows ?? []) {
        let ksid: Uint8Array;
        try {
          ksid = this.vindex.map(row[0] ?? null);
        } catch {
          continue;
        }
        this.lookups.forEach((_, i) => pairs[i]?.push([row[i + 1] ?? null, ksid]));
      }
      return deleted;
    });
    for (const [i, l] of this.lookups.entries()) await removeLookupRows(vc, l, pairs[i] ?? []);
    return concatResults(results);
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "OwnedDelete", lookups: this.lookups.map((l) => l.name), inputs: [this.route.describe(x)] };
  }
}

/**
 * True when the owner table has a row with `column = value` whose keyspace id is `ksid` (read on
 * the shard of `ksid`, checking each candidate's vindex value, since other rows there may share
 * the value).
 */
export async function ownerHas(vc: VCursor, table: string, column: string, ksid: Uint8Array, value: SqlValue, vindex?: Vindex, vindexColumn?: string): Promise<boolean> {
  const shard = shardForKsid(vc.keyspace, ksid);
  const select = vindex && vindexColumn ? quoteIdent(vindexColumn) : "1";
  const parts: Template = [`SELECT ${select} FROM ${quoteIdent(table)} WHERE ${quoteIdent(column)} = `, { values: () => [value], empty: "NULL" }, vindex && vindexColumn ? "" : " LIMIT 1"];
  const [r] = await vc.execute(shard, [{ ...render(parts, new Bindings([])), kind: "read" }]);
  const rows = r?.rows ?? [];
  if (!vindex || !vindexColumn) return rows.length > 0;
  return rows.some(([v]) => {
    try {
      return sameBytes(vindex.map(v ?? null), ksid);
    } catch {
      return false;
    }
  });
}
