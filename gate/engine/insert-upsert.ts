// INSERT … ON CONFLICT DO UPDATE into a table owning unique lookups (lookup_unique vindexes,
// keyspace-wide unique keys), as on one SQLite database: a row whose conflict target is held by
// an existing row, wherever it lives, updates that row; any other row is inserted.
//
// The gate finds each row's conflicting row first (through the target's lookup, or on the row's
// own shard for a key holding the vindex column). A row without one is inserted as by a plain
// INSERT (lookup rows first), keeping its ON CONFLICT clause, so a conflict appearing meanwhile
// on its own shard is still an upsert there. A row with one is sent, with its ON CONFLICT clause,
// to the conflicting row's shard as
//   INSERT INTO t (cols) SELECT * FROM (VALUES (…)) WHERE EXISTS (<that row>) ON CONFLICT … DO UPDATE …
// where SQLite checks the target's index first (the shard has the key's own UNIQUE index), so
// the row is never inserted there: it updates the existing row with SQLite's own `excluded.`,
// WHERE and RETURNING, or, when the row went meanwhile, does nothing and is tried again. The
// DO UPDATE never changes a unique lookup's columns (the planner refuses it), so updated rows
// keep their lookup rows. Rows of one statement are handled together when no two share a unique
// value, else one at a time in statement order (a later row may update an earlier one).

import { VtError } from "../../contract/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import { quoteIdent, type SqlValue } from "../../contract/sql-values.ts";
import type { Vindex } from "../../topology/vindex.ts";
import { Bindings, render, type Part, type Template } from "../sql/template.ts";
import { groupKey } from "./aggregate.ts";
import type { InsertRow } from "./insert.ts";
import { lookupHolders, ownerHas, ownerMatch, type LookupTable } from "./lookup.ts";
import type { QueryResult, VCursor } from "./primitive.ts";
import { concatResults } from "./route.ts";
import { evalValue, shardForKsid, type ValueExpr } from "./values.ts";

export interface UpsertSpec {
  /** `INSERT INTO t (cols) ` — the statement before its VALUES. */
  readonly head: Template;
  /** Per lookup of the Insert: conflicts are looked for through it (it is the target, or there is none). */
  readonly viaLookup: readonly boolean[];
  /** Unique keys holding the vindex column the target names (all of them when it names none). */
  readonly localKeys: readonly (readonly string[])[];
  /** ON CONFLICT DO UPDATE without a target: a row may conflict on any key. */
  readonly targetless: boolean;
}

/** What the upsert needs of its Insert. */
export interface UpsertTarget {
  readonly table: string;
  readonly vindex: Vindex;
  readonly vindexColumn: string;
  readonly lookups: readonly LookupTable[];
  readonly suffix: Template;
  readonly spec: UpsertSpec;
  /** Each lookup's value of a row (see Insert lookupPairs): [value, keyspace id, shard]. */
  pairs(rows: readonly InsertRow[]): [SqlValue, Uint8Array, string][][];
  /** Inserts rows as a plain INSERT (keeping the statement's ON CONFLICT clause). */
  insert(rows: readonly InsertRow[]): Promise<QueryResult>;
}

/** The row a proposed row conflicts with: its shard and how to name it there. */
export interface Conflict {
  readonly shard: string;
  readonly columns: readonly string[];
  readonly values: readonly SqlValue[];
}

/** How often a row whose conflicting row went meanwhile is tried again. */
const ATTEMPTS = 5;

