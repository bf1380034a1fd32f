// UPDATE of columns a table's lookups cover (lookup vindexes, keyspace-wide unique keys): the
// lookup rows move with the values, in the order that never hides a row (lookup.ts).
//
// 1. Each shard reads the rows the UPDATE will change: their vindex value, each moved lookup's
//    columns as they are and as the SET makes them (the SET's own expressions, evaluated on the
//    old row as SQLite's UPDATE does). Nothing is written yet, so a refused value (VD2400), a
//    duplicate (CONSTRAINT) or an outcome that would depend on SQLite's row order (VD2414) changes
//    nothing.
// 2. The new values' lookup rows are added (a unique one refuses a value another existing row
//    holds, wherever it lives, or two rows of the statement taking the same value).
// 3. Each shard runs the same read again and the UPDATE, in one transaction; the read is what
//    the UPDATE changed. A new value step 2 did not claim (the rows changed in between) is claimed
//    now; a claim another write took over meanwhile (lookup.ts lostLookups) sets those rows' key
//    columns back and fails with CONSTRAINT.
// 4. The old values' lookup rows are removed, and claims no row holds.
// A failure at 2 leaves only lookup rows no row holds, which are removed (they would at worst
// make a read visit one more shard); a shard failing at 3 after others committed is the general
// multi-shard write limit, and afterwards every lookup row the statement touched is kept only
// when a row holds it.

import { toVtError, VtError } from "../../contract/errors.ts";
import { unsupportedError } from "../../topology/refusals.ts";
import { quoteIdent, type SqlValue } from "../../contract/sql-values.ts";
import type { Vindex } from "../../topology/vindex.ts";
import { Bindings, render, type Part, type Template } from "../sql/template.ts";
import { groupKey } from "./aggregate.ts";
import { addLookupRows, duplicate, lostLookups, ownerHas, removeLookupRows, sameBytes, type LookupTable } from "./lookup.ts";
import type { Explain, PlanDescription, Primitive, QueryResult, VCursor } from "./primitive.ts";
import { concatResults, writeEach, type Route } from "./route.ts";
import { uniqueKey } from "./unique-key.ts";

type Pair = readonly [SqlValue, Uint8Array];

/** One row's change of one lookup. */
interface Move {
  readonly shard: string;
  readonly vindexValue: SqlValue;
  readonly ksid: Uint8Array;
  /** The lookup values, before and after (for a system key: uniqueKey() of its columns). */
  readonly old: SqlValue;
  readonly now: SqlValue;
  /** The key's columns as stored before (to set them back). */
  readonly oldColumns: readonly SqlValue[];
}

export class OwnedUpdate implements Primitive {
  readonly route: Route;
  /** SELECT <vindex column>, then per lookup its columns, then per lookup its columns as the SET makes them, FROM … WHERE …. */
  readonly pre: Template;
  readonly table: string;
  readonly vindex: Vindex;
  readonly vindexColumn: string;
  /** The lookups whose columns the SET assigns. */
  readonly lookups: readonly LookupTable[];

  constructor(route: Route, pre: Template, table: string, vindex: Vindex, vindexColumn: string, lookups: readonly LookupTable[]) {
    this.route = route;
    this.pre = pre;
    this.table = table;
    this.vindex = vindex;
    this.vindexColumn = vindexColumn;
    this.lookups = lookups;
  }

