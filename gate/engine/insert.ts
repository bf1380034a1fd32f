// Insert: a multi-row INSERT split by shard. Each row goes to the shard its vindex value maps
// to; the rows of one shard travel as one INSERT. Shards commit independently.

import { VtError } from "../../contract/errors.ts";
import type { Vindex } from "../../topology/vindex.ts";
import { MAX_BOUND_PARAMS, paramCount, render, type Bindings, type Part, type Template } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { concatResults, writeEach } from "./route.ts";
import { describeValue, evalValue, routableValue, shardForKsid, type Affinity, type ValueExpr } from "./values.ts";
import {
  addLookupRows,
  addPairsOf,
  duplicate,
  lostLookups,
  ownerHas,
  ownerMatch,
  preDeleteColumns,
  removeLookupRows,
  sameBytes,
  type LookupTable,
} from "./lookup.ts";
import { uniqueKey } from "./unique-key.ts";
import { withFreshIds } from "./fresh-ids.ts";
import { sourceName, type IdSource } from "./sequence.ts";
import { rowsToKeep } from "./insert-ignore.ts";
import { deleteByVindex, deleteReplaced, lastRowsWin } from "./insert-replace.ts";
import { localConflicts, localKeyValues, upsertRows, type UpsertSpec } from "./insert-upsert.ts";
import { groupKey } from "./aggregate.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import { toVtError } from "../../contract/errors.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { quoteIdent, type SqlValue } from "../../contract/sql-values.ts";

export interface InsertRow {
  readonly parts: Template;
  readonly vindexValue: ValueExpr;
  /**
   * With a sequence: what the row writes in the auto-increment column ("omitted" when it is not
   * listed); a NULL or omitted value takes the sequence's next id. Undefined for an expression.
   */
  readonly autoValue?: ValueExpr | "omitted";
  /**
   * The row's values of each lookup's columns (Insert.lookups order; one column for a lookup
   * vindex, the constraint's columns for a keyspace-wide unique key); "auto" is the value the
   * sequence fills in.
   */
  readonly lookupValues?: readonly (readonly (ValueExpr | "auto")[])[];
  /** With an upsert: the row's values of each UpsertSpec.localKeys key ("vindex": the vindex value). */
  readonly localValues?: readonly (readonly (ValueExpr | "vindex" | undefined)[])[];
}

/** A table's auto-increment column and where its ids come from; `vindex` when that column is the vindex column. */
export interface AutoIncrementSpec {
  readonly source: IdSource;
  readonly column: string;
  readonly vindex: boolean;
  /** The column is a key (see FreshIdSpec). */
  readonly keyed: boolean;
  /** The statement resolves conflicts (see FreshIdSpec). */
  readonly resolves: boolean;
}

/** The Bindings slot holding each row's auto-increment value (no statement text can produce a negative id). */
export const AUTO_SLOT = -3;

/** The auto-increment value of row `i`, bound at execution. */
export function autoPart(i: number): Part {
  return { values: (b) => [b.subquery(AUTO_SLOT)[i]?.[0] ?? null], empty: "NULL", size: 1 };
}

export class Insert implements Primitive {
  readonly table: string;
  readonly vindex: Vindex;
  readonly prefix: Template;
  readonly rows: readonly InsertRow[];
  readonly suffix: Template;
  readonly affinity: Affinity;

  readonly auto: AutoIncrementSpec | undefined;
  /** Lookup vindexes the table owns: their rows are added before the owner rows. */
  readonly lookups: readonly LookupTable[];
  /** The vindex column's name (to delete a row that lost a unique lookup race). */
  readonly vindexColumn: string | undefined;

  /** Per lookup: true when the statement skips rows whose value is taken (OR IGNORE, DO NOTHING on that key). */
  readonly ignore: readonly boolean[];
  /** REPLACE / INSERT OR REPLACE: rows holding a new row's unique lookup values are deleted first. */
  readonly replace: boolean;
  /** The vindex column alone is a UNIQUE / PRIMARY KEY: a REPLACE also replaces the row of the same vindex value on its shard. */
  readonly replacesByVindex: boolean;
  /** ON CONFLICT DO UPDATE with unique lookups: each row updates the row holding its target, wherever it lives (insert-upsert.ts). */
  readonly upsert: UpsertSpec | undefined;
  /** Keys holding the vindex column whose taken values the statement skips (OR IGNORE, DO NOTHING on them); rows give their values in localValues. */
  readonly ignoreLocal: readonly (readonly string[])[];

