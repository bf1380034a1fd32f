// The Topology remembers the request id of each decided DDL, so a gate retrying it is answered
// its outcome instead of running it twice; the memory is bounded: ids older than a day, and
// beyond the newest DDL_REQUESTS_KEPT, are forgotten when the next one is recorded.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DDL_REQUEST_TTL_MS, PendingChanges } from "../../topology/pending.ts";

function scratchTopology(name: string) {
  return env.TOPOLOGY.get(env.TOPOLOGY.idFromName(name));
}

describe("_vt_topo_ddl_requests is pruned", () => {
  it("an id older than DDL_REQUEST_TTL_MS is forgotten when another is recorded; a recent one is kept", async () => {
    await runInDurableObject(scratchTopology("ddl-requests-ttl"), (_i, state) => {
      const p = new PendingChanges(state.storage.sql);
      const t0 = 1_000_000;
      p.recordRequest("ks", "old", 1, t0);
      p.recordRequest("ks", "recent", 2, t0 + DDL_REQUEST_TTL_MS - 1);
      expect([p.decided("ks", "old"), p.decided("ks", "recent")]).toEqual([true, true]);
      p.recordRequest("other", "new", 1, t0 + DDL_REQUEST_TTL_MS + 1);
      expect([p.decided("ks", "old"), p.decided("ks", "recent"), p.decided("other", "new")]).toEqual([false, true, true]);
    });
  });

  it("at most `kept` ids are kept, the newest", async () => {
    await runInDurableObject(scratchTopology("ddl-requests-count"), (_i, state) => {
      const p = new PendingChanges(state.storage.sql, 3);
      const now = Date.now();
      for (let i = 1; i <= 5; i++) p.recordRequest("ks", `r${i}`, i, now + i);
      expect([1, 2, 3, 4, 5].map((i) => p.decided("ks", `r${i}`))).toEqual([false, false, true, true, true]);
      const n = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_topo_ddl_requests").one().n;
      expect(n).toBe(3);
    });
  });

  it("a table written before ids had a time gets the column, its ids counting as old", async () => {
    await runInDurableObject(scratchTopology("ddl-requests-upgrade"), (_i, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE IF EXISTS _vt_topo_ddl_requests");
      sql.exec("CREATE TABLE _vt_topo_ddl_requests (keyspace TEXT NOT NULL, id TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (keyspace, id))");
      sql.exec("INSERT INTO _vt_topo_ddl_requests VALUES ('ks', 'legacy', 1)");
      const p = new PendingChanges(sql);
      expect(p.decided("ks", "legacy")).toBe(true);
      p.recordRequest("ks", "next", 2);
      expect([p.decided("ks", "legacy"), p.decided("ks", "next")]).toEqual([false, true]);
    });
  });
});