  #width(l: LookupTable): number {
    return l.system ? l.system.columns.length : 1;
  }

  /** Per lookup, the moves of the rows a pre-read found on `shard`. */
  #moves(shard: string, rows: readonly (readonly SqlValue[])[], into: Move[][]): void {
    for (const row of rows) {
      const vindexValue = row[0] ?? null;
      const ksid = this.vindex.map(vindexValue);
      let at = 1;
      const olds = this.lookups.map((l) => {
        const v = row.slice(at, at + this.#width(l));
        at += this.#width(l);
        return v;
      });
      this.lookups.forEach((l, i) => {
        const before = olds[i] ?? [];
        const after = row.slice(at, at + this.#width(l));
        at += this.#width(l);
        const old = l.system ? uniqueKey(before, l.system.columns, this.table, true) : (before[0] ?? null);
        const now = l.system ? uniqueKey(after, l.system.columns, this.table) : (after[0] ?? null);
        into[i]?.push({ shard, vindexValue, ksid, old, now, oldColumns: before });
      });
    }
  }

  #ownerHas(vc: VCursor, l: LookupTable): (ksid: Uint8Array, value: SqlValue) => Promise<boolean> {
    return (ksid, value) => ownerHas(vc, this.table, l, ksid, value, this.vindex, this.vindexColumn);
  }

  async execute(vc: VCursor, b: Bindings): Promise<QueryResult> {
    const shards = this.route.shards(vc.keyspace, b);
    const pre = { ...render(this.pre, b), kind: "read" as const };
    const upd = { ...render(this.route.spec.template, b), kind: "write" as const };
    // 1. What will change.
    const planned: Move[][] = this.lookups.map(() => []);
    for (const s of shards) {
      const [r] = await vc.execute(s, [pre]);
      this.#moves(s, r?.rows ?? [], planned);
    }
    this.#checkOrder(planned);
    // 2. Claim the new values.
    const claimed: Pair[][] = planned.map((ms, i) => claims(this.lookups[i] as LookupTable, ms));
    try {
      for (const [i, l] of this.lookups.entries()) await addLookupRows(vc, l, claimed[i] ?? [], this.#ownerHas(vc, l));
    } catch (e) {
      await this.#dropUnheld(vc, claimed);
      throw e;
    }
    // 3. Update, reading in the same transaction what changes.
    const done: Move[][] = this.lookups.map(() => []);
    let results: QueryResult[];
    try {
      results = await writeEach(shards, async (s) => {
        const [found, updated] = await vc.execute(s, [pre, upd]);
        this.#moves(s, found?.rows ?? [], done);
        return updated ?? { columns: [], rows: [], rowsAffected: 0 };
      });
    } catch (e) {
      await this.#dropUnheld(
        vc,
        claimed.map((c, i) => [...c, ...olds(this.lookups[i] as LookupTable, done[i] ?? [])]),
      );
      throw e;
    }
    let failure: VtError | undefined;
    const late: Pair[][] = this.lookups.map(() => []);
    for (const [i, l] of this.lookups.entries()) {
      const need = claims(l, done[i] ?? []);
      const have = new Set((claimed[i] ?? []).map(pairKey));
      late[i] = need.filter((p) => !have.has(pairKey(p)));
      let lost: Pair[] = [];
      try {
        if ((late[i] ?? []).length > 0) await addLookupRows(vc, l, late[i] ?? [], this.#ownerHas(vc, l));
        lost = l.unique ? [...(await lostLookups(vc, l, need))] : [];
      } catch (e) {
        if (toVtError(e).code !== "CONSTRAINT") throw e;
        lost = late[i] ?? [];
      }
      if (lost.length > 0) {
        await this.#setBack(vc, l, done[i] ?? [], lost);
        failure ??= new VtError(
          "CONSTRAINT",
          `${duplicate(l, lost[0]?.[0] ?? null, "was taken concurrently").message}; the rows that took it have their old ${l.column} again (their other columns keep the update)`,
        );
      }
    }
    // 4. The old values go, and claims no row holds (after a failure, each only when no row holds it).
    for (const [i, l] of this.lookups.entries()) {
      const stale = olds(l, done[i] ?? []);
      // Every shard has committed: a removal that fails leaves a lookup row no row holds, which
      // reads and later writes tolerate, so it does not turn the answer into an error.
      try {
        await removeLookupRows(vc, l, l.unique && !failure ? stale : await this.#unheld(vc, l, stale));
        const need = new Set(claims(l, done[i] ?? []).map(pairKey));
        const extra = [...(claimed[i] ?? []), ...(late[i] ?? [])].filter((p) => failure || !need.has(pairKey(p)));
        await removeLookupRows(vc, l, await this.#unheld(vc, l, extra));
      } catch {
        // Left for a later write to take over (lookup.ts addUnique).
      }
    }
    if (failure) throw failure;
    return concatResults(results);
  }

  /**
   * A row taking a unique value another row of the statement gives up succeeds or fails in SQLite
   * by the order it visits the rows, which the gate does not know: refused.
   */
  #checkOrder(planned: readonly Move[][]): void {
    for (const [i, l] of this.lookups.entries()) {
      if (!l.unique) continue;
      const moves = (planned[i] ?? []).filter(changed);
      const leaving = new Set(moves.map((m) => valueKey(m.old)));
      for (const m of moves) {
        if (m.now !== null && leaving.has(valueKey(m.now))) {
          throw unsupportedError(
            "VD2414",
            `UPDATE of ${l.column} of ${this.table} giving one row a value another row of the same UPDATE gives up (SQLite's answer depends on the order it updates them); update them in separate statements`,
          );
        }
      }
    }
  }

  /** The pairs among `pairs` that no row holds. */
  async #unheld(vc: VCursor, l: LookupTable, pairs: readonly Pair[]): Promise<Pair[]> {
    const out: Pair[] = [];
    for (const [v, k] of pairs) if (v !== null && !(await ownerHas(vc, this.table, l, k, v, this.vindex, this.vindexColumn))) out.push([v, k]);
    return out;
  }

  async #dropUnheld(vc: VCursor, pairs: readonly (readonly Pair[])[]): Promise<void> {
    for (const [i, l] of this.lookups.entries()) {
      await removeLookupRows(vc, l, await this.#unheld(vc, l, pairs[i] ?? [])).catch(() => undefined);
    }
  }

  /** Sets the key columns of the rows holding `lost` back to what they were. */
  async #setBack(vc: VCursor, l: LookupTable, moves: readonly Move[], lost: readonly Pair[]): Promise<void> {
    const cols = l.system ? l.system.columns.map((c) => c.name) : [l.column];
    for (const [v, k] of lost) {
      const m = moves.find((x) => x.now === v && sameBytes(x.ksid, k));
      if (!m) continue;
      const parts: Part[] = [`UPDATE ${quoteIdent(this.table)} SET `];
      cols.forEach((c, j) => {
        parts.push(j > 0 ? ", " : "", `${quoteIdent(c)} = `, { values: () => [m.oldColumns[j] ?? null], empty: "NULL" });
      });
      parts.push(` WHERE ${quoteIdent(this.vindexColumn)} = `, { values: () => [m.vindexValue], empty: "NULL" });
      await vc.execute(m.shard, [{ ...render(parts, new Bindings([])), kind: "write" }]);
    }
  }

  describe(x?: Explain): PlanDescription {
    return { operator: "OwnedUpdate", lookups: this.lookups.map((l) => l.name), inputs: [this.route.describe(x)] };
  }
}

