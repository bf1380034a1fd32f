// Foreign keys' ON DELETE / ON UPDATE actions in a sharded keyspace: a write to a reference table
// runs on every shard, and each shard's child rows react to it on their own, so only actions that
// every shard takes alike, and that never move a row or change a looked-up column, are accepted.
// Each case here broke a guarantee before (reference copies that differ, a unique value held
// twice, rows on the wrong shard).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

let n = 0;
const XX = { xxhash: { type: "xxhash" } };

type Topo = { keyspaces: { name: string; shards: { name: string }[] }[] };

/** A 4-shard keyspace with reference table rp (k 1..8) and `tables` sharded as given. */
async function keyspace(tables: Record<string, unknown> = {}, vindexes: Record<string, unknown> = {}): Promise<string> {
  const name = `fk${n++}`;
  expect((await api("POST", "/v1/keyspaces", { name, shards: 4 })).status).toBe(200);
  const vschema = { sharded: true, vindexes: { ...XX, ...vindexes }, tables: { rp: { type: "reference" }, rp2: { type: "reference" }, ...tables } };
  expect((await api("POST", "/v1/vschema", { keyspace: name, vschema })).status).toBe(200);
  await sql("CREATE TABLE rp (k INTEGER PRIMARY KEY, v TEXT)", undefined, name);
  await sql("INSERT INTO rp VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f'), (7, 'g'), (8, 'h')", undefined, name);
  return name;
}

/** Every shard's copy of `q` (test only: reads each tablet directly). */
async function perShard(ks: string, q: string): Promise<unknown[][][]> {
  const t = await api<Topo>("GET", "/v1/topology");
  const shards = t.body.keyspaces.find((k) => k.name === ks)?.shards ?? [];
  return Promise.all(
    shards.map((s) =>
      runInDurableObject(env.TABLET.get(env.TABLET.idFromName(`${ks}/${s.name}`)), (_i, state) =>
        state.storage.sql
          .exec(q)
          .toArray()
          .map((r) => Object.values(r)),
      ),
    ),
  );
}

