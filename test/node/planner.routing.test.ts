// Which shards a plan reaches, and where INSERT puts rows, checked against the key ranges
// directly (cluster.shardOf maps a value with the xxhash vindex and keyrange.ts, not the gate).

import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { SqlValue } from "../../contract/sql-values.ts";
import { createCluster, type Cluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";
import { freshIdArb } from "./sql-gen.ts";

let open: Cluster | undefined;
afterEach(() => {
  open?.close();
  open = undefined;
});

function cluster(shards: number): Cluster {
  open?.close();
  open = createCluster({ shards, tables: { t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)", column: "id" } } });
  return open;
}

/** An id as the statement writes it: a number, or integer text the gate routes exactly (≤ 18 digits). */
const idArb: fc.Arbitrary<{ id: number | bigint; text: boolean }> = fc.record({
  id: fc.oneof(fc.integer({ min: -1000, max: 1000 }), freshIdArb),
  text: fc.boolean(),
});

function written(x: { id: number | bigint; text: boolean }): SqlValue {
  return x.text && String(x.id).replace(/^-/, "").length <= 18 ? String(x.id) : x.id;
}

function inKeyOrder(c: Cluster, shards: Iterable<string>): string[] {
  const set = new Set(shards);
  return c.shardNames.filter((s) => set.has(s));
}

describe("routing: a point query reaches exactly one shard", () => {
  // Invariant: `id = v` (SELECT, UPDATE, DELETE) reaches only the shard whose key range holds the
  // keyspace id of v, and a row written there is the one it finds.
  it("id = ? reaches the one shard of its value", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 4 }), idArb, fc.boolean(), async (n, x, literal) => {
        const c = cluster(n);
        const v = written(x);
        await c.run("INSERT INTO t (id, a) VALUES (?, 'row')", [x.id]);
        const where = literal ? `id = ${typeof v === "string" ? `'${v}'` : String(v)}` : "id = ?";
        const params = literal ? undefined : [v];
        const r = await c.run(`SELECT id, a FROM t WHERE ${where}`, params);
        expect(c.lastTouched).toEqual([c.shardOf(x.id)]);
        expect(show(r.rows)).toBe(show([[x.id, "row"]]));
        const u = await c.run(`UPDATE t SET a = 'updated' WHERE ${where}`, params);
        expect(c.lastTouched).toEqual([c.shardOf(x.id)]);
        expect(u.rowsAffected).toBe(1);
        const d = await c.run(`DELETE FROM t WHERE ${where}`, params);
        expect(c.lastTouched).toEqual([c.shardOf(x.id)]);
        expect(d.rowsAffected).toBe(1);
      }),
      { numRuns: 200 },
    );
  });

  // Invariant: `id IN (…)` reaches exactly the shards of its (non-NULL) values, no others.
  it("id IN (…) reaches only the shards of its values", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 4 }), fc.array(idArb, { minLength: 1, maxLength: 6 }), async (n, xs) => {
        const c = cluster(n);
        const values = xs.map(written);
        await c.run(`SELECT * FROM t WHERE id IN (${values.map(() => "?").join(", ")})`, values);
        expect(c.lastTouched.length).toBe(new Set(c.lastTouched).size);
        expect(inKeyOrder(c, c.lastTouched)).toEqual(
          inKeyOrder(
            c,
            xs.map((x) => c.shardOf(x.id)),
          ),
        );
        await c.run(`DELETE FROM t WHERE id IN (${values.map(() => "?").join(", ")})`, values);
        expect(inKeyOrder(c, c.lastTouched)).toEqual(
          inKeyOrder(
            c,
            xs.map((x) => c.shardOf(x.id)),
          ),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("a query without a vindex condition reaches every shard", async () => {
    const c = cluster(4);
    await c.run("SELECT * FROM t WHERE a = 'x'");
    expect(inKeyOrder(c, c.lastTouched)).toEqual(c.shardNames);
    await c.run("SELECT count(*) FROM t WHERE id > 5 OR id = 1");
    expect(inKeyOrder(c, c.lastTouched)).toEqual(c.shardNames);
  });

  it("id = NULL and id IN (NULL) match nothing and reach one shard", async () => {
    const c = cluster(4);
    await c.run("INSERT INTO t VALUES (1, 'x')");
    expect((await c.run("SELECT * FROM t WHERE id = ?", [null])).rows).toEqual([]);
    expect(c.lastTouched.length).toBe(1);
    expect((await c.run("SELECT * FROM t WHERE id IN (NULL)")).rows).toEqual([]);
    expect(c.lastTouched.length).toBe(1);
  });
});

describe("routing: INSERT places each row by its keyspace id", () => {
  // Invariant: after a multi-row INSERT spread over shards, each shard holds exactly the rows
  // whose keyspace id its key range contains — read from each shard's own database.
  it("each row lands on the shard whose key range holds its keyspace id", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.uniqueArray(idArb, { minLength: 1, maxLength: 40, selector: (x) => String(x.id) }),
        fc.boolean(),
        async (n, xs, asParams) => {
          const c = cluster(n);
          const rows = xs.map((x, i) => (asParams ? `(?, 'r${i}')` : `(${typeof written(x) === "string" ? `'${String(x.id)}'` : String(x.id)}, 'r${i}')`));
          const r = await c.run(`INSERT INTO t (id, a) VALUES ${rows.join(", ")}`, asParams ? xs.map(written) : undefined);
          expect(r.rowsAffected).toBe(xs.length);
          expect(inKeyOrder(c, c.lastTouched)).toEqual(
            inKeyOrder(
              c,
              xs.map((x) => c.shardOf(x.id)),
            ),
          );
          const seen = new Set<string>();
          for (const shard of c.shardNames) {
            for (const [id] of c.onShard(shard, "SELECT id FROM t").rows) {
              if (typeof id !== "number" && typeof id !== "bigint") throw new Error(`id ${show(id)} is not an integer`);
              expect(c.shardOf(id), `row ${show(id)} on ${shard}`).toBe(shard);
              seen.add(String(id));
            }
          }
          expect([...seen].sort()).toEqual(xs.map((x) => String(x.id)).sort());
        },
      ),
      { numRuns: 200 },
    );
  });
});
