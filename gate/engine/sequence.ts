// Sequences (as Vitess): a one-row table in an unsharded keyspace,
//   CREATE TABLE user_seq (id INTEGER PRIMARY KEY, next_id INTEGER NOT NULL, cache INTEGER NOT NULL);
//   INSERT INTO user_seq (id, next_id, cache) VALUES (0, 1, 100);
// hands out ids in blocks: the gate reserves `cache` ids at a time with one UPDATE on that
// table's tablet and serves them from memory. Ids are unique and increasing per gate isolate, not
// gap-free: a block an isolate does not use up is skipped.

import { VtError } from "../../contract/errors.ts";
import { quoteIdent, type SqlValue } from "../../contract/sql-values.ts";
import type { BoundQuery, QueryResult } from "../../contract/tablet-rpc.ts";

/**
 * Where an INSERT's fresh ids come from: a sequence table (vschema `auto_increment`), or the
 * keyspace's automatic sequence of a table's INTEGER PRIMARY KEY (kept by the Topology, see
 * topology/id-blocks.ts).
 */
export type IdSource = { readonly sequence: string } | { readonly table: string; readonly column: string };

/** The cache key of a source (sequence tables are keyed by their located keyspace.table). */
export function sourceName(source: IdSource): string {
  return "sequence" in source ? source.sequence : `${source.table} (automatic)`;
}

export interface Block {
  next: bigint;
  end: bigint;
}

/**
 * The statement that reserves a block of at least `count` ids, starting at `floor` or later;
 * RETURNING gives the new next_id and the block's size.
 */
export function reserveQuery(table: string, count: number, floor?: bigint): BoundQuery {
  const t = quoteIdent(table);
  const from = floor === undefined ? "next_id" : "max(next_id, (? + 0))";
  return {
    sql: `UPDATE ${t} SET next_id = ${from} + max(coalesce(cache, 1), (? + 0)) WHERE id = 0 RETURNING next_id, max(coalesce(cache, 1), (? + 0))`,
    params: [...(floor === undefined ? [] : [String(floor)]), String(count), String(count)],
    kind: "write",
  };
}

/** Reads reserveQuery's answer as a block. */
export function blockOf(table: string, rows: readonly (readonly SqlValue[])[]): Block {
  const row = rows[0];
  if (!row) {
    throw new VtError("INVALID_ARGUMENT", `sequence ${table} has no row with id 0; add one: INSERT INTO ${table} (id, next_id, cache) VALUES (0, 1, 100)`);
  }
  const [next, size] = row;
  if ((typeof next !== "number" && typeof next !== "bigint") || (typeof size !== "number" && typeof size !== "bigint")) {
    throw new VtError("INVALID_ARGUMENT", `sequence ${table}: next_id and cache must be integers`);
  }
  const end = BigInt(next);
  return { next: end - BigInt(size), end };
}

export function toValue(v: bigint): SqlValue {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Blocks of ids per sequence, shared by every request of an isolate. */
export class SequenceCache {
  readonly #blocks = new Map<string, Block>();

  /**
   * `count` fresh ids of sequence `key`, reserving a new block through `reserve` when the cached
   * one runs out; with `floor`, cached ids below it are skipped (`reserve` must honour it too).
   */
  async take(key: string, count: number, reserve: (count: number) => Promise<Block>, floor?: bigint): Promise<SqlValue[]> {
    const out: SqlValue[] = [];
    while (out.length < count) {
      const block = this.#blocks.get(key);
      if (block && floor !== undefined && block.next < floor) block.next = floor < block.end ? floor : block.end;
      if (block && block.next < block.end) {
        // Synchronous from check to use: concurrent requests never get the same id.
        while (block.next < block.end && out.length < count) out.push(toValue(block.next++));
        continue;
      }
      const fresh = await reserve(count - out.length);
      const current = this.#blocks.get(key);
      // Another request may have refilled meanwhile; keep its block and use ours first.
      if (current && current.next < current.end && current !== block) {
        while (fresh.next < fresh.end && out.length < count) out.push(toValue(fresh.next++));
        continue;
      }
      this.#blocks.set(key, fresh);
    }
    return out;
  }
}

/** One past the largest integer `column` of `table` holds (undefined: it holds none), read with `run`. */
export async function pastMaxId(run: (sql: string) => Promise<QueryResult>, table: string, column: string): Promise<bigint | undefined> {
  const c = quoteIdent(column);
  const r = await run(`SELECT max(${c}) FROM ${quoteIdent(table)} WHERE typeof(${c}) = 'integer'`);
  const v = r.rows[0]?.[0];
  return typeof v === "number" || typeof v === "bigint" ? BigInt(v) + 1n : undefined;
}
