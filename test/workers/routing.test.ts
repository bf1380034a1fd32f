import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createClient, VitessError } from "../../client/index.ts";
import type { Envelope } from "../../contract/envelope.ts";
import type { TabletStatus } from "../../contract/tablet-rpc.ts";
import { sql, sqlError } from "./helpers.ts";

async function served(keyspace: string, shards: string[]): Promise<number[]> {
  return Promise.all(
    shards.map(async (s) => {
      const st = (await env.TABLET.get(env.TABLET.idFromName(`${keyspace}/${s}`)).status()) as Envelope<TabletStatus>;
      if (!st.ok) throw new Error(st.error.message);
      return st.value.served;
    }),
  );
}

describe("routing", () => {
  it("sends a point query to exactly one tablet, IN to the shards of its values, the rest everywhere", async () => {
    await sql("CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)");
    await sql("INSERT INTO r VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f')");
    const shards = ["-80", "80-"];
    const delta = async (text: string, params?: unknown[]) => {
      const before = await served("main", shards);
      const res = await sql(text, params);
      const after = await served("main", shards);
      return { res, touched: after.map((a, i) => a - (before[i] ?? 0)) };
    };
    for (let id = 1; id <= 6; id++) {
      const { res, touched } = await delta("SELECT v FROM r WHERE id = ?", [id]);
      expect(res.rows).toEqual([[String.fromCharCode(96 + id)]]);
      expect(touched.sort()).toEqual([0, 1]);
    }
    const scatter = await delta("SELECT count(*) FROM r WHERE v > 'b'");
    expect(scatter.res.rows).toEqual([[4]]);
    expect(scatter.touched).toEqual([1, 1]);
    // An UPDATE on the vindex column's value reaches one shard too.
    const upd = await delta("UPDATE r SET v = 'z' WHERE id = 3");
    expect(upd.res.rowsAffected).toBe(1);
    expect(upd.touched.sort()).toEqual([0, 1]);
  });
});

describe("client SDK and capnweb RPC against the real gate", () => {
  const gateFetch = ((input: RequestInfo | URL, init?: RequestInit) => exports.default.fetch(new Request(input, init))) as typeof fetch;

  for (const transport of ["http", "websocket"] as const) {
    it(`execute, query, batch and errors over ${transport}`, async () => {
      const db = createClient({ url: "http://gate", fetch: gateFetch, transport });
      try {
        await db.execute("CREATE TABLE IF NOT EXISTS sdk_users (id INTEGER PRIMARY KEY, name TEXT, avatar BLOB)");
        const big = 2n ** 60n + (transport === "http" ? 3n : 5n);
        const ins = await db.execute("INSERT INTO sdk_users VALUES (?, ?, ?)", [big, `u-${transport}`, new Uint8Array([1, 2, 3])]);
        expect(ins.rowsAffected).toBe(1);
        expect(ins.lastInsertRowid).toBe(big);
        const rs = await db.execute("SELECT id, name, avatar FROM sdk_users WHERE id = ?", [big]);
        expect(rs.rows).toEqual([[big, `u-${transport}`, new Uint8Array([1, 2, 3])]]);
        const users = await db.query<{ id: bigint; name: string }>("SELECT id, name FROM sdk_users WHERE id = $1", [big]);
        expect(users).toEqual([{ id: big, name: `u-${transport}` }]);
        const results = await db.batch([{ sql: "SELECT count(*) AS n FROM sdk_users WHERE id = ?", params: [big] }, "SELECT 1 + 1"]);
        expect(results.map((r) => r.rows)).toEqual([[[1]], [[2]]]);
        const err = await db.execute("SELEC 1").catch((e: unknown) => e);
        expect(err).toBeInstanceOf(VitessError);
        expect((err as VitessError).code).toBe("SYNTAX_ERROR");
        expect((err as VitessError).position).toBe(0);
        // A refusal carries its stable id, as the HTTP error body does.
        const refused = await db.execute("VACUUM").catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(VitessError);
        const http = await sqlError("VACUUM");
        expect(http["id"]).toMatch(/^VD\d{4}$/);
        expect({ code: (refused as VitessError).code, id: (refused as VitessError).id }).toEqual({ code: "UNSUPPORTED", id: http["id"] });
        // REAL overflow is ±Infinity both ways (over HTTP JSON it is {"real": "Infinity"}).
        expect((await db.execute("SELECT 1e999, 9e999 * -1, ?, typeof(?1)", [Number.NEGATIVE_INFINITY])).rows).toEqual([
          [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, "real"],
        ]);
        const topo = await db.topology();
        expect(topo.keyspaces.some((k) => k.name === "main")).toBe(true);
      } finally {
        await db.close();
      }
    });
  }

  it("binds a token to the RPC session with authenticate()", async () => {
    const { GateRpc } = await import("../../gate/rpc.ts");
    const e = Object.create(env) as Env;
    Object.defineProperty(e, "GATE_TOKEN", { value: "s3cret" });
    Object.defineProperty(e, "ADMIN_TOKEN", { value: "adm1n" });
    const rpc = new GateRpc(e, "none");
    await expect(rpc.execute({ sql: "SELECT 1" })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    await expect(rpc.authenticate("wrong")).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    await rpc.authenticate("s3cret");
    expect((await rpc.execute({ sql: "SELECT 40 + 2" })).rows).toEqual([[42]]);
    await expect(rpc.createKeyspace({ name: "x", shards: 2 })).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
  });
});