  constructor(
    table: string,
    vindex: Vindex,
    prefix: Template,
    rows: readonly InsertRow[],
    suffix: Template,
    affinity: Affinity,
    auto?: AutoIncrementSpec,
    lookups: readonly LookupTable[] = [],
    vindexColumn?: string,
    ignore: readonly boolean[] = [],
    replace = false,
    replacesByVindex = false,
    upsert?: UpsertSpec,
    ignoreLocal: readonly (readonly string[])[] = [],
  ) {
    this.upsert = upsert;
    this.ignoreLocal = ignoreLocal;
    this.replacesByVindex = replacesByVindex;
    this.ignore = ignore;
    this.replace = replace;
    this.auto = auto;
    this.lookups = lookups;
    this.vindexColumn = vindexColumn;
    this.affinity = affinity;
    this.table = table;
    this.vindex = vindex;
    this.prefix = prefix;
    this.rows = rows;
    this.suffix = suffix;
  }

  /** Rows that take the sequence's next id. */
  #needIds(b: Bindings): { values: SqlValue[]; need: number[] } {
    const values = this.rows.map((r) => (r.autoValue === undefined || r.autoValue === "omitted" ? null : evalValue(r.autoValue, b)));
    const need = this.rows.flatMap((r, i) => (r.autoValue !== undefined && values[i] === null ? [i] : []));
    return { values, need };
  }

  /** The rows and bindings with every auto-increment value known. */
  #bound(b: Bindings, values: readonly SqlValue[]): { rows: InsertRow[]; b: Bindings } {
    const rows = this.rows.map((r, i) => {
      const literal = { literal: values[i] ?? null };
      const lookupValues = r.lookupValues?.map((vs) => vs.map((v) => (v === "auto" ? literal : v)));
      return { ...r, ...(this.auto?.vindex ? { vindexValue: literal } : {}), ...(lookupValues ? { lookupValues } : {}) };
    });
    return { rows, b: b.withSubqueries(new Map([[AUTO_SLOT, values.map((v) => [v])]])) };
  }

  /** Without a sequence call: the rows and bindings when no row needs a new id, else undefined. */
  boundWithoutIds(b: Bindings): { rows: readonly InsertRow[]; b: Bindings } | undefined {
    if (!this.auto) return { rows: this.rows, b };
    const { values, need } = this.#needIds(b);
    return need.length > 0 ? undefined : this.#bound(b, values);
  }

  async execute(vc: VCursor, bindings: Bindings): Promise<QueryResult> {
    let b = bindings;
    let rows: readonly InsertRow[] = this.rows;
    if (this.auto) {
      const { values, need } = this.#needIds(bindings);
      if (need.length > 0) {
        const explicit = values.filter((_, i) => !need.includes(i));
        return withFreshIds(vc, { ...this.auto, table: this.table }, need.length, explicit, (ids) => {
          need.forEach((at, k) => {
            values[at] = ids[k] ?? null;
          });
          const bound = this.#bound(bindings, values);
          return this.#write(vc, bound.b, bound.rows);
        });
      }
      ({ rows, b } = this.#bound(bindings, values));
    }
    return this.#write(vc, b, rows);
  }

  async #write(vc: VCursor, b: Bindings, given: readonly InsertRow[]): Promise<QueryResult> {
    let rows = given;
    if (this.upsert && this.vindexColumn !== undefined) {
      return upsertRows(
        vc,
        b,
        {
          table: this.table,
          vindex: this.vindex,
          vindexColumn: this.vindexColumn,
          lookups: this.lookups,
          suffix: this.suffix,
          spec: this.upsert,
          pairs: (rs) => this.#lookupPairs(vc, b, rs),
          // A row its shard turned into an update (a conflict that appeared meanwhile) leaves its lookup rows holding nothing: removed.
          insert: (rs) => this.#writeRows(vc, b, rs, this.#lookupPairs(vc, b, rs), true),
        },
        rows,
      );
    }
    let lookupPairs = this.#lookupPairs(vc, b, rows);
    const ignoring = this.ignore.some(Boolean) || this.ignoreLocal.length > 0;
    if (ignoring) {
      // Rows whose unique value is taken are skipped before anything is written.
      // A row its own shard will skip (its local key taken) claims no lookup value, and holds none an earlier row repeats.
      const local = await localConflicts(vc, b, this.table, this.vindex, rows, this.ignoreLocal);
      const localKeys = rows.map((r) =>
        this.ignoreLocal.flatMap((cols, k) => {
          const vs = localKeyValues(r, k, cols.length, b);
          return vs?.every((v) => v !== null && v !== undefined)
            ? [
                `${k}:${groupKey(
                  vs,
                  vs.map(() => "BINARY"),
                )}`,
              ]
            : [];
        }),
      );
      const keep = await rowsToKeep(
        vc,
        this.lookups,
        this.ignore,
        lookupPairs,
        rows.length,
        (l, ksid, value) => ownerHas(vc, this.table, l, ksid, value, this.vindex, this.vindexColumn),
        { held: local.map((cs) => cs.some((c) => c !== undefined)), keys: localKeys },
      );
      rows = rows.filter((_, r) => keep[r]);
      lookupPairs = lookupPairs.map((p) => p.filter((_, r) => keep[r]));
      if (rows.length === 0) return { columns: [], rows: [], rowsAffected: 0 };
    }
    let replaced = 0;
    // Rows a later row of the statement replaces: SQLite inserts them (and counts them) before deleting them again.
    let superseded = 0;
    if (this.replace && this.lookups.length > 0 && this.vindexColumn !== undefined) {
      replaced = await deleteReplaced(vc, { table: this.table, vindex: this.vindex, vindexColumn: this.vindexColumn, lookups: this.lookups }, lookupPairs);
      const byVindex = this.replacesByVindex ? rows.map((r) => groupKey([evalValue(r.vindexValue, b)], ["BINARY"])) : [];
      const keep = lastRowsWin(this.lookups, lookupPairs, rows.length, byVindex);
      superseded = keep.filter((k) => !k).length;
      if (this.replacesByVindex && superseded > 0) {
        const target = { table: this.table, vindex: this.vindex, vindexColumn: this.vindexColumn, lookups: this.lookups };
        await deleteByVindex(
          vc,
          target,
          rows.flatMap((r, i) => (keep[i] ? [] : [evalValue(r.vindexValue, b)])),
        );
      }
      rows = rows.filter((_, r) => keep[r]);
      lookupPairs = lookupPairs.map((p) => p.filter((_, r) => keep[r]));
    }
    try {
      const out = await this.#writeRows(vc, b, rows, lookupPairs, ignoring);
      return superseded > 0 ? { ...out, rowsAffected: out.rowsAffected + superseded } : out;
    } catch (e) {
      if (replaced === 0) throw e;
      const vt = toVtError(e);
      throw new VtError(vt.code, `${vt.message} (before it, the ${replaced} row(s) it replaced were deleted)`, { ...vt, replacedRows: replaced });
    }
  }

  async #writeRows(
    vc: VCursor,
    b: Bindings,
    rows: readonly InsertRow[],
    lookupPairs: [SqlValue, Uint8Array, string][][],
    ignoring: boolean,
  ): Promise<QueryResult> {
    const { byShard, lastShard } = this.rowsByShard(vc.keyspace, b, rows);
    const shards = [...byShard.keys()];
    try {
      await this.#addLookups(vc, lookupPairs);
    } catch (e) {
      // A refused value (a taken unique one): the rows' other lookup rows go again.
      await this.#dropOrphanLookups(vc, lookupPairs, new Set());
      throw e;
    }
    let results: QueryResult[];
    // REPLACE over a unique vindex column: each shard also reads, in the insert's transaction, the rows it replaces by that column, so their lookup rows can go after them.
    const replacedHere: [SqlValue, Uint8Array][][] = this.lookups.map(() => []);
    const readReplaced = this.replace && this.replacesByVindex && this.lookups.length > 0 && this.vindexColumn !== undefined;
    try {
      results = await writeEach(shards, async (s) => {
        const mine = byShard.get(s) ?? [];
        const queries = this.statements(mine).map((parts) => ({ ...render(parts, b), kind: "insert" as const }));
        if (!readReplaced || this.vindexColumn === undefined) {
          // Several statements for one shard still commit as one transaction.
          return concatResults(await vc.execute(s, queries));
        }
        const cols = preDeleteColumns(this.vindexColumn, this.lookups).map(quoteIdent).join(", ");
        const pre = render(
          [
            `SELECT ${cols} FROM ${quoteIdent(this.table)} WHERE ${quoteIdent(this.vindexColumn)} IN (`,
            { values: (x: Bindings) => mine.map((r) => evalValue(r.vindexValue, x)), empty: "NULL" },
            ")",
          ],
          b,
        );
        const [found, ...done] = await vc.execute(s, [{ ...pre, kind: "read" }, ...queries]);
        addPairsOf(found?.rows ?? [], this.vindex, this.lookups, replacedHere);
        return concatResults(done);
      });
    } catch (e) {
      // Lookup rows of owner rows that were not written would only cost a read an extra shard; remove them anyway.
      await this.#dropOrphanLookups(vc, lookupPairs, new Set((toVtError(e)["committedShards"] as string[] | undefined) ?? []));
      throw e;
    }
    if (readReplaced) {
      // The replaced rows' lookup rows, except those the new rows hold again (same value, same keyspace id).
      for (const [i, l] of this.lookups.entries()) {
        const now = lookupPairs[i] ?? [];
        const stale = (replacedHere[i] ?? []).filter(([v, k]) => !now.some(([nv, nk]) => sameBytes(nk, k) && (l.system ? nv === v : !surelyDiffer(nv, v))));
        await removeLookupRows(vc, l, stale);
      }
    }
    await this.#verifyLookups(vc, b, rows, lookupPairs, shards);
    // A row a shard ignored itself (its own key taken there) leaves lookup rows holding nothing: removed.
    if (ignoring) await this.#dropOrphanLookups(vc, lookupPairs, new Set());
    const out = concatResults(results);
    const last = results[shards.indexOf(lastShard)];
    if (last?.lastInsertRowid !== undefined) out.lastInsertRowid = last.lastInsertRowid;
    else delete out.lastInsertRowid;
    return out;
  }

  /** Each lookup's (value, keyspace id, shard) for every row. */
  #lookupPairs(vc: VCursor, b: Bindings, rows: readonly InsertRow[]): [SqlValue, Uint8Array, string][][] {
    if (this.lookups.length === 0) return [];
    const placed = rows.map((r) => {
      const ksid = this.ksidOf(evalValue(r.vindexValue, b));
      return { ksid, shard: shardForKsid(vc.keyspace, ksid) };
    });
    return this.lookups.map((_, i) =>
      rows.map((r, k): [SqlValue, Uint8Array, string] => {
        const l = this.lookups[i] as LookupTable;
        const values = (r.lookupValues?.[i] ?? []).map((v) => (v === "auto" ? null : evalValue(v, b)));
        const p = placed[k] as { ksid: Uint8Array; shard: string };
        if (l.system?.rowid && values[0] === null) {
          throw unsupportedError(
            "VD2404",
            `INSERT into ${this.table} with a NULL INTEGER PRIMARY KEY ${l.column} (each shard would pick its own rowid; the table is sharded by ${this.vindexColumn ?? "another column"}, and its auto_increment fills another column): give the id`,
          );
        }
        return [l.system ? uniqueKey(values, l.system.columns, this.table) : (values[0] ?? null), p.ksid, p.shard];
      }),
    );
  }

  /** Adds the lookup rows of every row, before the rows themselves. */
  async #addLookups(vc: VCursor, pairs: readonly [SqlValue, Uint8Array, string][][]): Promise<void> {
    for (const [i, l] of this.lookups.entries()) {
      await addLookupRows(
        vc,
        l,
        (pairs[i] ?? []).map(([v, k]) => [v, k] as const),
        (ksid, value) => ownerHas(vc, this.table, l, ksid, value, this.vindex, this.vindexColumn),
      );
    }
  }

  /**
   * After a failed INSERT: removes the lookup rows it may have added for rows not written (shards
   * outside `committed`), keeping any that an existing row holds (the same value on the same
   * keyspace id belongs to that row).
   */
  async #dropOrphanLookups(vc: VCursor, pairs: readonly [SqlValue, Uint8Array, string][][], committed: ReadonlySet<string>): Promise<void> {
    await Promise.all(
      this.lookups.map(async (l, i) => {
        const orphans: (readonly [SqlValue, Uint8Array])[] = [];
        for (const [v, k, shard] of pairs[i] ?? []) {
          if (v === null || committed.has(shard)) continue;
          if (!(await ownerHas(vc, this.table, l, k, v, this.vindex, this.vindexColumn))) orphans.push([v, k]);
        }
        await removeLookupRows(vc, l, orphans);
      }),
    ).catch(() => undefined);
  }

  /**
   * A unique lookup row another INSERT took over while this one wrote its rows: that INSERT keeps
   * the value, and this one's rows holding it are deleted again (CONSTRAINT), so the value is
   * never held twice.
   */
  async #verifyLookups(
    vc: VCursor,
    b: Bindings,
    rows: readonly InsertRow[],
    pairs: readonly (readonly [SqlValue, Uint8Array, string])[][],
    shards: readonly string[],
  ): Promise<void> {
    for (const [i, l] of this.lookups.entries()) {
      const mine = pairs[i] ?? [];
      const lost = await lostLookups(
        vc,
        l,
        mine.map(([v, k]) => [v, k] as const),
      );
      if (lost.length === 0) continue;
      for (const [v, k] of lost) {
        const at = mine.findIndex(([mv, mk]) => mk === k && mv === v);
        const row = rows[at];
        const shard = mine[at]?.[2];
        if (!row || shard === undefined || !this.vindexColumn) continue;
        const match = ownerMatch(l, v);
        const parts: Part[] = [`DELETE FROM ${quoteIdent(this.table)} WHERE `];
        match.columns.forEach((c, j) => {
          parts.push(`${quoteIdent(c)} = `, { values: () => [match.values[j] ?? null], empty: "NULL" }, " AND ");
        });
        parts.push(`${quoteIdent(this.vindexColumn)} = `, { values: () => [evalValue(row.vindexValue, b)], empty: "NULL" });
        await vc.execute(shard, [{ ...render(parts, b), kind: "write" }]);
      }
      // The statement's other rows stay written: the error says so, as a multi-shard failure does.
      throw new VtError(
        "CONSTRAINT",
        `${duplicate(l, lost[0]?.[0] ?? null, "was inserted concurrently").message}; the rows holding ${lost.length === 1 ? "it were" : "those values were"} not kept (the statement's other rows were)`,
        { committedShards: [...shards] },
      );
    }
  }

  /** The rows of one shard as INSERT statements of at most 100 placeholders each (the DO's bind limit). */
  statements(rows: readonly InsertRow[]): Part[][] {
    const fixed = paramCount(this.prefix) + paramCount(this.suffix);
    const out: Part[][] = [];
    let cur: Part[] | null = null;
    let params = 0;
    for (const row of rows) {
      const n = paramCount(row.parts);
      if (cur !== null && fixed + params + n > MAX_BOUND_PARAMS) {
        out.push([...cur, ...this.suffix]);
        cur = null;
      }
      if (cur === null) {
        cur = [...this.prefix];
        params = 0;
      } else {
        cur.push(", ");
      }
      cur.push(...row.parts);
      params += n;
    }
    if (cur !== null) out.push([...cur, ...this.suffix]);
    return out;
  }

  /** The shard of one row; a value SQLite would convert before storing is refused, not misplaced. */
  shardOf(ks: KeyspaceGraph, value: SqlValue): string {
    return shardForKsid(ks, this.ksidOf(value));
  }

  /**
   * The keyspace id of a row's vindex value. SQLite would store the value, so a value the vindex
   * cannot place is refused for a sharding reason (UNSUPPORTED with an id), never misplaced.
   */
  ksidOf(value: SqlValue): Uint8Array {
    if (value === null) {
      throw unsupportedError(
        "VD2605",
        `INSERT into ${this.table}: a NULL vindex value is not supported across shards (the row would have no shard; no sequence is configured for it: see auto_increment in the vschema)`,
      );
    }
    if (!routableValue(value, this.affinity)) {
      throw unsupportedError(
        "VD2606",
        this.affinity === "REAL"
          ? `INSERT into ${this.table}: ${String(value)} cannot be stored exactly in its REAL vindex column, so it cannot be placed by its value`
          : `INSERT into ${this.table}: '${String(value)}' is not a canonical integer for its ${this.affinity} vindex column, so SQLite would store another value than the one it is placed by; send the number`,
      );
    }
    try {
      return this.vindex.map(value);
    } catch (e) {
      const vt = toVtError(e);
      if (vt.code !== "INVALID_ARGUMENT") throw e;
      throw unsupportedError("VD2606", `INSERT into ${this.table}: ${vt.message}, so the row cannot be placed by its vindex value`);
    }
  }

  describe(x?: Explain): PlanDescription {
    return {
      operator: "Insert",
      table: this.table,
      vindex: this.vindex.type,
      rows: this.rows.map((r) =>
        this.auto?.vindex && (r.autoValue === "omitted" || (r.vindexValue && "literal" in r.vindexValue && r.vindexValue.literal === null))
          ? `next from ${sourceName(this.auto.source)}`
          : describeValue(r.vindexValue),
      ),
      ...(x ? { shards: this.explainShards(x) } : {}),
    };
  }

  /** Per shard, the statements it would get (VEXPLAIN): nothing is executed. */
  explainShards(x: Explain): Record<string, { sql: string; params: SqlValue[] }[]> {
    const out: Record<string, { sql: string; params: SqlValue[] }[]> = {};
    const bound = this.boundWithoutIds(x.bindings);
    if (!bound) return { "(decided by the sequence's ids at execution)": [] };
    for (const [shard, rows] of this.rowsByShard(x.keyspace, bound.b, bound.rows).byShard) {
      out[shard] = this.statements(rows).map((parts) => render(parts, bound.b));
    }
    return out;
  }

  /** The rows grouped by the shard each goes to, and the shard of the statement's last row. */
  rowsByShard(ks: KeyspaceGraph, b: Bindings, rows: readonly InsertRow[] = this.rows): { byShard: Map<string, InsertRow[]>; lastShard: string } {
    const byShard = new Map<string, InsertRow[]>();
    let lastShard = "";
    for (const row of rows) {
      const shard = this.shardOf(ks, evalValue(row.vindexValue, b));
      const rows = byShard.get(shard);
      if (rows) rows.push(row);
      else byShard.set(shard, [row]);
      lastShard = shard;
    }
    return { byShard, lastShard };
  }
}

