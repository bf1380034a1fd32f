import { describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

describe("an unsharded keyspace", () => {
  it("passes any single-keyspace SQL through to its one tablet, still refusing _vt names", async () => {
    const r = await api("POST", "/v1/keyspaces", { name: "solo", shards: 1 });
    expect(r.status).toBe(200);
    await sql("CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT)", undefined, "solo");
    await sql("CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER, v INTEGER)", undefined, "solo");
    await sql("INSERT INTO a VALUES (1, 'x'), (2, 'y')", undefined, "solo");
    await sql("INSERT INTO b VALUES (1, 1, 10), (2, 1, 20), (3, 2, 5)", undefined, "solo");
    const q = await sql(
      `WITH t AS (SELECT a.name, sum(b.v) AS s FROM a JOIN b ON b.a_id = a.id GROUP BY a.name)
       SELECT name, s, rank() OVER (ORDER BY s DESC) FROM t WHERE s > (SELECT min(v) FROM b) ORDER BY name`,
      undefined,
      "solo",
    );
    expect(q.rows).toEqual([["x", 30, 1]]);
    await sql("CREATE VIEW v AS SELECT name FROM a", undefined, "solo");
    expect((await sql("SELECT * FROM v ORDER BY name", undefined, "solo")).rows).toEqual([["x"], ["y"]]);
    expect((await sqlError("SELECT * FROM _vt_binlog", undefined, "solo")).code).toBe("PERMISSION_DENIED");
    expect((await sqlError("SELECT * FROM nope", undefined, "solo")).code).toBe("UNKNOWN_TABLE");
  });
});
