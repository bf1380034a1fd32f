// Stopping and starting a workflow's streams (Vitess's `Workflow stop|start`), and on_ddl "stop".
// The invariant: a stopped stream applies nothing more and blocks the switch; started again it
// goes on from exactly where it stood (a DDL that stopped it is not met again), so after the
// switch and Complete the keyspace holds every acknowledged write, once, with the new column.

import { describe, expect, it } from "vitest";
import { api, sql } from "./helpers.ts";
import { sleep, workflows } from "./reshard-harness.ts";

type View = {
  state: string;
  streams: { id: string; phase: string; lagMs: number; message: string | null }[];
};

const caughtUp = (v: View) => v.streams.length === 2 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000);
const allStopped = (v: View) => v.streams.length === 2 && v.streams.every((s) => s.phase === "stopped");

async function setup(ks: string, onDdl: string): Promise<void> {
  expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-"] })).status).toBe(200);
  const vschema = { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { users: { column_vindexes: [{ column: "id", name: "xx" }] } } };
  expect((await api("POST", "/v1/vschema", { keyspace: ks, vschema })).status).toBe(200);
  await sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", undefined, ks);
  for (let i = 1; i <= 30; i++) await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `u${i}`], ks);
  const c = await workflows(ks, "split").call({ action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"], onDdl });
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  await workflows(ks, "split").until("copy and catch-up", caughtUp);
}

async function diffMatches(ks: string): Promise<boolean> {
  for (;;) {
    const d = await workflows(ks, "split").call({ action: "vdiff" });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    if (d.body["done"] === true) return d.body["match"] === true;
  }
}

describe("workflow stop and start", () => {
  it('on_ddl "stop" stops the streams past the DDL; start goes on after it and the split completes', async () => {
    const KS = "rss1";
    await setup(KS, "stop");
    await sql("ALTER TABLE users ADD COLUMN extra TEXT", undefined, KS);
    const stopped = await workflows(KS, "split").until("stopped at the DDL", allStopped);
    for (const s of stopped.streams) expect(s.message).toContain('on_ddl is "stop"');
    // Writes go on at the source; the targets wait, and the switch is refused.
    await sql("INSERT INTO users (id, name, extra) VALUES (100, 'late', 'x')", undefined, KS);
    await sql("UPDATE users SET extra = 'e' WHERE id <= 5", undefined, KS);
    const early = await workflows(KS, "split").call({ action: "switchtraffic" });
    expect(early.status).toBe(400);
    expect(early.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(String((early.body["error"] as { message: string }).message)).toContain("stopped");

    const started = await workflows(KS, "split").call({ action: "start" });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await workflows(KS, "split").until("caught up after start", caughtUp);
    expect(await diffMatches(KS)).toBe(true);
    expect((await workflows(KS, "split").call({ action: "switchtraffic" })).status).toBe(200);
    expect((await workflows(KS, "split").call({ action: "complete" })).status).toBe(200);
    const rows = await sql("SELECT count(*), count(extra), max(id) FROM users", undefined, KS);
    expect(rows.rows).toEqual([[31, 6, 100]]);
  }, 60_000);

  it("stop halts the streams where they stand, start resumes them, and nothing is lost or doubled", async () => {
    const KS = "rss2";
    await setup(KS, "ignore");
    const stop = await workflows(KS, "split").call({ action: "stop" });
    expect(stop.status, JSON.stringify(stop.body)).toBe(200);
    const v = await workflows(KS, "split").until("stopped", allStopped);
    for (const s of v.streams) expect(s.message).toContain("stopped by request");
    // A repeat changes nothing.
    expect((await workflows(KS, "split").call({ action: "stop" })).status).toBe(200);
    for (let i = 200; i < 220; i++) await sql("INSERT INTO users (id, name) VALUES (?, ?)", [i, `n${i}`], KS);
    await sql("DELETE FROM users WHERE id = 3", undefined, KS);
    await sleep(300);
    expect((await workflows(KS, "split").call({ action: "switchtraffic" })).status).toBe(400);
    expect((await workflows(KS, "split").call({ action: "start" })).status).toBe(200);
    expect((await workflows(KS, "split").call({ action: "start" })).status).toBe(200);
    await workflows(KS, "split").until("caught up after start", caughtUp);
    expect(await diffMatches(KS)).toBe(true);
    expect((await workflows(KS, "split").call({ action: "switchtraffic" })).status).toBe(200);
    // After the switch, stop and start act on the reverse streams.
    expect((await workflows(KS, "split").call({ action: "stop" })).status).toBe(200);
    expect((await workflows(KS, "split").call({ action: "start" })).status).toBe(200);
    expect((await workflows(KS, "split").call({ action: "complete" })).status).toBe(200);
    expect((await sql("SELECT count(*) FROM users", undefined, KS)).rows).toEqual([[49]]);
    // A completed workflow has no streams.
    const late = await workflows(KS, "split").call({ action: "start" });
    expect(late.status).toBe(400);
    expect(late.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });
  }, 60_000);
});
