// VStream across reshards. The invariant: a stream connected while a Reshard switches writes
// (split, merge, and back with ReverseTraffic) moves to the new shards through the switch's
// journal by itself, and every change committed anywhere arrives exactly once, each row's changes
// in commit order; a token taken before the switch resumes with exactly the changes after it;
// once Complete retired the old shards, their tokens are refused as too old. A stream follows a
// MoveTables' moved tables into the target keyspace through its journal, and back through its reverse.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import type { BinlogChunk } from "../../contract/tablet-rpc.ts";
import { arm, disarm } from "../../topology/failpoints.ts";
import { api, sql } from "./helpers.ts";
import { sleep, workflows } from "./reshard-harness.ts";
import { type Ev, replay, subscribe } from "./vstream-harness.ts";

type View = { state: string; streams: { phase: string; lagMs: number }[] };
const caughtUp = (n: number) => (v: View) => v.streams.length === n && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000);

async function sharded(ks: string, shards: string[], rows: number): Promise<Map<number, string>> {
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards })).status).toBe(200);
  const vschema = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] } } };
  expect((await api("POST", "/v1/vschema", { keyspace: ks, vschema })).status).toBe(200);
  await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", undefined, ks);
  const model = new Map<number, string>();
  for (let i = 1; i <= rows; i++) {
    await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `u${i}`], ks);
    model.set(i, `u${i}`);
  }
  return model;
}

/** Acknowledged writes: inserts of new ids and updates of old ones, recorded in `model` and in `log` (what the stream must show, in order per row). */
async function write(ks: string, model: Map<number, string>, log: string[], ids: number[], tag: string): Promise<void> {
  for (const id of ids) {
    const name = `${tag}${id}`;
    const r = await sql("INSERT INTO users (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name", [id, name], ks);
    expect(r.rows).toBeDefined();
    model.set(id, name);
    log.push(`${id}=${name}`);
  }
}

const rowLog = (evs: readonly Ev[]) =>
  evs.filter((e) => e.type === "ROW" && e.after && e.table !== "settings").map((e) => `${String(e.after?.["id"])}=${String(e.after?.["name"])}`);
const asModel = (m: Map<number, string>) => new Map([...m].map(([id, name]) => [JSON.stringify({ id }), { id, name }]));

