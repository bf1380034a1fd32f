// Lookup vindexes: a table (in this keyspace or another) maps each value of a secondary column to
// the keyspace ids of the rows holding it. Reads by that column ask the table first and go only
// to those shards. Writes keep it in step, in the order that never hides a row: lookup rows are
// written before the owner row and deleted after it, so a failure can leave only an extra lookup
// row (a read then visits one more shard and finds nothing there), never a missing one.

import { VtError, toVtError } from "../../contract/errors.ts";
import { quoteIdent, type SqlValue } from "../../contract/sql-values.ts";
import { Bindings, render, type Part, type Template } from "../sql/template.ts";
import type { BoundQuery } from "../../contract/tablet-rpc.ts";
import type { Vindex } from "../../topology/vindex.ts";
import { concatResults, writeEach, type Route } from "./route.ts";
import { shardForKsid } from "./values.ts";
import { groupKey } from "./aggregate.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { describeValue, evalValue, type ValueExpr } from "./values.ts";
import { keyValues, uniqueKey, type KeyColumn } from "./unique-key.ts";

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
  /** The owner table's column the vindex covers (for a system lookup: its columns, for messages). */
  readonly column: string;
  /**
   * Set for the system table of a keyspace-wide unique constraint (`_vtl_…`, in the owner's
   * keyspace, sharded by `from` with `vindex`): `from` holds uniqueKey() of `columns`. It is read
   * and written straight on the shard of each key, never through the planner (user SQL cannot
   * name it).
   */
  readonly system?: { readonly columns: readonly KeyColumn[]; readonly vindex: Vindex; readonly rowid?: boolean };
}

/** The owner columns a lookup covers and the values its lookup value stands for there. */
export function ownerMatch(l: LookupTable, value: SqlValue): { columns: string[]; values: SqlValue[] } {
  if (!l.system) return { columns: [l.column], values: [value] };
  return { columns: l.system.columns.map((c) => c.name), values: typeof value === "string" ? keyValues(value) : [] };
}

/**
 * Runs `build(group)` over the lookup table for `items`: one statement through the gate for a
 * vindex's own table, or for a system table one per shard holding the items' keys (each group's
 * statement names only keys of that shard). Answers every row, in no defined order.
 */
async function lookupQuery<T>(
  vc: VCursor,
  l: LookupTable,
  items: readonly T[],
  keyOf: (item: T) => SqlValue,
  build: (group: readonly T[]) => { sql: string; params: SqlValue[] },
  kind: BoundQuery["kind"],
): Promise<SqlValue[][]> {
  if (items.length === 0) return [];
  if (!l.system) {
    const q = build(items);
    return (await vc.lookupExecute(l.keyspace, q.sql, q.params)).rows;
  }
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const shard = shardForKsid(vc.keyspace, l.system.vindex.map(keyOf(item)));
    const g = groups.get(shard);
    if (g) g.push(item);
    else groups.set(shard, [item]);
  }
  const rows: SqlValue[][] = [];
  for (const [shard, group] of groups) {
    const [r] = await vc.execute(shard, [{ ...build(group), kind }]);
    rows.push(...(r?.rows ?? []));
  }
  return rows;
}