export async function upsertRows(vc: VCursor, b: Bindings, t: UpsertTarget, rows: readonly InsertRow[]): Promise<QueryResult> {
  const pairs = t.pairs(rows);
  const alone = independent(t, b, rows, pairs);
  if (!alone && t.spec.targetless) {
    // Which row a later one updates would depend on what the earlier ones did, on any of the keys.
    throw unsupportedError(
      "VD2412",
      `ON CONFLICT DO UPDATE without a target into ${t.table} with rows of one statement sharing a unique value; name the conflict target`,
    );
  }
  const groups = alone ? [rows] : rows.map((r) => [r]);
  const results: QueryResult[] = [];
  let lastInsertRowid: number | bigint | undefined;
  for (const group of groups) {
    let pending = group;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= ATTEMPTS) {
        throw new VtError("TX_ABORTED", `INSERT … ON CONFLICT DO UPDATE into ${t.table}: the conflicting row kept changing; try again`, { retryable: true });
      }
      const conflicts = await findConflicts(vc, b, t, pending);
      const inserts = pending.filter((_, i) => !conflicts[i]);
      if (inserts.length > 0) {
        const r = await t.insert(inserts);
        results.push(r);
        if (r.lastInsertRowid !== undefined) lastInsertRowid = r.lastInsertRowid;
      }
      const gone: InsertRow[] = [];
      const byShard = new Map<string, { row: InsertRow; c: Conflict }[]>();
      pending.forEach((row, i) => {
        const c = conflicts[i];
        if (!c) return;
        const list = byShard.get(c.shard);
        if (list) list.push({ row, c });
        else byShard.set(c.shard, [{ row, c }]);
      });
      for (const [shard, list] of byShard) {
        const queries = list.flatMap(({ row, c }) => {
          const exists = whereExists(t.table, c);
          return [
            { ...render(["SELECT ", ...exists], b), kind: "read" as const },
            { ...render([...t.spec.head, "SELECT * FROM (VALUES ", ...row.parts, ") WHERE ", ...exists, ...t.suffix], b), kind: "write" as const },
          ];
        });
        const out = await vc.execute(shard, queries);
        list.forEach(({ row }, k) => {
          const found = out[2 * k]?.rows[0]?.[0];
          if (Number(found) !== 1) gone.push(row);
          else results.push(out[2 * k + 1] ?? { columns: [], rows: [], rowsAffected: 0 });
        });
      }
      pending = gone;
    }
  }
  const res = concatResults(results);
  if (lastInsertRowid !== undefined) res.lastInsertRowid = lastInsertRowid;
  else delete res.lastInsertRowid;
  return res;
}

/** `EXISTS (SELECT 1 FROM t WHERE <the conflicting row's key>)`. */
function whereExists(table: string, c: Conflict): Part[] {
  const parts: Part[] = [`EXISTS (SELECT 1 FROM ${quoteIdent(table)} WHERE `];
  c.columns.forEach((col, j) => {
    parts.push(j > 0 ? " AND " : "", `${quoteIdent(col)} = `, { values: () => [c.values[j] ?? null], empty: "NULL" });
  });
  parts.push(")");
  return parts;
}

/** True when no two rows share a unique lookup value or a vindex value (then their order cannot matter). */
function independent(t: UpsertTarget, b: Bindings, rows: readonly InsertRow[], pairs: readonly (readonly [SqlValue, Uint8Array, string])[][]): boolean {
  if (rows.length < 2) return true;
  const seen = new Set<string>();
  const add = (k: string): boolean => {
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  };
  for (const row of rows) if (!add(`v${groupKey([evalValue(row.vindexValue, b)], ["BINARY"])}`)) return false;
  for (const [i, l] of t.lookups.entries()) {
    if (!l.unique) continue;
    for (const [v] of pairs[i] ?? []) if (v !== null && !add(`${i}:${groupKey([v], ["BINARY"])}`)) return false;
  }
  return true;
}

/** The values of local key `k` of a row, or undefined when one is not known at the gate (an expression). */
export function localKeyValues(row: InsertRow, k: number, width: number, b: Bindings): SqlValue[] | undefined {
  const vs = row.localValues?.[k];
  if (!vs || vs.length !== width) return undefined;
  return vs.map((v: ValueExpr | "vindex" | undefined) => (v === undefined ? undefined : evalValue(v === "vindex" ? row.vindexValue : v, b))) as SqlValue[];
}

/**
 * For each row and each key holding the vindex column (`keys`: their columns), the existing row
 * on the row's own shard holding the row's values of that key (undefined: none, a NULL, or a
 * value the gate does not know). One read per row and key on that shard.
 */
