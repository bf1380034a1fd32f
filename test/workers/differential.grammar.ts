// The grammar of the end-to-end differential test: the Node grammar's statements
// (test/node/statement-gen.ts, query-gen.ts) plus what only the real gate has — /v1/batch steps
// and CREATE / DROP INDEX mid-scenario — and the scenarios that string them together.

import fc from "fast-check";
import { aggQueryArb, rowsQueryArb, type AggQuery, type RowsQuery } from "../node/query-gen.ts";
import { freshIdArb, idRefArb, schemaArb, type IdForm, type IdVal, type Schema, type Val } from "../node/sql-gen.ts";
import { deleteArb, insertArb, updateArb, type InsertStmt, type Where, type WriteStmt } from "../node/statement-gen.ts";

// ---------------------------------------------------------------- steps beyond the Node grammar

/**
 * Statements sent together through /v1/batch. A transaction's statements all target one row
 * (`id = v` with v written so the vindex places it, or a one-row upsert of that id), so they reach
 * one shard: the sharded keyspace must run it, never answer UNSUPPORTED.
 */
export interface BatchStep {
  readonly k: "batch";
  readonly transaction: boolean;
  readonly items: readonly (WriteStmt | RowsQuery | AggQuery)[];
}

/** CREATE INDEX IF NOT EXISTS / DROP INDEX IF EXISTS: answers stay the same, plans and the graph version change. */
export interface IndexStep {
  readonly k: "index";
  readonly drop: boolean;
  readonly n: number;
  readonly col: string;
  readonly nocase: boolean;
  readonly desc: boolean;
}

export type Step = WriteStmt | RowsQuery | AggQuery | BatchStep | IndexStep;

/** Forms of a vindex value the vindex places (odd text such as '42.0' is answered as a scatter). */
const placedFormArb = fc.constantFrom<IdForm>("lit", "param", "text", "textParam");

/**
 * A point WHERE on `id`. Subqueries are taken out: they run before the statement on shards of
 * their own, which a single-shard transaction cannot include (the gate answers UNSUPPORTED).
 */
function pointWhere(w: Where, id: IdVal): Where {
  type P = Where["preds"][number];
  const noSub = (p: P): boolean => {
    const rec = p as { k: string; a?: P; b?: P };
    return rec.k !== "sub" && (rec.k !== "or" || (rec.a !== undefined && rec.b !== undefined && noSub(rec.a) && noSub(rec.b)));
  };
  return { ...w, route: "eq", ids: [id], preds: w.preds.filter(noSub) };
}

