// A VStream across a second MoveTables into the shards it already reads for a first one's table.
// The invariant: the stream follows both by itself (no VD2802): every change of each table arrives
// once, each row's in commit order (the second table's changes on the source before the switch
// come before its changes on the target after it), a transaction over both moved tables on one
// target shard arrives whole, a token taken before the second switch resumes with exactly the
// changes after it, and reversing the second MoveTables brings its table back to the source while
// the first one's stays on the target. Until a MoveTables switches, its target refuses user writes
// to its tables; a stream of the target keyspace's other tables passes the arrival markers.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";
import { sleep, workflows } from "./reshard-harness.ts";
import { type Ev, subscribe } from "./vstream-harness.ts";

type View = { state: string; streams: { phase: string; lagMs: number }[] };
const caughtUp = (n: number) => (v: View) => v.streams.length === n && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000);

/** "<table>:<id>=<name>" per ROW event with an after image, in arrival order. */
const rowLog = (evs: readonly Ev[]) =>
  evs.filter((e) => e.type === "ROW" && e.after && e.table !== "settings").map((e) => `${e.table}:${String(e.after?.["id"])}=${String(e.after?.["name"])}`);

describe("vstream across a second MoveTables into the same shards", () => {
  it("follows both tables there, exactly once and in order, a transaction over both whole, and the second one's reverse", { timeout: 60_000 }, async () => {
    const SRC = "v2src";
    const DST = "v2dst";
    expect((await api("POST", "/v1/keyspaces", { name: SRC, shards: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/keyspaces", { name: DST, shards: ["-80", "80-"] })).status).toBe(200);
    for (const t of ["customer", "orders"]) await sql(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, name TEXT)`, undefined, SRC);
    await sql("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)", undefined, SRC);
    const byId = { column_vindexes: [{ column: "id", name: "xx" }] };
    const vs = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { customer: byId, orders: byId } };
    expect((await api("POST", "/v1/vschema", { keyspace: DST, vschema: vs })).status).toBe(200);
    for (let i = 1; i <= 8; i++) {
      await sql("INSERT INTO customer (id, name) VALUES (?, ?)", [i, `c${i}`], SRC);
      await sql("INSERT INTO orders (id, name) VALUES (?, ?)", [i, `o${i}`], SRC);
    }
    const all = await subscribe(`keyspace=${SRC}&heartbeatMs=200`);
    await all.until((s) => s.some((e) => e.type === "HEARTBEAT"));

    // The first MoveTables: customer to DST.
    const first = workflows(DST, "mvc");
    expect((await first.call({ action: "create", kind: "movetables", sourceKeyspace: SRC, tables: ["customer"] })).status).toBe(200);
    await first.until("caught up", caughtUp(2));
    expect((await first.call({ action: "switchtraffic" })).status).toBe(200);
    await sql("UPDATE customer SET name = 'moved' WHERE id = 1", undefined, DST);
    await all.until((s) => rowLog(s).includes("customer:1=moved"));

    // The second: orders to the same shards, with writes on both sides of its switch. Until its
    // switch the target's tablets refuse writes to orders (only its streams write it there).
    const second = workflows(DST, "mvo");
    expect((await second.call({ action: "create", kind: "movetables", sourceKeyspace: SRC, tables: ["orders"] })).status).toBe(200);
    const topo = await api<{ keyspaces: { name: string; shards: { name: string; tablet: string }[] }[] }>("GET", "/v1/topology");
    const dstTablet = topo.body.keyspaces.find((k) => k.name === DST)?.shards.find((x) => x.name === "-80")?.tablet ?? "";
    const direct = await env.TABLET.get(env.TABLET.idFromName(dstTablet)).execute({ keyspace: DST, shard: "-80", version: 1e9 }, [
      { sql: "INSERT INTO orders (id, name) VALUES (424242, 'x')", params: [], kind: "insert" },
    ]);
    expect(direct).toMatchObject({ ok: false, error: { code: "NOT_SERVING" } });
    // A stream of the target keyspace itself, of customer: the arrival markers do not stop it.
    const own = await subscribe(`keyspace=${DST}&tables=customer&heartbeatMs=200`);
    await own.until((x) => x.some((e) => e.type === "HEARTBEAT"));
    await sql("UPDATE orders SET name = 'src' WHERE id = 2", undefined, SRC);
    await all.until((s) => rowLog(s).includes("orders:2=src") && s.at(-1)?.type === "COMMIT");
    const beforeSecond = all.seen.filter((e) => e.type === "COMMIT").at(-1)?.token ?? "";
    await second.until("caught up", caughtUp(2));
    const sw = await second.call({ action: "switchtraffic" });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    await sql("UPDATE orders SET name = 'dst' WHERE id = 2", undefined, DST);
    await sql("UPDATE customer SET name = 'still' WHERE id = 3", undefined, DST);
    // One transaction over both moved tables on one shard (same id, same shard).
    const tx = await api("POST", "/v1/batch", {
      keyspace: DST,
      transaction: true,
      statements: [{ sql: "UPDATE customer SET name = 'pair' WHERE id = 4" }, { sql: "UPDATE orders SET name = 'pair' WHERE id = 4" }],
    });
    expect(tx.status, JSON.stringify(tx.body)).toBe(200);
    await sql("INSERT INTO settings (k, v) VALUES ('a', 'b')", undefined, SRC);
    const after = ["orders:2=dst", "customer:3=still", "customer:4=pair", "orders:4=pair"];
    await all.until((s) => after.every((x) => rowLog(s).includes(x)) && s.some((e) => e.type === "ROW" && e.table === "settings"));
    expect(all.seen.filter((e) => e.type === "ERROR")).toEqual([]);
    const log = rowLog(all.seen);
    expect(log.filter((x) => x.startsWith("orders:2="))).toEqual(["orders:2=src", "orders:2=dst"]);
    // Shards interleave; each change once.
    expect(log.slice(log.indexOf("orders:2=src")).sort()).toEqual(["orders:2=src", ...after].sort());
    const pair = all.seen.findIndex((e) => e.type === "ROW" && e.after?.["name"] === "pair");
    expect(all.seen[pair - 1]?.type).toBe("BEGIN");
    expect(all.seen[pair + 1]).toMatchObject({ type: "ROW", after: { name: "pair" } });
    expect(all.seen[pair + 2]?.type).toBe("COMMIT");
    const journals = all.seen.filter((e) => e.type === "JOURNAL");
    expect(journals.at(-1)?.from).toEqual(["-"]);
    expect(
      journals
        .flatMap((j) => j.to ?? [])
        .filter((t) => t.startsWith(`${DST}/`))
        .sort(),
    ).toEqual([`${DST}/-80`, `${DST}/-80`, `${DST}/80-`, `${DST}/80-`]);

    await own.until((x) => rowLog(x).includes("customer:4=pair"));
    expect(own.seen.filter((e) => e.type === "ERROR" || e.type === "JOURNAL")).toEqual([]);
    expect(rowLog(own.seen).sort()).toEqual(["customer:3=still", "customer:4=pair"]);
    await own.close();

    // A token from before the second switch: exactly the changes after it, the same way.
    const again = await subscribe(`keyspace=${SRC}&from=${beforeSecond}&heartbeatMs=200`);
    await again.until((s) => after.every((x) => rowLog(s).includes(x)));
    await sleep(300);
    expect(again.seen.filter((e) => e.type === "ERROR")).toEqual([]);
    expect(rowLog(again.seen).sort()).toEqual([...after].sort());
    expect(rowLog(again.seen).indexOf("orders:2=dst")).toBeGreaterThanOrEqual(0);
    await again.close();

    // The second one reversed while followed: orders comes back to the source, customer stays on DST.
    const rev = await second.call({ action: "reversetraffic" });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    await sql("UPDATE orders SET name = 'back' WHERE id = 5", undefined, SRC);
    await sql("UPDATE customer SET name = 'stays' WHERE id = 5", undefined, DST);
    await all.until((s) => rowLog(s).includes("orders:5=back") && rowLog(s).includes("customer:5=stays"));
    expect(all.seen.filter((e) => e.type === "ERROR")).toEqual([]);
    const back = all.seen.find((e) => e.type === "ROW" && e.after?.["name"] === "back");
    expect(back).toMatchObject({ shard: "-", table: "orders" });
    expect(back?.keyspace).toBeUndefined();
    expect(all.seen.find((e) => e.type === "ROW" && e.after?.["name"] === "stays")).toMatchObject({ keyspace: DST, table: "customer" });
    // Every change once, across the three switches.
    const seen = rowLog(all.seen);
    expect(new Set(seen).size).toBe(seen.length);
    await all.close();
  });
});
