// Rows a stream applies are the source's transactions: they are in the source's binlog, and the
// target logs none of them. Invariant: while a MoveTables copies and catches up, the target
// keyspace's tablets hold the moved rows but their binlogs hold no event of a moved table, so a
// VStream of the target keyspace sees only the target's own transactions, each whole (a copied
// row never glues onto the next commit of the target's own); once writes are switched, the
// moved tables' writes are the target's own and are logged there. Row counts stay exact.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sql } from "./helpers.ts";
import { caughtUp, moveModel, moveWorkflow, moveWriter, type Pair, setUpMove, sleep, tabletOf, topology } from "./movetables-harness.ts";
import { subscribe } from "./vstream-harness.ts";

const P: Pair = { source: "mute1", target: "mute2" };
const MOVED = ["customer", "corder"];

const binlogTables = (tablet: string) =>
  runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tablet)), (_i, state) =>
    state.storage.sql
      .exec<{ tbl: string; n: number }>("SELECT tbl, count(*) AS n FROM _vt_binlog WHERE tbl IS NOT NULL GROUP BY tbl ORDER BY tbl")
      .toArray()
      .map((r) => [r.tbl, r.n] as const),
  );

const rowCount = (tablet: string) =>
  runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tablet)), async (instance) => {
    const st = await (instance as unknown as { status(): Promise<{ ok: true; value: { rowCount: number } }> }).status();
    return st.value.rowCount;
  });

describe("stream applies are not logged in the target's binlog", () => {
  it("a MoveTables target logs only its own writes until the switch, and the moved tables' writes after it", async () => {
    const m = moveModel();
    await setUpMove(P, 60, m);
    await sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", undefined, P.target);
    await sql("INSERT INTO notes (id, body) VALUES (1, 'before')", undefined, P.target);
    const sub = await subscribe(`keyspace=${P.target}&heartbeatMs=200`);
    await sub.until((s) => s.some((e) => e.type === "HEARTBEAT"));

    const wf = moveWorkflow(P, "mv");
    const c = await wf.call({ action: "create", kind: "movetables", sourceKeyspace: P.source, tables: MOVED });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    const w = moveWriter(P, m, 7);
    await wf.until("caught up", caughtUp);
    await sleep(200);
    await w.stop();
    expect(w.errors).toEqual([]);
    await wf.until("caught up after the writer", caughtUp);

    // The copies and the catch-up landed on the target's tablets, and none of it is in their binlogs.
    const t = await topology();
    const targets = ["-80", "80-"].map((s) => tabletOf(t, P.target, s));
    const want = m.customers.size + m.orders.size + 1;
    let held = 0;
    for (const end = Date.now() + 10_000; Date.now() < end; await sleep(50)) {
      held = (await Promise.all(targets.map(rowCount))).reduce((a, b) => a + b, 0);
      if (held === want) break;
    }
    expect(held).toBe(want);
    for (const tablet of targets) expect((await binlogTables(tablet)).filter(([tbl]) => MOVED.includes(tbl))).toEqual([]);

    // A transaction of the target's own arrives whole and alone.
    await sql("INSERT INTO notes (id, body) VALUES (2, 'during')", undefined, P.target);
    const seen = await sub.until((s) => s.some((e) => e.type === "ROW" && e.table === "notes" && e.after?.["id"] === 2));
    const i = seen.findIndex((e) => e.type === "ROW" && e.after?.["id"] === 2);
    const begin = seen.slice(0, i).findLastIndex((e) => e.type === "BEGIN");
    expect(seen.slice(begin + 1, i).filter((e) => e.type === "ROW")).toEqual([]);
    expect(seen.filter((e) => e.type === "ROW" && MOVED.includes(e.table ?? ""))).toEqual([]);

    // After the switch the moved tables' writes are the target's own: logged, and streamed.
    expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
    await sql("INSERT INTO customer (id, name) VALUES (?, ?)", [90_001, "after"], P.target);
    await sub.until((s) => s.some((e) => e.type === "ROW" && e.table === "customer" && e.after?.["id"] === 90_001));
    const logged = (await Promise.all(targets.map(binlogTables))).flat().filter(([tbl]) => tbl === "customer");
    expect(logged.reduce((a, [, n]) => a + n, 0)).toBe(1);
    await sub.close();
  });
});