/**
 * True when a value read back from a lookup column and a value written to it surely differ once
 * stored (both text, or both BLOBs, and unequal); otherwise the lookup column's affinity could
 * make them one value, so the lookup row is kept (at worst an extra row, never a missing one).
 */
function surelyDiffer(written: SqlValue, stored: SqlValue): boolean {
  if (written === null) return true;
  if (typeof written === "string" && typeof stored === "string") return written !== stored;
  if (written instanceof Uint8Array && stored instanceof Uint8Array) return !sameBytes(written, stored);
  return false;
}

/** The Bindings slot holding an INSERT … SELECT's rows (no statement text can produce a negative id). */
export const INSERT_ROWS_SLOT = -2;

/**
 * INSERT … SELECT across shards: the SELECT runs first (planned like any read, whole), then its
 * rows are inserted as an Insert of bound values, each row on the shard of its vindex value. As
 * SQLite does, the SELECT is read in full before the first row is written.
 */
export class InsertSelect implements Primitive {
  readonly select: Primitive;
  readonly spec: {
    table: string;
    vindex: Vindex;
    prefix: Template;
    suffix: Template;
    affinity: Affinity;
    /** Columns the SELECT gives. */
    width: number;
    /** Position of the vindex column among the inserted columns (-1: it is the omitted auto-increment column). */
    vindexColumn: number;
    /** The auto-increment column, and where it is among the SELECT's columns (-1: omitted, so it goes first). */
    auto?: AutoIncrementSpec & { at: number };
    /** The vindex column's name. */
    vindexColumnName?: string;
    /** Per lookup: a taken value skips the row (OR IGNORE / DO NOTHING), see Insert.ignore. */
    ignore?: readonly boolean[];
    /** REPLACE / INSERT OR REPLACE, see Insert.replace and Insert.replacesByVindex. */
    replace?: boolean;
    replacesByVindex?: boolean;
    /**
     * TEXT columns that place the row (vindex, lookup), by position among the SELECT's columns,
     * with whether an integral number there is surely an INTEGER (planner/insert-select-values.ts).
     */
    textPlacing?: readonly { at: number; column: string; exact: boolean }[];
    /** ON CONFLICT DO UPDATE (see Insert.upsert), and where each of its local keys' columns is among the SELECT's columns. */
    upsert?: UpsertSpec;
    localAt?: readonly (readonly (number | "vindex")[])[];
    /** Lookups the table owns, and where each of their columns is among the SELECT's columns (-1: not given; "auto": the sequence's column). */
    lookups?: readonly { table: LookupTable; at: readonly (number | "auto")[] }[];
  };

