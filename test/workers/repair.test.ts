import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";

describe("a tablet that missed its sync", () => {
  it("is repaired by the Topology when the gate sees it behind, and the query succeeds", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "rep", shards: 2 })).status).toBe(200);
    await sql("CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)", undefined, "rep");
    await sql("INSERT INTO r VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')", undefined, "rep");
    // Lose one tablet's serving config, as if the Topology's last sync never reached it.
    const stub = env.TABLET.get(env.TABLET.idFromName("rep/80-"));
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("DELETE FROM _vt_meta WHERE k = 'config'");
    });
    await evictDurableObject(stub);
    expect((await sql("SELECT count(*) FROM r", undefined, "rep")).rows).toEqual([[4]]);
    expect((await sql("SELECT v FROM r ORDER BY id", undefined, "rep")).rows).toEqual([["a"], ["b"], ["c"], ["d"]]);
  });
});
