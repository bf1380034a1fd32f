// A statement SQLite would never finish is refused before it reaches a tablet: locally it would
// hold workerd's one thread (gate, every tablet, /healthz) for good, and on Cloudflare its tablet
// until the CPU limit resets it. (Before this refusal, the first statement below froze
// `npm run dev` for over 90 s; this test would then hang rather than fail.)

import { describe, expect, it } from "vitest";
import { api, sql, sqlError } from "./helpers.ts";

const ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";

describe("a runaway statement", () => {
  it("is refused at once in an unsharded keyspace, and the cluster keeps answering", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "run1", shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", undefined, "run1");
    await sql("INSERT INTO t VALUES (1), (2)", undefined, "run1");
    const e = await sqlError(ENDLESS, undefined, "run1");
    expect(e.status).toBe(400);
    expect(e.code).toBe("UNSUPPORTED");
    expect(e["id"]).toBe("VD2300");
    expect((await api("GET", "/healthz")).status).toBe(200);
    expect((await sql("SELECT count(*) FROM t", undefined, "run1")).rows).toEqual([[2]]);
    // What ends still runs: a bounded recursion, and an endless one read through a LIMIT.
    expect((await sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000) SELECT count(*) FROM c", undefined, "run1")).rows).toEqual([
      [1000],
    ]);
    expect((await sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c LIMIT 3", undefined, "run1")).rows).toEqual([
      [1],
      [2],
      [3],
    ]);
  });

  it("is refused with the same id in a sharded keyspace and in a transactional batch", async () => {
    const e = await sqlError(ENDLESS);
    expect(e.code).toBe("UNSUPPORTED");
    expect(e["id"]).toBe("VD2300");
    expect((await api("POST", "/v1/keyspaces", { name: "run2", shards: 1 })).status).toBe(200);
    const b = await api<{ error: { code: string; id?: string; statementIndex?: number } }>("POST", "/v1/batch", {
      keyspace: "run2",
      transaction: true,
      statements: [{ sql: "SELECT 1" }, { sql: ENDLESS }],
    });
    expect(b.body.error.code).toBe("UNSUPPORTED");
    expect(b.body.error.id).toBe("VD2300");
    expect(b.body.error.statementIndex).toBe(1);
  });
});
