// Insert: a multi-row INSERT split by shard. Each row goes to the shard its vindex value maps
// to; the rows of one shard travel as one INSERT. Shards commit independently. The lookup rows
// its rows claim are insert-lookups.ts; INSERT … SELECT is insert-select.ts.

import { VtError } from "../../contract/errors.ts";
import type { Vindex } from "../../topology/vindex.ts";
import { MAX_BOUND_PARAMS, paramCount, render, type Bindings, type Part, type Template } from "../sql/template.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { concatResults, writeEach } from "./route.ts";
import { describeValue, evalValue, routableValue, shardForKsid, type Affinity, type ValueExpr } from "./values.ts";
import { addPairsOf, ownerHas, preDeleteColumns, type LookupTable } from "./lookup.ts";
import { addLookups, dropOrphanLookups, dropReplacedLookups, lookupPairsOf, verifyLookups } from "./insert-lookups.ts";
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
  /** A row with a NULL vindex value: SQLite itself fails the statement ("constraint") or skips the row ("skip") for a NOT NULL column (planner/null-vindex.ts); else it is refused. */
  readonly nullVindex: "constraint" | "skip" | "unsupported";

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
    nullVindex: "constraint" | "skip" | "unsupported" = "unsupported",
  ) {
    this.nullVindex = nullVindex;
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
        const explicit = values.filter((v) => v !== null); // the needed positions are exactly nulls, and nulls give no id
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
    // A row without a shard fails the statement before anything is read or written, or is skipped as SQLite skips it.
    if (rows.some((r) => evalValue(r.vindexValue, b) === null)) {
      if (this.nullVindex !== "skip") throw this.#nullVindexError();
      rows = rows.filter((r) => evalValue(r.vindexValue, b) !== null);
      if (rows.length === 0) return { columns: [], rows: [], rowsAffected: 0 };
    }
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
          pairs: (rs) => lookupPairsOf(vc, b, this, rs),
          // A row its shard turned into an update (a conflict that appeared meanwhile) leaves its lookup rows holding nothing: removed.
          insert: (rs) => this.#writeRows(vc, b, rs, lookupPairsOf(vc, b, this, rs), true),
        },
        rows,
      );
    }
    let lookupPairs = lookupPairsOf(vc, b, this, rows);
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
      await addLookups(vc, this, lookupPairs);
    } catch (e) {
      // A refused value (a taken unique one): the rows' other lookup rows go again.
      await dropOrphanLookups(vc, this, lookupPairs, new Set());
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
      await dropOrphanLookups(vc, this, lookupPairs, new Set((toVtError(e)["committedShards"] as string[] | undefined) ?? []));
      throw e;
    }
    if (readReplaced) await dropReplacedLookups(vc, this.lookups, lookupPairs, replacedHere);
    await verifyLookups(vc, b, this, rows, lookupPairs, shards);
    // A row a shard ignored itself (its own key taken there) leaves lookup rows holding nothing: removed.
    if (ignoring) await dropOrphanLookups(vc, this, lookupPairs, new Set());
    const out = concatResults(results);
    const last = results[shards.indexOf(lastShard)];
    if (last?.lastInsertRowid !== undefined) out.lastInsertRowid = last.lastInsertRowid;
    else delete out.lastInsertRowid;
    return out;
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
    if (value === null) throw this.#nullVindexError();
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

  #nullVindexError(): VtError {
    if (this.nullVindex === "constraint") {
      return new VtError("CONSTRAINT", `NOT NULL constraint failed: ${this.table}.${this.vindexColumn ?? "its vindex column"}`, { id: "VD2605" });
    }
    return unsupportedError(
      "VD2605",
      `INSERT into ${this.table}: a NULL vindex value is not supported across shards (the row would have no shard; no sequence is configured for it: see auto_increment in the vschema)`,
    );
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
