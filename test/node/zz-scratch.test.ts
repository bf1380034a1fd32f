import { it } from "vitest";
import { createCluster } from "./fake-cursor.ts";
import { show } from "./result-compare.ts";
it("scratch", async () => {
  const c = createCluster({ shards: 2, tables: { t: { create: "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT COLLATE NOCASE, b REAL)", column: "id" } } });
  for (let i = 1; i <= 8; i++) { const v = ["a","B","c","D","e","F","g","H"][i-1]; c.reference("INSERT INTO t VALUES (?, ?, ?)", [i, v, i/2]); await c.run("INSERT INTO t VALUES (?, ?, ?)", [i, v, i/2]); }
  for (const sh of c.shardNames) console.log(sh, show(c.onShard(sh, "SELECT id, a FROM t").rows));
  for (const sql of ["SELECT a FROM t ORDER BY 1, id", "SELECT a AS x FROM t ORDER BY x, id", "SELECT a FROM t ORDER BY a, id", "SELECT min(a), max(a) FROM t",
    "SELECT count(*) FROM t WHERE id = 1.5", "SELECT * FROM t WHERE id = '1.0' ORDER BY id DESC LIMIT 1", "SELECT * FROM t ORDER BY 1.0, id",
    "SELECT a, count(*) FROM t GROUP BY a COLLATE BINARY ORDER BY 1", "SELECT b FROM t ORDER BY -b LIMIT 2"]) {
    let act; try { act = show((await c.run(sql)).rows); } catch (e) { act = String(e); }
    console.log(sql, "\n  gate", act, "\n  ref ", show(c.reference(sql).rows));
  }
});
