// Names that are also properties of every JS object (`constructor`, `toString`,
// `hasOwnProperty`, `__proto__`) behave as any other name, in every endpoint: a valid one works,
// an invalid one gets INVALID_ARGUMENT, a missing one is "not found" — never a 500, a crash or
// a keyspace, table or vindex that seems to exist because Object.prototype has the key.

import { describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

const OBJECT_KEYS = ["constructor", "toString", "hasOwnProperty", "valueOf"] as const;

describe("keyspace names that are Object.prototype keys", () => {
  it("a missing keyspace named constructor, toString, hasOwnProperty or __proto__ is INVALID_ARGUMENT 'no keyspace'", async () => {
    for (const name of [...OBJECT_KEYS, "__proto__"]) {
      const e = await sqlError("SELECT 1", undefined, name);
      expect({ name, status: e.status, code: e.code }).toEqual({ name, status: 400, code: "INVALID_ARGUMENT" });
      const v = await api<{ error: { code: string } }>("GET", `/v1/vschema?keyspace=${name}`);
      expect({ name, status: v.status, code: v.body.error.code }).toEqual({ name, status: 400, code: "INVALID_ARGUMENT" });
      const a = await api<{ error: { code: string } }>("POST", "/v1/vschema", {
        keyspace: name,
        vschema: { sharded: true, vindexes: { xx: { type: "xxhash" } } },
      });
      expect({ name, status: a.status, code: a.body.error.code }).toEqual({ name, status: 400, code: "INVALID_ARGUMENT" });
    }
  });

  it("keyspaces named constructor, toString, hasOwnProperty and valueOf can be created and used like any other", async () => {
    for (const name of OBJECT_KEYS) {
      const created = await api<{ keyspaces: { name: string; shards: unknown[] }[] }>("POST", "/v1/keyspaces", { name, shards: 2 });
      expect({ name, status: created.status }).toEqual({ name, status: 200 });
      expect(created.body.keyspaces.find((k) => k.name === name)?.shards).toHaveLength(2);
      await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", undefined, name);
      await sql("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", undefined, name);
      expect((await sql("SELECT count(*) FROM t", undefined, name)).rows).toEqual([[3]]);
      expect((await sql("SELECT v FROM t WHERE id = 2", undefined, name)).rows).toEqual([["b"]]);
      const vs = await api<{ keyspace: string; vschema: { tables: Record<string, unknown> } }>("GET", `/v1/vschema?keyspace=${name}`);
      expect(vs.body.keyspace).toBe(name);
      expect(Object.keys(vs.body.vschema.tables)).toEqual(["t"]);
      const batch = await api<{ results: unknown[] }>("POST", "/v1/batch", {
        keyspace: name,
        statements: [{ sql: "SELECT 1" }, { sql: "SELECT v FROM t WHERE id = 1" }],
        transaction: true,
      });
      expect(batch.status).toBe(200);
    }
    const topo = await api<{ keyspaces: { name: string }[] }>("GET", "/v1/topology");
    for (const name of OBJECT_KEYS) expect(topo.body.keyspaces.map((k) => k.name)).toContain(name);
  });

  it("a keyspace named __proto__ is refused as an invalid name (names start with a letter)", async () => {
    const r = await api<{ error: { code: string } }>("POST", "/v1/keyspaces", { name: "__proto__", shards: 2 });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("INVALID_ARGUMENT");
  });

  it("a request body {} has no keyspace named constructor (own fields only)", async () => {
    const r = await api<{ error: { code: string } }>("POST", "/v1/keyspaces", "{}");
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("INVALID_ARGUMENT");
  });
});

describe("tables, vindexes and columns named like Object.prototype keys", () => {
  it("tables named constructor, toString, __proto__ and valueOf work in a sharded keyspace; a missing one is UNKNOWN_TABLE", async () => {
    await api("POST", "/v1/keyspaces", { name: "protot", shards: 2 });
    for (const t of ["constructor", "tostring", "valueOf"]) {
      expect((await sqlError(`SELECT * FROM ${t}`, undefined, "protot")).code).toBe("UNKNOWN_TABLE");
      expect((await sqlError(`INSERT INTO ${t} VALUES (1)`, undefined, "protot")).code).toBe("UNKNOWN_TABLE");
    }
    for (const t of ["constructor", "toString", "__proto__", "valueOf"]) {
      await sql(`CREATE TABLE "${t}" (id INTEGER PRIMARY KEY, "constructor" TEXT, "__proto__" INTEGER)`, undefined, "protot");
      await sql(`INSERT INTO "${t}" (id, "constructor", "__proto__") VALUES (1, 'x', 10), (2, 'y', 20), (3, 'z', 30)`, undefined, "protot");
      expect((await sql(`SELECT id, "constructor", "__proto__" FROM "${t}" WHERE id = 2`, undefined, "protot")).rows).toEqual([[2, "y", 20]]);
      expect((await sql(`SELECT count(*), sum("__proto__") FROM "${t}"`, undefined, "protot")).rows).toEqual([[3, 60]]);
      expect((await sql(`UPDATE "${t}" SET "constructor" = 'w' WHERE id = 3`, undefined, "protot")).rowsAffected).toBe(1);
    }
    const vs = await api<{ vschema: { tables: Record<string, unknown> } }>("GET", "/v1/vschema?keyspace=protot");
    expect(Object.keys(vs.body.vschema.tables).sort()).toEqual(["__proto__", "constructor", "toString", "valueOf"].sort());
    expect(Object.getOwnPropertyDescriptor(vs.body.vschema.tables, "__proto__")?.value).toEqual({ column_vindexes: [{ column: "id", name: "xxhash" }] });
  });

  it("a vschema whose vindexes and tables are named constructor and __proto__ is kept whole; a missing vindex named constructor is refused", async () => {
    await api("POST", "/v1/keyspaces", { name: "protov", shards: 2 });
    const vschema = JSON.parse(
      '{"sharded": true, "vindexes": {"constructor": {"type": "xxhash"}}, "tables": {"__proto__": {"column_vindexes": [{"column": "id", "name": "constructor"}]}, "toString": {"type": "reference"}}}',
    ) as unknown;
    const applied = await api<{ vschema: unknown }>("POST", "/v1/vschema", { keyspace: "protov", vschema });
    expect(applied.status).toBe(200);
    expect(applied.body.vschema).toEqual(vschema);
    const got = await api<{ vschema: unknown }>("GET", "/v1/vschema?keyspace=protov");
    expect(got.body.vschema).toEqual(vschema);
    await sql('CREATE TABLE "__proto__" (id INTEGER PRIMARY KEY, v TEXT)', undefined, "protov");
    await sql("INSERT INTO \"__proto__\" VALUES (1, 'a'), (2, 'b')", undefined, "protov");
    expect((await sql('SELECT v FROM "__proto__" WHERE id = 1', undefined, "protov")).rows).toEqual([["a"]]);
    for (const bad of [
      '{"sharded": true, "vindexes": {}, "tables": {"t": {"column_vindexes": [{"column": "id", "name": "constructor"}]}}}',
      '{"sharded": true, "vindexes": {}, "tables": {"t": {"column_vindexes": [{"column": "id", "name": "hasOwnProperty"}]}}}',
      '{"sharded": true, "vindexes": {"x": {"type": "toString"}}}',
    ]) {
      const r = await api<{ error: { code: string } }>("POST", "/v1/vschema", { keyspace: "protov", vschema: JSON.parse(bad) as unknown });
      expect({ bad, status: r.status, code: r.body.error.code }).toEqual({ bad, status: 400, code: "INVALID_ARGUMENT" });
    }
  });

  it("a named parameter called __proto__ or constructor binds like any other", async () => {
    const r = await sql("SELECT :__proto__ AS a, :constructor AS b", JSON.parse('{"__proto__": 1, "constructor": "c"}') as unknown);
    expect(r.rows).toEqual([[1, "c"]]);
  });
});