  constructor(select: Primitive, spec: InsertSelect["spec"]) {
    this.select = select;
    this.spec = spec;
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const selected = (await this.select.execute(vc, b)).rows;
    const { width, auto } = this.spec;
    for (const row of selected) if (row.length !== width) throw new VtError("INVALID_ARGUMENT", `the SELECT gives ${row.length} values for ${width} columns`);
    for (const p of this.spec.textPlacing ?? []) {
      for (const row of selected) {
        const v = row[p.at];
        // A REAL reached the gate as a JS number (1.0 as 1): SQLite stores its text ('1.0'), which the gate does not compute.
        if (typeof v === "number" && (!p.exact || !Number.isSafeInteger(v))) {
          throw unsupportedError(
            "VD2603",
            `INSERT … SELECT into ${this.spec.table}: the number ${String(v)} as the value of TEXT column ${p.column}, which places the row, may be a REAL whose stored text the gate does not compute; CAST it AS TEXT in the SELECT`,
          );
        }
      }
    }
    let rows: SqlValue[][] = selected.map((r) => [...r]);
    let vindexColumn = this.spec.vindexColumn;
    if (!auto) return this.#insert(vc, b, rows, vindexColumn);
    let at = auto.at;
    if (at < 0) {
      rows = rows.map((r) => [null, ...r]);
      at = 0;
      vindexColumn = vindexColumn < 0 ? 0 : vindexColumn + 1;
    }
    const need = rows.flatMap((r, i) => (r[at] === null ? [i] : []));
    if (need.length === 0) return this.#insert(vc, b, rows, vindexColumn);
    const explicit = rows.flatMap((r) => (r[at] === null ? [] : [r[at] ?? null]));
    return withFreshIds(vc, { ...auto, table: this.spec.table }, need.length, explicit, (ids) => {
      need.forEach((i, k) => {
        (rows[i] as SqlValue[])[at] = ids[k] ?? null;
      });
      return this.#insert(vc, b, rows, vindexColumn);
    });
  }