describe("a sharded table's key to a reference table", () => {
  it("ON DELETE SET NULL into a NOT NULL column is refused at CREATE TABLE (VD2102), so a parent delete never applies on some shards only", async () => {
    const ks = await keyspace();
    expect(
      await sqlError("CREATE TABLE ch2 (id INTEGER PRIMARY KEY, rk INTEGER NOT NULL REFERENCES rp(k) ON UPDATE CASCADE ON DELETE SET NULL)", undefined, ks),
    ).toMatchObject({ code: "UNSUPPORTED", id: "VD2102" });
    for (const action of ["SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"]) {
      expect(await sqlError(`CREATE TABLE ch2 (id INTEGER PRIMARY KEY, rk INTEGER REFERENCES rp(k) ON DELETE ${action})`, undefined, ks)).toMatchObject({
        code: "UNSUPPORTED",
        id: "VD2102",
      });
    }
  });

  it("with ON DELETE CASCADE a parent delete removes the child rows on every shard and every reference copy stays the same", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE ch2 (id INTEGER PRIMARY KEY, rk INTEGER NOT NULL REFERENCES rp(k) ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO ch2 VALUES (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (7, 3), (8, 4)", undefined, ks);
    expect(await sqlError("INSERT INTO ch2 VALUES (9, 99)", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    await sql("DELETE FROM rp WHERE k = 2", undefined, ks);
    expect((await sql("SELECT id FROM ch2 ORDER BY id", undefined, ks)).rows).toEqual([[7], [8]]);
    const copies = await perShard(ks, "SELECT k FROM rp ORDER BY k");
    expect(copies).toHaveLength(4);
    for (const c of copies) expect(c).toEqual([[1], [3], [4], [5], [6], [7], [8]]);
  });

  it("an UPDATE of the referenced column is refused (VD2105), so a unique child column never holds a value its lookup does not know", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE ch (id INTEGER PRIMARY KEY, rk INTEGER UNIQUE REFERENCES rp(k) ON UPDATE CASCADE ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO ch VALUES (1, 1), (2, 2)", undefined, ks);
    expect(await sqlError("UPDATE rp SET k = 50 WHERE k = 1", undefined, ks)).toMatchObject({ code: "UNSUPPORTED", id: "VD2105" });
    expect(await sqlError("UPDATE rp SET (v, k) = ('x', 50) WHERE k = 1", undefined, ks)).toMatchObject({ code: "UNSUPPORTED", id: "VD2105" });
    expect(await sqlError("INSERT INTO rp VALUES (1, 'z') ON CONFLICT (k) DO UPDATE SET k = 50", undefined, ks)).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2105",
    });
    // Other columns may change.
    await sql("UPDATE rp SET v = 'A' WHERE k = 1", undefined, ks);
    await sql("INSERT INTO rp VALUES (1, 'z') ON CONFLICT (k) DO UPDATE SET v = excluded.v", undefined, ks);
    expect((await sql("SELECT v FROM rp WHERE k = 1", undefined, ks)).rows).toEqual([["z"]]);
    await sql("INSERT INTO rp VALUES (50, 'x')", undefined, ks);
    await sql("INSERT INTO ch VALUES (3, 50)", undefined, ks);
    expect(await sqlError("INSERT INTO ch VALUES (4, 50)", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    expect(await sqlError("INSERT INTO ch VALUES (4, 1)", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
  });

  it("an UPDATE of a referenced column that places child rows is refused (VD2105): no row is left on the wrong shard", async () => {
    const ks = await keyspace({ cv: { column_vindexes: [{ column: "rk", name: "xxhash" }] } });
    await sql("CREATE TABLE cv (rk INTEGER PRIMARY KEY REFERENCES rp(k) ON UPDATE CASCADE ON DELETE CASCADE, v TEXT)", undefined, ks);
    await sql("INSERT INTO cv VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f'), (7, 'g'), (8, 'h')", undefined, ks);
    expect(await sqlError("UPDATE rp SET k = k + 1000", undefined, ks)).toMatchObject({ code: "UNSUPPORTED", id: "VD2105" });
    for (let k = 1; k <= 8; k++) expect((await sql("SELECT v FROM cv WHERE rk = ?", [k], ks)).rows).toHaveLength(1);
  });

  it("REPLACE into the reference table deletes the old row's children on every shard alike", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE ch (id INTEGER PRIMARY KEY, rk INTEGER UNIQUE REFERENCES rp(k) ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO ch VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)", undefined, ks);
    await sql("REPLACE INTO rp VALUES (1, 'new')", undefined, ks);
    await sql("INSERT OR REPLACE INTO rp VALUES (2, 'new')", undefined, ks);
    expect((await sql("SELECT id FROM ch ORDER BY id", undefined, ks)).rows).toEqual([[3], [4], [5], [6]]);
    for (const c of await perShard(ks, "SELECT k, v FROM rp WHERE k <= 2 ORDER BY k"))
      expect(c).toEqual([
        [1, "new"],
        [2, "new"],
      ]);
  });

  it("a cascaded delete leaves no unique value taken: the same value can be inserted again, once", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE ch (id INTEGER PRIMARY KEY, rk INTEGER UNIQUE REFERENCES rp(k) ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO ch VALUES (1, 1), (2, 2), (3, 3)", undefined, ks);
    await sql("DELETE FROM rp WHERE k IN (1, 2, 3)", undefined, ks);
    expect((await sql("SELECT count(*) FROM ch", undefined, ks)).rows).toEqual([[0]]);
    await sql("INSERT INTO rp VALUES (1, 'a'), (2, 'b'), (3, 'c')", undefined, ks);
    // Other ids (other shards) take the values over; the same ids too.
    await sql("INSERT INTO ch VALUES (10, 1), (11, 2), (3, 3)", undefined, ks);
    for (const [id, rk] of [
      [12, 1],
      [13, 2],
      [14, 3],
      [1, 1],
    ])
      expect(await sqlError("INSERT INTO ch VALUES (?, ?)", [id, rk], ks)).toMatchObject({ code: "CONSTRAINT" });
    expect((await sql("SELECT id, rk FROM ch ORDER BY id", undefined, ks)).rows).toEqual([
      [3, 3],
      [10, 1],
      [11, 2],
    ]);
  });

  it("a cascaded delete leaves no lookup_unique value taken: the same value can be inserted again, once", async () => {
    const idx = `fkidx${n++}`;
    expect((await api("POST", "/v1/keyspaces", { name: idx, shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE rk_idx (rk INTEGER PRIMARY KEY, keyspace_id BLOB NOT NULL)", undefined, idx);
    const ks = await keyspace(
      {
        ch: {
          column_vindexes: [
            { column: "id", name: "xxhash" },
            { column: "rk", name: "by_rk" },
          ],
        },
      },
      { by_rk: { type: "lookup_unique", params: { table: `${idx}.rk_idx`, from: "rk", to: "keyspace_id" }, owner: "ch" } },
    );
    await sql("CREATE TABLE ch (id INTEGER PRIMARY KEY, rk INTEGER REFERENCES rp(k) ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO ch VALUES (1, 1), (2, 2), (3, 3)", undefined, ks);
    await sql("DELETE FROM rp WHERE k IN (1, 2, 3)", undefined, ks);
    await sql("INSERT INTO rp VALUES (1, 'a'), (2, 'b'), (3, 'c')", undefined, ks);
    await sql("INSERT INTO ch VALUES (10, 1), (11, 2), (3, 3)", undefined, ks);
    expect(await sqlError("INSERT INTO ch VALUES (12, 1)", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    expect(await sqlError("INSERT INTO ch VALUES (13, 3)", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    expect((await sql("SELECT id FROM ch WHERE rk = 1", undefined, ks)).rows).toEqual([[10]]);
    expect((await sql("SELECT id FROM ch WHERE rk = 3", undefined, ks)).rows).toEqual([[3]]);
  });

  it("a key to a child whose rows a reference delete reaches must be ON DELETE CASCADE too, whichever key is declared last (VD2102)", async () => {
    const ks = await keyspace({
      ch: { column_vindexes: [{ column: "id", name: "xxhash" }] },
      gc: { column_vindexes: [{ column: "ch_id", name: "xxhash" }] },
      x: { column_vindexes: [{ column: "id", name: "xxhash" }] },
      y: { column_vindexes: [{ column: "x_id", name: "xxhash" }] },
    });
    await sql("CREATE TABLE ch (id INTEGER PRIMARY KEY, rk INTEGER REFERENCES rp(k) ON DELETE CASCADE)", undefined, ks);
    expect(await sqlError("CREATE TABLE gc (ch_id INTEGER PRIMARY KEY REFERENCES ch(id))", undefined, ks)).toMatchObject({ code: "UNSUPPORTED", id: "VD2102" });
    expect(
      await sqlError("CREATE TABLE gc (ch_id INTEGER PRIMARY KEY REFERENCES ch(id) ON DELETE CASCADE, up INTEGER REFERENCES gc(ch_id))", undefined, ks),
    ).toMatchObject({ code: "UNSUPPORTED", id: "VD2102" });
    await sql("CREATE TABLE gc (ch_id INTEGER PRIMARY KEY REFERENCES ch(id) ON DELETE CASCADE)", undefined, ks);
    // The other direction: x already has a child with NO ACTION when x gets a key to rp.
    await sql("CREATE TABLE x (id INTEGER PRIMARY KEY)", undefined, ks);
    await sql("CREATE TABLE y (x_id INTEGER PRIMARY KEY REFERENCES x(id))", undefined, ks);
    expect(await sqlError("ALTER TABLE x ADD COLUMN rk INTEGER REFERENCES rp(k) ON DELETE CASCADE", undefined, ks)).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2102",
    });
    await sql("INSERT INTO ch VALUES (1, 1), (2, 1), (3, 2), (4, 1)", undefined, ks);
    await sql("INSERT INTO gc VALUES (1), (2), (3), (4)", undefined, ks);
    await sql("DELETE FROM rp WHERE k = 1", undefined, ks);
    expect((await sql("SELECT ch_id FROM gc ORDER BY ch_id", undefined, ks)).rows).toEqual([[3]]);
  });
});

describe("a co-located key (child's vindex column → parent's)", () => {
  const colocated = { users: { column_vindexes: [{ column: "id", name: "xxhash" }] }, orders: { column_vindexes: [{ column: "user_id", name: "xxhash" }] } };

  it("ON DELETE / ON UPDATE SET NULL or SET DEFAULT would move child rows off their shard and are refused (VD2102)", async () => {
    const ks = await keyspace(colocated);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)", undefined, ks);
    for (const action of ["ON DELETE SET NULL", "ON DELETE SET DEFAULT", "ON UPDATE SET NULL", "ON UPDATE SET DEFAULT"]) {
      expect(
        await sqlError(`CREATE TABLE orders (id INTEGER, user_id INTEGER REFERENCES users(id) ${action}, PRIMARY KEY (user_id, id))`, undefined, ks),
      ).toMatchObject({ code: "UNSUPPORTED", id: "VD2102" });
    }
  });

  it("ON UPDATE CASCADE of a key of several columns would change a looked-up child column behind the gate and is refused (VD2102)", async () => {
    const ks = await keyspace(colocated);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, UNIQUE (id, email))", undefined, ks);
    expect(
      await sqlError(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, email TEXT UNIQUE, FOREIGN KEY (user_id, email) REFERENCES users(id, email) ON UPDATE CASCADE)",
        undefined,
        ks,
      ),
    ).toMatchObject({ code: "UNSUPPORTED", id: "VD2102" });
    // RESTRICT: the parent update is refused on the parent's own shard, like any constraint.
    await sql(
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, email TEXT UNIQUE, FOREIGN KEY (user_id, email) REFERENCES users(id, email) ON UPDATE RESTRICT ON DELETE CASCADE)",
      undefined,
      ks,
    );
    await sql("INSERT INTO users VALUES (1, 'a@x'), (2, 'b@x')", undefined, ks);
    await sql("INSERT INTO orders VALUES (10, 1, 'a@x')", undefined, ks);
    expect(await sqlError("UPDATE users SET email = 'c@x' WHERE id = 1", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    await sql("UPDATE users SET email = 'c@x' WHERE id = 2", undefined, ks);
  });

  it("a single-column key may say ON UPDATE CASCADE: the parent's vindex column is never updated", async () => {
    const ks = await keyspace(colocated);
    await sql("CREATE TABLE users (id INTEGER PRIMARY KEY)", undefined, ks);
    await sql(
      "CREATE TABLE orders (id INTEGER, user_id INTEGER REFERENCES users(id) ON UPDATE CASCADE ON DELETE CASCADE, PRIMARY KEY (user_id, id))",
      undefined,
      ks,
    );
    await sql("INSERT INTO users VALUES (1)", undefined, ks);
    expect(await sqlError("UPDATE users SET id = 2 WHERE id = 1", undefined, ks)).toMatchObject({ code: "UNSUPPORTED", id: "VD1046" });
  });
});

describe("a reference table's key to another reference table", () => {
  it("is checked alike on every copy, and may not change a column a sharded table references (VD2102)", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE rp2 (k2 INTEGER PRIMARY KEY REFERENCES rp(k) ON UPDATE CASCADE ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO rp2 VALUES (1), (2)", undefined, ks);
    expect(await sqlError("INSERT INTO rp2 VALUES (99)", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    await sql("UPDATE rp SET k = 20 WHERE k = 2", undefined, ks);
    for (const c of await perShard(ks, "SELECT k2 FROM rp2 ORDER BY k2")) expect(c).toEqual([[1], [20]]);
    // A sharded table's key to rp2.k2, which rp's updates and deletes would change behind it.
    expect(
      await sqlError("CREATE TABLE ch (id INTEGER PRIMARY KEY, rk INTEGER REFERENCES rp2(k2) ON DELETE CASCADE ON UPDATE CASCADE)", undefined, ks),
    ).toMatchObject({
      code: "UNSUPPORTED",
      id: "VD2102",
    });
  });

  it("with RESTRICT a sharded table may reference it, and deletes cascade through both keys on every shard", async () => {
    const ks = await keyspace();
    await sql("CREATE TABLE rp2 (k2 INTEGER PRIMARY KEY REFERENCES rp(k) ON UPDATE RESTRICT ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO rp2 VALUES (1), (2), (3)", undefined, ks);
    await sql("CREATE TABLE ch (id INTEGER PRIMARY KEY, rk INTEGER REFERENCES rp2(k2) ON DELETE CASCADE)", undefined, ks);
    await sql("INSERT INTO ch VALUES (1, 1), (2, 1), (3, 2), (4, 3), (5, 1)", undefined, ks);
    expect(await sqlError("UPDATE rp2 SET k2 = 4 WHERE k2 = 1", undefined, ks)).toMatchObject({ code: "UNSUPPORTED", id: "VD2105" });
    expect(await sqlError("UPDATE rp SET k = 40 WHERE k = 1", undefined, ks)).toMatchObject({ code: "CONSTRAINT" });
    await sql("DELETE FROM rp WHERE k = 1", undefined, ks);
    expect((await sql("SELECT id FROM ch ORDER BY id", undefined, ks)).rows).toEqual([[3], [4]]);
    for (const c of await perShard(ks, "SELECT k2 FROM rp2 ORDER BY k2")) expect(c).toEqual([[2], [3]]);
  });
});