function valueKey(v: SqlValue): string {
  return groupKey([v], ["BINARY"]);
}

function pairKey([v, k]: Pair): string {
  return `${valueKey(v)}\0${Array.from(k).join(",")}`;
}

/**
 * The lookup value changes. For a lookup vindex the new value is the SET's, before the owner
 * column's affinity: one that is not surely another value once stored (5 and '5') keeps its old
 * lookup row too (at worst an extra row, never a missing one).
 */
function changed(m: Move): boolean {
  return valueKey(m.old) !== valueKey(m.now);
}

function surelyOther(m: Move): boolean {
  if (m.old === null || m.now === null) return m.old !== m.now;
  if (typeof m.old === "string" && typeof m.now === "string") return m.old !== m.now;
  if (m.old instanceof Uint8Array && m.now instanceof Uint8Array) return valueKey(m.old) !== valueKey(m.now);
  return typeof m.old === typeof m.now && typeof m.old !== "string" && !(m.old instanceof Uint8Array) && valueKey(m.old) !== valueKey(m.now);
}

/** The (new value, keyspace id) lookup rows the moves need. */
function claims(_l: LookupTable, moves: readonly Move[]): Pair[] {
  return moves.filter((m) => changed(m) && m.now !== null).map((m) => [m.now, m.ksid] as const);
}

/** The (old value, keyspace id) lookup rows the moves leave (a system key's are exact; see surelyOther). */
function olds(l: LookupTable, moves: readonly Move[]): Pair[] {
  return moves.filter((m) => m.old !== null && (l.system ? changed(m) : surelyOther(m))).map((m) => [m.old, m.ksid] as const);
}
