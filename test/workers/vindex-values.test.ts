import { describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

describe("vindex values SQLite would convert", () => {
  it("refuses a non-canonical integer text for an INTEGER vindex column and still finds rows by it", async () => {
    await sql("CREATE TABLE aff (id INTEGER PRIMARY KEY, v TEXT)");
    for (let i = 1; i <= 20; i++) await sql("INSERT INTO aff VALUES (?, ?)", [i, `v${i}`]);
    const e = await sqlError("INSERT INTO aff VALUES ('21.0', 'x')");
    expect({ code: e.code, id: e["id"] }).toEqual({ code: "UNSUPPORTED", id: "VD2606" });
    await sql("INSERT INTO aff VALUES ('21', 'x')"); // canonical: same shard as 21
    for (let i = 1; i <= 21; i++) {
      expect((await sql("SELECT id FROM aff WHERE id = ?", [`${i}.0`])).rows).toEqual([[i]]);
      expect((await sql("SELECT id FROM aff WHERE id = ?", [`0${i}`])).rows).toEqual([[i]]);
      expect((await sql("SELECT id FROM aff WHERE id = ?", [i])).rows).toEqual([[i]]);
    }
  });

  it("routes a NOCASE vindex column only with a case-folding vindex", async () => {
    await sql("CREATE TABLE nc (email TEXT COLLATE NOCASE PRIMARY KEY, n INTEGER)");
    const nc = await sqlError("INSERT INTO nc VALUES ('Ada@x', 1)");
    expect({ code: nc.code, id: nc["id"] }).toEqual({ code: "UNSUPPORTED", id: "VD1034" });
    await api("POST", "/v1/keyspaces", { name: "loose", shards: 4 });
    await api("POST", "/v1/vschema", {
      keyspace: "loose",
      vschema: { sharded: true, vindexes: { u: { type: "unicode_loose_xxhash" } }, tables: { nc: { column_vindexes: [{ column: "email", name: "u" }] } } },
    });
    await sql("CREATE TABLE nc (email TEXT COLLATE NOCASE PRIMARY KEY, n INTEGER)", undefined, "loose");
    for (let i = 0; i < 12; i++) await sql("INSERT INTO nc VALUES (?, ?)", [`User${i}@Example.com`, i], "loose");
    for (let i = 0; i < 12; i++) {
      expect((await sql("SELECT n FROM nc WHERE email = ?", [`user${i}@example.COM`], "loose")).rows).toEqual([[i]]);
    }
    expect((await sqlError("INSERT INTO nc VALUES ('USER3@EXAMPLE.COM', 99)", undefined, "loose")).code).toBe("CONSTRAINT");
  });
});