describe("vstream across a reshard", () => {
  it("a connected stream follows a split and its reverse through the journals; a token from before the switch resumes exactly", async () => {
    const KS = "vr1";
    const model = await sharded(KS, ["-"], 20);
    const log: string[] = [];
    const sub = await subscribe(`keyspace=${KS}&tables=users&heartbeatMs=200`);
    await sub.until((s) => s.some((e) => e.type === "HEARTBEAT"));
    const wf = workflows(KS, "split");
    expect((await wf.call({ action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"] })).status).toBe(200);
    await write(KS, model, log, [1, 2, 21, 22], "copy");
    await wf.until("caught up", caughtUp(2));
    await write(KS, model, log, [3, 23], "running");
    // Up to the COMMIT of the last change: its token stands exactly after it.
    await sub.until((s) => rowLog(s).length === log.length && s.at(-1)?.type === "COMMIT");
    const before = sub.seen.filter((e) => e.type === "COMMIT").at(-1)?.token;
    expect(before).toBeDefined();

    const sw = await wf.call({ action: "switchtraffic" });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    await write(KS, model, log, [1, 4, 24, 25, 26], "switched");
    await sub.until((s) => rowLog(s).length === log.length);
    const journal = sub.seen.find((e) => e.type === "JOURNAL");
    expect(journal).toMatchObject({ from: ["-"], to: ["-80", "80-"] });
    // Nothing of the new shards before the journal, nothing of the old one after it.
    const at = sub.seen.indexOf(journal as Ev);
    expect(sub.seen.slice(0, at).some((e) => e.shard !== undefined && e.shard !== "-")).toBe(false);
    expect(sub.seen.slice(at).some((e) => e.shard === "-")).toBe(false);

    const rev = await wf.call({ action: "reversetraffic" });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    await write(KS, model, log, [2, 5, 27], "reversed");
    await sub.until((s) => rowLog(s).length === log.length);
    expect(sub.seen.filter((e) => e.type === "JOURNAL").map((e) => [e.from, e.to])).toEqual([
      [["-"], ["-80", "80-"]],
      [["-80", "80-"], ["-"]],
    ]);
    // Each change once, each row's changes in commit order: the log is the stream, row by row.
    const perRow = (xs: string[]) => [...new Set(xs.map((x) => x.split("=")[0]))].map((id) => xs.filter((x) => x.startsWith(`${id}=`)).join(" "));
    expect(perRow(rowLog(sub.seen)).sort()).toEqual(perRow(log).sort());
    expect(replay(sub.seen, "users", new Map())).toEqual(
      new Map([...asModel(model)].filter(([k]) => log.some((l) => l.startsWith(`${(JSON.parse(k) as { id: number }).id}=`)))),
    );
    await sub.close();

    // Resumed from before the switch: exactly the changes after that token, through both journals.
    const again = await subscribe(`keyspace=${KS}&tables=users&from=${before}`);
    const after = log.slice(log.indexOf("23=running23") + 1);
    await again.until((s) => rowLog(s).length >= after.length);
    await sleep(300);
    expect(perRow(rowLog(again.seen)).sort()).toEqual(perRow(after).sort());
    await again.close();
  });

  it("a merged shard starts after both old shards reached their journals; Complete makes older tokens too old", async () => {
    const KS = "vr2";
    const model = await sharded(KS, ["-80", "80-"], 16);
    const log: string[] = [];
    const sub = await subscribe(`keyspace=${KS}&tables=users&heartbeatMs=200`);
    await sub.until((s) => s.some((e) => e.type === "HEARTBEAT"));
    const first = sub.seen.find((e) => e.type === "HEARTBEAT")?.token;
    const wf = workflows(KS, "merge");
    expect((await wf.call({ action: "create", sourceShards: ["-80", "80-"], targetShards: ["-"] })).status).toBe(200);
    await wf.until("caught up", caughtUp(2));
    await write(KS, model, log, [1, 2, 3, 4], "pre");
    expect((await wf.call({ action: "switchtraffic" })).status).toBe(200);
    await write(KS, model, log, [1, 2, 3, 4, 17], "post");
    await sub.until((s) => rowLog(s).length === log.length);
    expect(sub.seen.filter((e) => e.type === "JOURNAL").map((e) => [e.from, e.to])).toEqual([[["-80", "80-"], ["-"]]]);
    // Every "post" change comes after every "pre" one of the same row, and after the journal.
    const j = sub.seen.findIndex((e) => e.type === "JOURNAL");
    for (const [i, e] of sub.seen.entries()) if (e.type === "ROW" && String(e.after?.["name"]).startsWith("post")) expect(i).toBeGreaterThan(j);
    expect(rowLog(sub.seen).filter((x) => x.includes("=pre"))).toHaveLength(4);
    await sub.close();

    expect((await wf.call({ action: "complete" })).status).toBe(200);
    const old = await subscribe(`keyspace=${KS}&tables=users&from=${first}`);
    const seen = await old.until((s) => s.some((e) => e.type === "ERROR"));
    expect(seen.find((e) => e.type === "ERROR")?.error).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(seen.find((e) => e.type === "ERROR")?.error?.message).toMatch(/too old/);
  });

  it("a stream follows a MoveTables into the target keyspace for the moved table and goes on with the others, and back to the source through its reverse", async () => {
    const SRC = "vm1src";
    const DST = "vm1dst";
    expect((await api("POST", "/v1/keyspaces", { name: SRC, shards: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/keyspaces", { name: DST, shards: ["-80", "80-"] })).status).toBe(200);
    await sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)", undefined, SRC);
    await sql("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)", undefined, SRC);
    const vs = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { customer: { column_vindexes: [{ column: "id", name: "xx" }] } } };
    expect((await api("POST", "/v1/vschema", { keyspace: DST, vschema: vs })).status).toBe(200);
    for (let i = 1; i <= 10; i++) await sql("INSERT INTO customer (id, name) VALUES (?, ?)", [i, `c${i}`], SRC);
    const all = await subscribe(`keyspace=${SRC}&heartbeatMs=200`);
    const stays = await subscribe(`keyspace=${SRC}&tables=settings&heartbeatMs=200`);
    await all.until((s) => s.some((e) => e.type === "HEARTBEAT"));
    await stays.until((s) => s.some((e) => e.type === "HEARTBEAT"));
    const wf = workflows(DST, "mv");
    const mv = await wf.call({ action: "create", kind: "movetables", sourceKeyspace: SRC, tables: ["customer"] });
    expect(mv.status, JSON.stringify(mv.body)).toBe(200);
    await sql("UPDATE customer SET name = 'before' WHERE id = 1", undefined, SRC);
    await all.until((s) => rowLog(s).includes("1=before") && s.at(-1)?.type === "COMMIT");
    const beforeSwitch = all.seen.filter((e) => e.type === "COMMIT").at(-1)?.token ?? "";
    await wf.until("caught up", caughtUp(2));
    const sw = await wf.call({ action: "switchtraffic" });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    await sql("UPDATE customer SET name = 'after' WHERE id = 2", undefined, DST);
    await sql("INSERT INTO settings (k, v) VALUES ('a', 'b')", undefined, SRC);

    const settingsRow = (s: Ev[]) => s.some((e) => e.type === "ROW" && e.table === "settings");
    await all.until((s) => rowLog(s).includes("2=after") && settingsRow(s));
    expect(all.seen.some((e) => e.type === "ERROR")).toBe(false);
    const j = all.seen.find((e) => e.type === "JOURNAL");
    expect(j).toMatchObject({ from: ["-"] });
    expect([...(j?.to ?? [])].sort()).toEqual([`${DST}/-80`, `${DST}/80-`]);
    const moved = all.seen.find((e) => e.type === "ROW" && e.after?.["name"] === "after");
    expect(moved).toMatchObject({ keyspace: DST, table: "customer" });
    expect(all.seen.indexOf(moved as Ev)).toBeGreaterThan(all.seen.indexOf(j as Ev));
    expect(rowLog(all.seen).filter((x) => x.startsWith("2="))).toEqual(["2=after"]);

    // A token from before the switch follows the same journal: exactly the later changes.
    const again = await subscribe(`keyspace=${SRC}&from=${beforeSwitch}`);
    await again.until((s) => rowLog(s).includes("2=after") && settingsRow(s));
    await sleep(300);
    expect(rowLog(again.seen)).toEqual(["2=after"]);
    expect(again.seen.filter((e) => e.type === "ROW" && e.table === "settings")).toHaveLength(1);
    await again.close();
    // A stream of the tables that stayed never meets the journal.
    await stays.until(settingsRow);
    expect(stays.seen.some((e) => e.type === "JOURNAL" || e.type === "ERROR")).toBe(false);
    await stays.close();

    // Reversed while followed: the journal back names the source shard the stream reads already;
    // the stream waits there and at the source's rejoin marker, then reads customer on "-" again.
    const beforeReverse = all.seen.filter((e) => e.type === "COMMIT" || e.type === "JOURNAL").at(-1)?.token ?? "";
    await sql("UPDATE customer SET name = 'late' WHERE id = 3", undefined, DST);
    const rev = await wf.call({ action: "reversetraffic" });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    await sql("UPDATE customer SET name = 'back' WHERE id = 4", undefined, SRC);
    // One transaction over both tables: it arrives whole on "-".
    const tx = await api("POST", "/v1/batch", {
      keyspace: SRC,
      transaction: true,
      statements: [{ sql: "UPDATE customer SET name = 'both' WHERE id = 5" }, { sql: "INSERT INTO settings (k, v) VALUES ('c', 'd')" }],
    });
    expect(tx.status, JSON.stringify(tx.body)).toBe(200);
    await all.until((s) => rowLog(s).includes("5=both"));
    const both = all.seen.findIndex((e) => e.type === "ROW" && e.after?.["name"] === "both");
    expect(all.seen[both - 1]?.type).toBe("BEGIN");
    expect(all.seen[both + 1]).toMatchObject({ type: "ROW", table: "settings" });
    expect(all.seen[both + 2]?.type).toBe("COMMIT");
    expect(all.seen.some((e) => e.type === "ERROR")).toBe(false);
    const back = all.seen.filter((e) => e.type === "JOURNAL").at(-1);
    expect(back).toMatchObject({ to: ["-"] });
    expect([...(back?.from ?? [])].sort()).toEqual([`${DST}/-80`, `${DST}/80-`]);
    const late = all.seen.find((e) => e.type === "ROW" && e.after?.["name"] === "late");
    const backRow = all.seen.find((e) => e.type === "ROW" && e.after?.["name"] === "back");
    expect(late).toMatchObject({ keyspace: DST });
    expect(backRow).toMatchObject({ shard: "-", table: "customer" });
    expect(backRow?.keyspace).toBeUndefined();
    expect(all.seen.indexOf(late as Ev)).toBeLessThan(all.seen.indexOf(back as Ev));
    expect(all.seen.indexOf(back as Ev)).toBeLessThan(all.seen.indexOf(backRow as Ev));
    // Every change of customer once, each row's in order, across both journals.
    expect(rowLog(all.seen).filter((x) => /^[2-5]=/.test(x))).toEqual(["2=after", "3=late", "4=back", "5=both"]);
    // Switched and reversed again: the same stream follows both ways once more (a marker of its own).
    await wf.until("caught up again", caughtUp(2));
    expect((await wf.call({ action: "switchtraffic" })).status).toBe(200);
    await sql("UPDATE customer SET name = 'away2' WHERE id = 6", undefined, DST);
    expect((await wf.call({ action: "reversetraffic" })).status).toBe(200);
    await sql("UPDATE customer SET name = 'back2' WHERE id = 6", undefined, SRC);
    await all.until((s) => rowLog(s).includes("6=back2"));
    expect(all.seen.some((e) => e.type === "ERROR")).toBe(false);
    expect(all.seen.filter((e) => e.type === "JOURNAL")).toHaveLength(4);
    expect(rowLog(all.seen).filter((x) => x.startsWith("6="))).toEqual(["6=away2", "6=back2"]);
    await all.close();
    // A token from before the reverse resumes through it: exactly the changes after it.
    const resumed = await subscribe(`keyspace=${SRC}&from=${beforeReverse}`);
    await resumed.until((s) => rowLog(s).includes("6=back2"));
    await sleep(300);
    expect(resumed.seen.some((e) => e.type === "ERROR")).toBe(false);
    expect(rowLog(resumed.seen)).toEqual(["3=late", "4=back", "5=both", "6=away2", "6=back2"]);
    await resumed.close();
  });

  it("a switch stopped just after its flip writes its journal when the next action finishes it, once; the stream waits for it", async () => {
    const KS = "vr3";
    const model = await sharded(KS, ["-"], 10);
    const log: string[] = [];
    const topo = await api<{ keyspaces: { name: string; shards: { name: string; tablet: string }[] }[] }>("GET", "/v1/topology");
    const oldTablet = topo.body.keyspaces.find((k) => k.name === KS)?.shards[0]?.tablet ?? "";
    const sub = await subscribe(`keyspace=${KS}&tables=users&heartbeatMs=200`);
    await sub.until((s) => s.some((e) => e.type === "HEARTBEAT"));
    const wf = workflows(KS, "split");
    expect((await wf.call({ action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"] })).status).toBe(200);
    await wf.until("caught up", caughtUp(2));
    arm({ crashAt: "switch-flipped" });
    const crashed = await wf.call({ action: "switchtraffic" });
    disarm();
    expect(crashed.status).not.toBe(200);
    // The new shards serve; the old one has no journal yet, and the stream waits.
    await write(KS, model, log, [1, 11], "flipped");
    await sleep(500);
    expect(sub.seen.some((e) => e.type === "ERROR" || e.type === "JOURNAL")).toBe(false);
    // The next action finishes the switch, journal included (the workflow's runner may be first).
    await wf.until("switched", (v) => v.state === "switched");
    await sub.until((s) => rowLog(s).length === log.length);
    expect(rowLog(sub.seen).sort()).toEqual([...log].sort());
    expect(sub.seen.filter((e) => e.type === "JOURNAL")).toHaveLength(1);
    await wf.call({ action: "show" });
    const chunk = (await env.TABLET.get(env.TABLET.idFromName(oldTablet)).readBinlog(null, 1000)) as Envelope<BinlogChunk>;
    expect(chunk.ok && chunk.value.events.filter((e) => e.kind === "journal").length).toBe(1);
    await sub.close();
  });
});