export async function localConflicts(
  vc: VCursor,
  b: Bindings,
  table: string,
  vindex: Vindex,
  rows: readonly InsertRow[],
  keys: readonly (readonly string[])[],
): Promise<(Conflict | undefined)[][]> {
  const out: (Conflict | undefined)[][] = rows.map(() => keys.map(() => undefined));
  if (keys.length === 0) return out;
  const byShard = new Map<string, { r: number; k: number; c: Conflict }[]>();
  rows.forEach((row, r) => {
    const shard = shardForKsid(vc.keyspace, vindex.map(evalValue(row.vindexValue, b)));
    keys.forEach((cols, k) => {
      const values = localKeyValues(row, k, cols.length, b);
      if (!values || values.some((v) => v === null || v === undefined)) return;
      const list = byShard.get(shard) ?? [];
      list.push({ r, k, c: { shard, columns: cols, values } });
      byShard.set(shard, list);
    });
  });
  for (const [shard, list] of byShard) {
    const res = await vc.execute(
      shard,
      list.map(({ c }) => ({ ...render(["SELECT ", ...whereExists(table, c)], new Bindings([])), kind: "read" as const })),
    );
    list.forEach(({ r, k, c }, i) => {
      if (Number(res[i]?.rows[0]?.[0]) === 1) (out[r] as (Conflict | undefined)[])[k] = c;
    });
  }
  return out;
}

/** Each row's conflicting row, if any (undefined: the row is inserted). */
async function findConflicts(vc: VCursor, b: Bindings, t: UpsertTarget, rows: readonly InsertRow[]): Promise<(Conflict | undefined)[]> {
  const found: Conflict[][] = rows.map(() => []);
  const pairs = t.pairs(rows);
  for (const [i, l] of t.lookups.entries()) {
    if (!l.unique || !t.spec.viaLookup[i]) continue;
    const values = (pairs[i] ?? []).map(([v]) => v);
    const holders = await lookupHolders(vc, l, values);
    for (const [r, holder] of holders.entries()) {
      const value = values[r] ?? null;
      // A lookup row left by a failed write names no row: only a row that exists conflicts.
      if (!holder || value === null || !(await ownerHas(vc, t.table, l, holder, value, t.vindex, t.vindexColumn))) continue;
      const m = ownerMatch(l, value);
      found[r]?.push({ shard: shardForKsid(vc.keyspace, holder), columns: m.columns, values: m.values });
    }
  }
  const local = await localConflicts(vc, b, t.table, t.vindex, rows, t.spec.localKeys);
  local.forEach((cs, r) => {
    for (const c of cs) if (c) found[r]?.push(c);
  });
  const out: (Conflict | undefined)[] = [];
  for (const [r, cs] of found.entries()) {
    if (cs.length <= 1 || !t.spec.targetless) {
      out.push(cs[0]);
      continue;
    }
    // Without a target, SQLite updates the first row its checks meet; with several distinct rows that order decides.
    const distinct = new Set<string>();
    for (const c of cs) {
      const parts: Part[] = [`SELECT * FROM ${quoteIdent(t.table)} WHERE `];
      c.columns.forEach((col, j) => {
        parts.push(j > 0 ? " AND " : "", `${quoteIdent(col)} = `, { values: () => [c.values[j] ?? null], empty: "NULL" });
      });
      const [res] = await vc.execute(c.shard, [{ ...render(parts, new Bindings([])), kind: "read" }]);
      for (const row of res?.rows ?? [])
        distinct.add(
          `${c.shard}\0${groupKey(
            row,
            row.map(() => "BINARY"),
          )}`,
        );
    }
    if (distinct.size > 1) {
      throw unsupportedError(
        "VD2412",
        `ON CONFLICT DO UPDATE without a target into ${t.table}: row ${r + 1} conflicts with ${distinct.size} different rows on different unique keys (SQLite's choice among them depends on its check order); name the conflict target`,
      );
    }
    out.push(cs[0]);
  }
  return out;
}
