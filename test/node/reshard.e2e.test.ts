// Online resharding as a user runs it: `wrangler dev` (local workerd: Durable Objects, the
// vreplication Queue, the Workflow runner) and the real vtctl CLI as a child process. A client
// keeps inserting and updating through HTTP while -80 splits into -40 and 40-80, is switched,
// reversed, switched again and completed: no write fails and every acknowledged write is there.
// Then a `reshard create --auto-switch` is switched by the Cloudflare Workflow on its own.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDev, vtctl as run } from "./wrangler-dev.ts";

let dev: DevServer;

beforeAll(async () => {
  dev = await startDev();
}, 120_000);

afterAll(() => dev?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function vtctl(...args: string[]): Promise<string> {
  const r = await run(dev.url, ...args);
  if (r.status !== 0) throw new Error(`vtctl ${args.join(" ")}: exit ${r.status}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

type View = { state: string; reads?: string; writes?: string; streams: { phase: string; lagMs: number }[] };

/** Polls `reshard show --json` until `ok` (generously: the machine may be loaded). */
async function until(keyspace: string, workflow: string, what: string, ok: (v: View) => boolean, ms = 60_000): Promise<View> {
  const end = Date.now() + ms;
  for (;;) {
    const v = JSON.parse(await vtctl("reshard", "show", "--keyspace", keyspace, "--workflow", workflow, "--json")) as View;
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}\n${dev.log().slice(-4000)}`);
    await sleep(250);
  }
}

const caughtUp = (v: View) => v.streams.length > 0 && v.streams.every((s) => s.phase === "running" && s.lagMs < 1000);

async function sql(keyspace: string, text: string, params: unknown[] = []): Promise<{ status: number; body: { rows?: unknown[][]; error?: unknown } }> {
  const r = await fetch(`${dev.url}/v1/sql`, { method: "POST", body: JSON.stringify({ keyspace, sql: text, params }) });
  return { status: r.status, body: (await r.json()) as { rows?: unknown[][]; error?: unknown } };
}

/** A client inserting new rows and updating acknowledged ones, one request at a time. */
function writer(keyspace: string, model: Map<number, string>, firstId: number) {
  let stop = false;
  let next = firstId;
  const errors: unknown[] = [];
  const done = (async () => {
    for (let i = 1; !stop; i++) {
      const ids = [...model.keys()];
      const update = i % 2 === 0;
      const id = update ? (ids[(i * 7919) % ids.length] ?? 1) : next++;
      const name = `w${i}`;
      try {
        const r = update
          ? await sql(keyspace, "UPDATE users SET name = ? WHERE id = ?", [name, id])
          : await sql(keyspace, "INSERT INTO users (id, name, pad) VALUES (?, ?, ?)", [id, name, "x".repeat(300)]);
        if (r.status === 200) model.set(id, name);
        else errors.push({ id, update, ...r });
      } catch (e) {
        errors.push({ id, update, error: String(e) });
      }
      await sleep(5);
    }
  })();
  return {
    errors,
    writes: () => next - firstId,
    async stop() {
      stop = true;
      await done;
    },
  };
}

