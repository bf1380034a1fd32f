// The new user's path, end to end from Node: `npm run dev` (wrangler dev on local workerd),
// then the SDK over capnweb and vtctl over HTTP against it.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../client/index.ts";
import { type DevServer, root, startDev } from "./wrangler-dev.ts";

let dev: DevServer | undefined;
let url = "";
let state = "";

beforeAll(async () => {
  dev = await startDev();
  url = dev.url;
  state = dev.state;
}, 120_000);

afterAll(() => dev?.stop());

function vtctl(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, "cli", "vtctl.mjs"), "--server", url, ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("wrangler dev + SDK + vtctl", () => {
  it("serves the SDK from Node over both transports", async () => {
    for (const transport of ["http", "websocket"] as const) {
      const db = createClient({ url, transport });
      try {
        await db.execute("CREATE TABLE IF NOT EXISTS e2e (id INTEGER PRIMARY KEY, name TEXT, data BLOB)");
        const id = transport === "http" ? 2n ** 62n : 7;
        await db.execute("INSERT INTO e2e VALUES (?, ?, ?)", [id, transport, new Uint8Array([9, 8])]);
        expect(await db.query("SELECT id, name, data FROM e2e WHERE id = ?", [id])).toEqual([{ id, name: transport, data: new Uint8Array([9, 8]) }]);
      } finally {
        await db.close();
      }
    }
    const db = createClient({ url });
    expect((await db.execute("SELECT count(*) FROM e2e")).rows).toEqual([[2]]);
    await db.close();
  }, 60_000);

  it("creates a keyspace and applies a vschema with vtctl", () => {
    const created = vtctl("keyspace", "create", "k2", "--shards", "4");
    expect(created.status, created.stderr).toBe(0);
    const file = join(state, "vschema.json");
    writeFileSync(
      file,
      JSON.stringify({ sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { orders: { column_vindexes: [{ column: "user_id", name: "xx" }] } } }),
    );
    const applied = vtctl("vschema", "apply", "k2", "--file", file);
    expect(applied.status, applied.stderr).toBe(0);
    expect(vtctl("sql", "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL)", "--keyspace", "k2").status).toBe(0);
    expect(vtctl("sql", "INSERT INTO orders VALUES (1, 7, 2.5), (2, 7, 1), (3, 9, 4)", "--keyspace", "k2").status).toBe(0);
    const out = vtctl("sql", "SELECT user_id, sum(total) AS s FROM orders GROUP BY user_id ORDER BY user_id", "--keyspace", "k2", "--json");
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({
      columns: ["user_id", "s"],
      rows: [
        [7, 3.5],
        [9, 4],
      ],
    });
    const topo = vtctl("topology", "--json");
    const view = JSON.parse(topo.stdout) as { keyspaces: { name: string; shards: { name: string; rowCount: number }[] }[] };
    const k2 = view.keyspaces.find((k) => k.name === "k2");
    expect(k2?.shards.map((s) => s.name)).toEqual(["-40", "40-80", "80-c0", "c0-"]);
    expect(k2?.shards.reduce((a, s) => a + s.rowCount, 0)).toBe(3);
    const bad = vtctl("sql", "SELEC 1");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("SYNTAX_ERROR");
  }, 60_000);
});