/** The keyspace ids `values` map to, from the lookup table. */
export async function lookupKsids(vc: VCursor, l: LookupTable, values: readonly SqlValue[]): Promise<Uint8Array[]> {
  const present = values.filter((v) => v !== null);
  if (present.length === 0) return [];
  const out: Uint8Array[] = [];
  for (let i = 0; i < present.length; i += 90) {
    const chunk = present.slice(i, i + 90);
    const rows = await lookupQuery(
      vc,
      l,
      chunk,
      (v) => v,
      (g) => ({
        sql: `SELECT ${quoteIdent(l.to)} FROM ${quoteIdent(l.table)} WHERE ${quoteIdent(l.from)} IN (${g.map(() => "?").join(", ")})`,
        params: [...g],
      }),
      "read",
    );
    for (const [k] of rows) if (k instanceof Uint8Array) out.push(k);
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
    const ksids = await lookupKsids(
      vc,
      this.lookup,
      this.values.map((v) => evalValue(v, b)),
    );
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
  const table = quoteIdent(l.table);
  const cols = `(${quoteIdent(l.from)}, ${quoteIdent(l.to)})`;
  const live = pairs.filter(([v]) => v !== null);
  if (live.length === 0) return;
  if (l.unique) {
    const seen = new Set<string>();
    for (const [v] of live) {
      const k = groupKey([v], ["BINARY"]);
      if (seen.has(k)) throw duplicate(l, v, "appears twice");
      seen.add(k);
    }
  }
  const verb = l.unique ? "INSERT" : "INSERT OR IGNORE";
  for (let i = 0; i < live.length; i += PAIRS_PER_STATEMENT) {
    const chunk = live.slice(i, i + PAIRS_PER_STATEMENT);
    try {
      await lookupQuery(
        vc,
        l,
        chunk,
        ([v]) => v,
        (g) => ({ sql: `${verb} INTO ${table} ${cols} VALUES ${g.map(() => "(?, ?)").join(", ")}`, params: g.flat() }),
        "write",
      );
    } catch (e) {
      if (!l.unique || toVtError(e).code !== "CONSTRAINT") throw e;
      for (const pair of chunk) await addUnique(vc, l, pair, ownerHas);
    }
  }
}

async function addUnique(
  vc: VCursor,
  l: LookupTable,
  [value, ksid]: readonly [SqlValue, Uint8Array],
  ownerHas: (ksid: Uint8Array, value: SqlValue) => Promise<boolean>,
): Promise<void> {
  const t = quoteIdent(l.table);
  const from = quoteIdent(l.from);
  const to = quoteIdent(l.to);
  const one = (sql: string, params: SqlValue[], kind: BoundQuery["kind"]) =>
    lookupQuery(
      vc,
      l,
      [value],
      (v) => v,
      () => ({ sql, params }),
      kind,
    );
  const existing = await one(`SELECT ${to} FROM ${t} WHERE ${from} = ?`, [value], "read");
  const current = existing[0]?.[0];
  if (current === undefined) {
    await one(`INSERT INTO ${t} (${from}, ${to}) VALUES (?, ?)`, [value, ksid], "write");
    return;
  }
  if (current instanceof Uint8Array && sameBytes(current, ksid)) return;
  if (current instanceof Uint8Array && (await ownerHas(current, value))) throw duplicate(l, value, "already exists");
  await one(`UPDATE ${t} SET ${to} = ? WHERE ${from} = ?`, [ksid, value], "write");
  // Its owner may have been mid-insert (lookup row first, row second): look again, and give the row back if it appeared.
  if (current instanceof Uint8Array && (await ownerHas(current, value))) {
    await one(`UPDATE ${t} SET ${to} = ? WHERE ${from} = ? AND ${to} = ?`, [current, value, ksid], "write");
    throw duplicate(l, value, "already exists");
  }
}

/** The CONSTRAINT error of a unique lookup value held by another row. */
export function duplicate(l: LookupTable, value: SqlValue, why: string): VtError {
  const shown = l.system
    ? `(${ownerMatch(l, value)
        .values.map((v) => (typeof v === "string" ? `'${v}'` : String(v)))
        .join(", ")})`
    : String(value);
  const what = l.system ? `${l.column} (keyspace-wide unique key)` : `${l.column} (lookup vindex ${l.name})`;
  return new VtError("CONSTRAINT", `UNIQUE constraint failed: ${what}: ${shown} ${why}`);
}

/**
 * The keyspace id each value's unique lookup row names now (undefined: no row), aligned with
 * `values` (NULL has none). One IN read per chunk, never a compound SELECT (SQLite caps its
 * terms, Durable Objects far below 500). For a vindex's own table each value is also compared
 * as `from = ?` in the select list, so the lookup column's affinity applies as it did when the
 * row was written (5 finds '5') without converting values at the gate; a system table's keys
 * are canonical text, compared as they are.
 */
export async function lookupHolders(vc: VCursor, l: LookupTable, values: readonly SqlValue[]): Promise<(Uint8Array | undefined)[]> {
  const out: (Uint8Array | undefined)[] = values.map(() => undefined);
  const live = values.flatMap((v, i) => (v === null ? [] : [{ v, i }]));
  const t = quoteIdent(l.table);
  const from = quoteIdent(l.from);
  const to = quoteIdent(l.to);
  for (let c = 0; c < live.length; c += VALUES_PER_READ) {
    const chunk = live.slice(c, c + VALUES_PER_READ);
    const rows = await lookupQuery(
      vc,
      l,
      chunk,
      ({ v }) => v,
      (g) => {
        const vs = g.map(({ v }) => v);
        const marks = l.system ? from : g.map(() => `${from} = ?`).join(", ");
        return { sql: `SELECT ${to}, ${marks} FROM ${t} WHERE ${from} IN (${g.map(() => "?").join(", ")})`, params: l.system ? vs : [...vs, ...vs] };
      },
      "read",
    );
    chunk.forEach(({ v, i }, k) => {
      const row = rows.find((r) => r[0] instanceof Uint8Array && (l.system ? r[1] === v : Number(r[k + 1]) === 1));
      if (row && row[0] instanceof Uint8Array) out[i] = row[0];
    });
  }
  return out;
}

/**
 * After the owner rows are written: the (value, keyspace id) pairs whose unique lookup row no
 * longer names them, because a concurrent INSERT of the same value took it over in between.
 */
export async function lostLookups(
  vc: VCursor,
  l: LookupTable,
  pairs: readonly (readonly [SqlValue, Uint8Array])[],
): Promise<(readonly [SqlValue, Uint8Array])[]> {
  const live = pairs.filter(([v]) => v !== null);
  if (!l.unique || live.length === 0) return [];
  const now = await lookupHolders(
    vc,
    l,
    live.map(([v]) => v),
  );
  return live.filter((pair, i) => {
    const cur = now[i];
    return !cur || !sameBytes(cur, pair[1]);
  });
}

/** Removes lookup rows for (value, keyspace id) pairs, after the owner rows are gone. */
export async function removeLookupRows(vc: VCursor, l: LookupTable, pairs: readonly (readonly [SqlValue, Uint8Array])[]): Promise<void> {
  const live = pairs.filter(([v]) => v !== null);
  for (let i = 0; i < live.length; i += PAIRS_PER_STATEMENT) {
    const chunk = live.slice(i, i + PAIRS_PER_STATEMENT);
    await lookupQuery(
      vc,
      l,
      chunk,
      ([v]) => v,
      (g) => ({
        sql: `DELETE FROM ${quoteIdent(l.table)} WHERE ${g.map(() => `(${quoteIdent(l.from)} = ? AND ${quoteIdent(l.to)} = ?)`).join(" OR ")}`,
        params: g.flat(),
      }),
      "write",
    );
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Appends to `pairs` (one list per lookup) the (lookup value, keyspace id) of each row read by a
 * pre-delete SELECT of the vindex column, then each lookup's columns in order.
 */
export function addPairsOf(rows: readonly (readonly SqlValue[])[], vindex: Vindex, lookups: readonly LookupTable[], pairs: [SqlValue, Uint8Array][][]): void {
  for (const row of rows) {
    let ksid: Uint8Array;
    try {
      ksid = vindex.map(row[0] ?? null);
    } catch {
      continue;
    }
    let at = 1;
    lookups.forEach((l, i) => {
      const n = l.system ? l.system.columns.length : 1;
      const values = row.slice(at, at + n);
      at += n;
      pairs[i]?.push([l.system ? uniqueKey(values, l.system.columns, l.table, true) : (values[0] ?? null), ksid]);
    });
  }
}

/** The owner columns a pre-delete SELECT reads: the vindex column, then each lookup's columns. */
export function preDeleteColumns(vindexColumn: string, lookups: readonly LookupTable[]): string[] {
  return [vindexColumn, ...lookups.flatMap((l) => (l.system ? l.system.columns.map((c) => c.name) : [l.column]))];
}

/**
 * DELETE from a table that owns lookup vindexes: on each shard, in one transaction, the rows'
 * vindex and lookup values are read (`pre` selects the vindex column, then each lookup's
 * columns in order), then the DELETE runs; once the owner rows are gone, their
 * lookup rows are removed (best effort: the DELETE has committed by then).
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
      addPairsOf(found?.rows ?? [], this.vindex, this.lookups, pairs);
      return deleted;
    });
    // Every shard has committed: the statement's answer is success. A lookup row its removal
    // leaves behind (a lost call) names no row, which reads and later writes already tolerate.
    for (const [i, l] of this.lookups.entries()) await removeLookupRows(vc, l, pairs[i] ?? []).catch(() => undefined);
    return concatResults(results);
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "OwnedDelete", lookups: this.lookups.map((l) => l.name), inputs: [this.route.describe(x)] };
  }
}

/**
 * True when the owner table has a row holding lookup `l`'s `value` whose keyspace id is `ksid`
 * (read on the shard of `ksid`, checking each candidate's vindex value, since other rows there
 * may share the value).
 */
export async function ownerHas(
  vc: VCursor,
  table: string,
  l: LookupTable,
  ksid: Uint8Array,
  value: SqlValue,
  vindex?: Vindex,
  vindexColumn?: string,
): Promise<boolean> {
  const shard = shardForKsid(vc.keyspace, ksid);
  const select = vindex && vindexColumn ? quoteIdent(vindexColumn) : "1";
  const match = ownerMatch(l, value);
  const parts: Part[] = [`SELECT ${select} FROM ${quoteIdent(table)} WHERE `];
  match.columns.forEach((c, i) => {
    const v = match.values[i] ?? null;
    parts.push(`${i > 0 ? " AND " : ""}${quoteIdent(c)} = `, { values: () => [v], empty: "NULL" });
  });
  if (!(vindex && vindexColumn)) parts.push(" LIMIT 1");
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