describe("resharding through wrangler dev and vtctl", () => {
  it("splits -80 under live writes: create, vdiff, switchtraffic, reversetraffic, switchtraffic, complete", async () => {
    const ks = "rs";
    await vtctl("keyspace", "create", ks, "--shards", "-80,80-");
    await vtctl("sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, pad TEXT)", "--keyspace", ks);
    // 600 rows of ~1.5 KB: a copy unit of -80 (up to 512 KB) is cut into several Queue messages.
    const model = new Map<number, string>();
    for (let b = 0; b < 6; b++) {
      const ids = Array.from({ length: 100 }, (_, i) => b * 100 + i + 1);
      const r = await sql(
        ks,
        `INSERT INTO users (id, name, pad) VALUES ${ids.map(() => "(?, ?, ?)").join(", ")}`,
        ids.flatMap((id) => [id, `u${id}`, "p".repeat(1500)]),
      );
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      for (const id of ids) model.set(id, `u${id}`);
    }

    const w = writer(ks, model, 10_000);
    const created = await vtctl("reshard", "create", "--keyspace", ks, "--workflow", "split", "--source-shards", "-80", "--target-shards", "-40,40-80");
    expect(created).toContain("workflow rs.split (reshard)");
    await until(ks, "split", "copy and catch-up", caughtUp);

    const diff = JSON.parse(await vtctl("vdiff", "--keyspace", ks, "--workflow", "split", "--json")) as {
      match: boolean;
      done: boolean;
      tables: { table: string; compared: number }[];
    };
    expect(diff).toMatchObject({ match: true, done: true });
    expect(diff.tables.find((t) => t.table === "users")?.compared).toBeGreaterThan(250);

    const step = async (action: string, ...more: string[]) =>
      JSON.parse(await vtctl("reshard", action, "--keyspace", ks, "--workflow", "split", ...more, "--json")) as View & { reads?: string; writes?: string };
    // Reads first, alone (no pause), then both.
    expect(await step("switchtraffic", "--tablet-types", "replica,rdonly")).toMatchObject({ state: "running", reads: "targets", writes: "sources" });
    expect(await vtctl("reshard", "show", "--keyspace", ks, "--workflow", "split")).toContain("reads served by the targets, writes by the sources");
    expect((await step("switchtraffic")).state).toBe("switched");
    await sleep(500);
    expect((await step("reversetraffic")).state).toBe("running");
    await until(ks, "split", "forward streams running again", (v) => v.state === "running" && caughtUp(v));
    expect((await step("switchtraffic")).state).toBe("switched");
    await sleep(500);
    await w.stop();
    expect(w.errors).toEqual([]);
    expect(w.writes()).toBeGreaterThan(0);
    expect((await step("complete")).state).toBe("completed");

    const rows = await sql(ks, "SELECT id, name FROM users ORDER BY id");
    expect(rows.body.rows).toEqual([...model].sort((a, b) => a[0] - b[0]).map(([id, name]) => [id, name]));
    const topo = JSON.parse(await vtctl("topology", "--json")) as { keyspaces: { name: string; shards: { name: string; rowCount: number }[] }[] };
    const shards = topo.keyspaces.find((k) => k.name === ks)?.shards ?? [];
    expect(shards.map((s) => s.name)).toEqual(["-40", "40-80", "80-"]);
    expect(shards.reduce((n, s) => n + s.rowCount, 0)).toBe(model.size);
    const table = await vtctl("topology");
    for (const name of ["-40", "40-80", "80-"]) expect(table).toContain(`| ${name} `);
  }, 240_000);

  it("switches by itself with --auto-switch: the Workflow runner waits for the copy, runs VDiff and switches", async () => {
    const ks = "auto";
    await vtctl("keyspace", "create", ks, "--shards", "-80,80-");
    await vtctl("sql", "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT)", "--keyspace", ks);
    const ids = Array.from({ length: 50 }, (_, i) => i + 1);
    expect(
      (
        await sql(
          ks,
          `INSERT INTO items VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
          ids.flatMap((id) => [id, `l${id}`]),
        )
      ).status,
    ).toBe(200);
    await vtctl("reshard", "create", "--keyspace", ks, "--workflow", "auto", "--source-shards", "-80", "--target-shards", "-40,40-80", "--auto-switch");
    // Nothing but the Workflow switches it.
    const v = await until(ks, "auto", "switched by the Workflow runner", (x) => x.state !== "running", 120_000);
    expect(v).toMatchObject({ state: "switched", reads: "targets", writes: "targets" });
    expect(JSON.parse(await vtctl("reshard", "complete", "--keyspace", ks, "--workflow", "auto", "--json"))).toMatchObject({ state: "completed" });
    const rows = await sql(ks, "SELECT id, label FROM items ORDER BY id");
    expect(rows.body.rows).toEqual(ids.map((id) => [id, `l${id}`]));
  }, 240_000);
});