  /** Inserts the SELECT's rows (every auto-increment value known) as an Insert of bound values. */
  #insert(vc: VCursor, b: Bindings, rows: readonly SqlValue[][], vindexColumn: number): Promise<QueryResult> {
    const { width, auto } = this.spec;
    const w = rows[0]?.length ?? width;
    const shift = auto && auto.at < 0 ? 1 : 0;
    const lookups = this.spec.lookups ?? [];
    const inserts: InsertRow[] = rows.map((row, i) => ({
      parts: ["(", { values: (x: Bindings) => x.subquery(INSERT_ROWS_SLOT)[i] ?? [], empty: "NULL", size: w }, ")"],
      vindexValue: { literal: row[vindexColumn] ?? null },
      lookupValues: lookups.map((l) =>
        l.at.map((at) => ({ literal: at === "auto" ? (row[auto && auto.at >= 0 ? auto.at : 0] ?? null) : at < 0 ? null : (row[at + shift] ?? null) })),
      ),
      ...(this.spec.localAt
        ? { localValues: this.spec.localAt.map((k) => k.map((at) => (at === "vindex" ? at : at < 0 ? undefined : { literal: row[at + shift] ?? null }))) }
        : {}),
    }));
    if (inserts.length === 0) return Promise.resolve({ columns: [], rows: [], rowsAffected: 0 });
    const insert = new Insert(
      this.spec.table,
      this.spec.vindex,
      this.spec.prefix,
      inserts,
      this.spec.suffix,
      this.spec.affinity,
      undefined,
      lookups.map((l) => l.table),
      this.spec.vindexColumnName,
      this.spec.ignore,
      this.spec.replace,
      this.spec.replacesByVindex,
      this.spec.upsert,
    );
    return insert.execute(vc, b.withSubqueries(new Map([[INSERT_ROWS_SLOT, rows]])));
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "InsertSelect", table: this.spec.table, vindex: this.spec.vindex.type, inputs: [this.select.describe(x)] };
  }
}
