// Fresh ids for an INSERT's omitted (or NULL) auto-increment column, never one a row already
// holds. Ids come in blocks (sequence.ts), so a row a user gave an explicit id may hold an id of a
// block some gate has cached. When the column is a key, such an id is refused (the keyspace-wide
// key or the shard's own): if nothing of the statement was written, the gate writes again with
// ids past the table's max (skipping what its cached block holds below that). A statement that resolves conflicts (OR
// IGNORE, REPLACE, ON CONFLICT) would skip or overwrite the row holding the id instead of
// failing, so its ids are first checked to be free.

import { toVtError, VtError } from "../../contract/errors.ts";
import { quoteIdent, type SqlValue } from "../../contract/sql-values.ts";
import { MAX_BOUND_PARAMS } from "../sql/template.ts";
import type { QueryResult, VCursor } from "./primitive.ts";
import { type IdSource, pastMaxId } from "./sequence.ts";

export interface FreshIdSpec {
  readonly source: IdSource;
  readonly table: string;
  /** The column the ids fill. */
  readonly column: string;
  /** The column is a key (INTEGER PRIMARY KEY or UNIQUE): a taken id is refused, or with `resolves`, skipped or replaced. */
  readonly keyed: boolean;
  /** The statement resolves conflicts (OR IGNORE / OR REPLACE / REPLACE / ON CONFLICT). */
  readonly resolves: boolean;
}

/** Attempts with fresh ids before a statement whose ids keep being taken fails. */
const ATTEMPTS = 4;

/**
 * Runs `write` with `count` fresh ids. A CONSTRAINT failure that wrote nothing, where a row holds
 * one of the ids, is retried with ids past the table's max; any other failure is the answer.
 */
export async function withFreshIds(
  vc: VCursor,
  spec: FreshIdSpec,
  count: number,
  explicit: readonly SqlValue[],
  write: (ids: SqlValue[]) => Promise<QueryResult>,
): Promise<QueryResult> {
  // Ids the statement's other rows give: a fresh id never repeats one (SQLite numbers a row past those before it).
  const given = new Set(explicit.flatMap((v) => integerOf(v) ?? []));
  let pastGiven: bigint | undefined;
  for (const v of given) if (pastGiven === undefined || v >= pastGiven) pastGiven = v + 1n;
  let floor: bigint | undefined;
  for (let attempt = 1; ; attempt++) {
    let ids = await vc.nextIds(spec.source, count, floor);
    if (
      spec.keyed &&
      ids.some((id) => {
        const n = integerOf(id);
        return n !== undefined && given.has(n);
      })
    ) {
      floor = floor === undefined || (pastGiven ?? 0n) > floor ? pastGiven : floor;
      ids = await vc.nextIds(spec.source, count, floor);
    }
    if (spec.keyed && spec.resolves && (await anyTaken(vc, spec, ids))) {
      floor = await pastMax(vc, spec);
      if (attempt < ATTEMPTS) continue;
      throw new VtError("CONSTRAINT", `the ids the sequence of ${spec.table}.${spec.column} handed out kept being taken by explicit ids; retry`);
    }
    try {
      return await write(ids);
    } catch (e) {
      const vt = toVtError(e);
      // No row holds one of the ids: the conflict was another key's, and is the answer.
      if (vt.code !== "CONSTRAINT" || !spec.keyed || wroteSomething(vt) || attempt >= ATTEMPTS || !(await anyTaken(vc, spec, ids))) throw vt;
      floor = await pastMax(vc, spec);
    }
  }
}

/** The integer a value is stored as in an INTEGER column, if it is one. */
function integerOf(v: SqlValue): bigint | undefined {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return Number.isInteger(v) ? BigInt(v) : undefined;
  if (typeof v === "string" && /^\s*[+-]?\d{1,19}\s*$/.test(v)) return BigInt(v.trim());
  return undefined;
}

function wroteSomething(vt: VtError): boolean {
  const committed = vt["committedShards"];
  const replaced = vt["replacedRows"];
  return (Array.isArray(committed) && committed.length > 0) || (typeof replaced === "number" && replaced > 0);
}

/** One past the largest integer the column holds (undefined: no integer). */
function pastMax(vc: VCursor, spec: FreshIdSpec): Promise<bigint | undefined> {
  return pastMaxId((sql) => vc.lookupExecute(vc.keyspace.name, sql, []), spec.table, spec.column);
}

/** Whether a row holds any of `ids` in the column. */
async function anyTaken(vc: VCursor, spec: FreshIdSpec, ids: readonly SqlValue[]): Promise<boolean> {
  for (let i = 0; i < ids.length; i += MAX_BOUND_PARAMS) {
    const chunk = ids.slice(i, i + MAX_BOUND_PARAMS);
    const sql = `SELECT 1 FROM ${quoteIdent(spec.table)} WHERE ${quoteIdent(spec.column)} IN (${chunk.map(() => "?").join(", ")}) LIMIT 1`;
    if ((await vc.lookupExecute(vc.keyspace.name, sql, chunk)).rows.length > 0) return true;
  }
  return false;
}
