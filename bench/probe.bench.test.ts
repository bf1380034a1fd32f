import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { it } from "vitest";

async function sql(text: string, params: unknown[] = []) {
  const res = await exports.default.fetch(new Request("http://gate/v1/sql", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: text, params }) }));
  return { status: res.status, body: await res.json() };
}

it("probe", async () => {
  console.log(JSON.stringify(await sql("CREATE TABLE bench_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)")));
  const g = await env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global")).graph();
  console.log("GRAPH", JSON.stringify(g));
  const stub = env.TABLET.get(env.TABLET.idFromName("probe/x"));
  const r = await runInDurableObject(stub, async (_i, state) => {
    const s = state.storage.sql;
    s.exec("CREATE TABLE IF NOT EXISTS p (id INTEGER PRIMARY KEY, v TEXT)");
    const out: Record<string, number> = {};
    let id = 0;
    for (const mode of ["batch", "sync-each", "batch", "sync-each"]) {
      const t0 = performance.now();
      for (let i = 0; i < 500; i++) {
        state.storage.transactionSync(() => s.exec("INSERT INTO p (id, v) VALUES (?, ?)", id++, "x" + i));
        if (mode === "sync-each") await state.storage.sync();
      }
      await state.storage.sync();
      out[mode + id] = ((performance.now() - t0) * 1000) / 500;
    }
    return out;
  });
  console.log("PROBE", JSON.stringify(r));
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) await runInDurableObject(stub, () => 1);
  console.log("RIDO us", ((performance.now() - t0) * 1000) / 100);
});