function txBatchArb(s: Schema): fc.Arbitrary<BatchStep> {
  return fc.record({ ref: idRefArb, form: placedFormArb, variant: fc.constant(0) }).chain((id) =>
    fc.record({
      k: fc.constant("batch" as const),
      transaction: fc.constant(true),
      items: fc.array(
        fc.oneof<fc.Arbitrary<WriteStmt | RowsQuery | AggQuery>[]>(
          updateArb(s).map((u) => ({ ...u, where: pointWhere(u.where, id) })),
          deleteArb(s).map((d) => ({ ...d, where: pointWhere(d.where, id) })),
          // A plain INSERT takes a fresh id (another shard): upsert forms only, of this one row.
          insertArb(s).map((i) => ({ ...i, verb: i.verb === "INSERT" ? "INSERT OR REPLACE" : i.verb, rows: i.rows.slice(0, 1).map((r) => ({ ...r, id })) })),
          rowsQueryArb(s, ["eq"]).map((q) => ({
            ...q,
            where: pointWhere(q.where, id),
            // No scalar subquery items either (see pointWhere).
            items: q.items.map((it) => (it.fn === "sub" ? { ...it, fn: "none" as const } : it)),
          })),
          aggQueryArb(s, ["eq"]).map((q) => ({ ...q, where: pointWhere(q.where, id) })),
        ),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  );
}

function plainBatchArb(s: Schema): fc.Arbitrary<BatchStep> {
  return fc.record({
    k: fc.constant("batch" as const),
    transaction: fc.constant(false),
    items: fc.array(fc.oneof<fc.Arbitrary<WriteStmt>[]>(insertArb(s), updateArb(s), deleteArb(s)), { minLength: 1, maxLength: 3 }),
  });
}

function indexArb(s: Schema): fc.Arbitrary<IndexStep> {
  return fc.record({
    k: fc.constant("index" as const),
    drop: fc.boolean(),
    n: fc.nat({ max: 1 }),
    col: fc.constantFrom(...s.columns.map((c) => c.name)),
    nocase: fc.boolean(),
    desc: fc.boolean(),
  });
}

export function renderIndex(st: IndexStep): string {
  if (st.drop) return `DROP INDEX IF EXISTS i${st.n}`;
  return `CREATE INDEX IF NOT EXISTS i${st.n} ON t (${st.col}${st.nocase ? " COLLATE NOCASE" : ""}${st.desc ? " DESC" : ""})`;
}

// ---------------------------------------------------------------- scenarios

export interface Scenario {
  readonly schema: Schema;
  readonly shards: number;
  /**
   * Whether stored numbers may pass 2^53 (RETURNING included: a write returns integers beyond
   * 2^53 and integral REALs such as 1e17 exactly); otherwise every stored number stays within 2^52.
   */
  readonly bigints: boolean;
  readonly fresh: readonly (number | bigint)[];
  readonly inserts: readonly InsertStmt[];
  readonly steps: readonly Step[];
}

/** An integral value beyond ±2^52 folded into it (so `c + 1` updates stay within 2^53 too). */
function safeVal(x: Val): Val {
  if (typeof x.v === "bigint") return { ...x, v: Number(x.v % 2n ** 52n) };
  if (typeof x.v === "number" && Number.isInteger(x.v) && Math.abs(x.v) > 2 ** 52) return { ...x, v: x.v % 2 ** 52 };
  return x;
}

/** Maps every write of a step (batches included). */
function mapWrites<S extends Step>(st: S, f: (w: WriteStmt) => WriteStmt): S {
  if (st.k === "insert" || st.k === "update" || st.k === "delete") return f(st) as S;
  if (st.k === "batch") return { ...st, items: st.items.map((i) => (i.k === "rows" || i.k === "agg" ? i : f(i))) };
  return st;
}

/** The write with every number it stores in an INTEGER or REAL column folded by safeVal. */
function withoutBigints(schema: Schema, st: WriteStmt): WriteStmt {
  const numeric = (col: string | undefined): boolean => {
    const t = schema.columns.find((c) => c.name === col)?.type;
    return t === "INTEGER" || t === "REAL";
  };
  if (st.k === "insert")
    return { ...st, rows: st.rows.map((r) => ({ ...r, values: r.values.map((v, i) => (numeric(schema.columns[i]?.name) ? safeVal(v) : v)) })) };
  if (st.k === "update")
    return { ...st, set: st.set.map((a) => (a.expr.k === "val" && numeric(a.col) ? { ...a, expr: { k: "val" as const, val: safeVal(a.expr.val) } } : a)) };
  return st;
}

export const scenarioArb: fc.Arbitrary<Scenario> = schemaArb
  .chain((schema) =>
    fc.record({
      schema: fc.constant(schema),
      shards: fc.integer({ min: 2, max: 4 }),
      bigints: fc.boolean(),
      fresh: fc.uniqueArray(freshIdArb, { maxLength: 40, selector: (v) => String(v) }),
      inserts: fc.array(insertArb(schema), { minLength: 1, maxLength: 6 }),
      steps: fc.array(
        fc.oneof<fc.MaybeWeightedArbitrary<Step>[]>(
          { weight: 2, arbitrary: insertArb(schema) },
          { weight: 2, arbitrary: updateArb(schema) },
          { weight: 2, arbitrary: deleteArb(schema) },
          { weight: 5, arbitrary: rowsQueryArb(schema) },
          { weight: 5, arbitrary: aggQueryArb(schema) },
          { weight: 1, arbitrary: txBatchArb(schema) },
          { weight: 1, arbitrary: plainBatchArb(schema) },
          { weight: 1, arbitrary: indexArb(schema) },
        ),
        { maxLength: 12 },
      ),
    }),
  )
  .map((sc) => {
    const f = sc.bigints ? (w: WriteStmt): WriteStmt => w : (w: WriteStmt): WriteStmt => withoutBigints(sc.schema, w);
    return {
      ...sc,
      fresh: sc.bigints ? sc.fresh : sc.fresh.filter((v) => typeof v === "number"),
      inserts: sc.inserts.map((st) => mapWrites(st, f)),
      steps: sc.steps.map((st) => mapWrites(st, f)),
    };
  });
