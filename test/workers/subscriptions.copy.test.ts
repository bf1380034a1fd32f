// A queue subscription from "start": the invariant is that a consumer applying what its reader hands
// out (copy rows and inserts set a row, updates replace it, deletes remove it) holds exactly the
// keyspace's rows, values exact, whatever was written during the copy, whatever the publisher went
// through (a crash between send and store resends the round it kept, never one collected anew)
// and across a split in the middle of the copy. Pages of the copy are links of their shard's chain.

import { describe, expect, it } from "vitest";
import { armPublishCrash } from "../../gate/failpoints.ts";
import { api, sql } from "./helpers.ts";
import { caughtUp, workflows } from "./reshard-harness.ts";
import { create, delivered, expectOrderedPerShard, keyspace, read, replay, rowsNow, waitFor } from "./subscription-harness.ts";

/** Rows big enough that each shard's copy takes several pages (a read hands out about 256 KB). */
const FILL = "x".repeat(12_000);
const ROWS = 90;

async function seed(ks: string): Promise<void> {
  await keyspace(ks);
  for (let i = 1; i <= ROWS; i += 5) {
    const ids = Array.from({ length: 5 }, (_, j) => i + j);
    await sql(
      `INSERT INTO items (id, v) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((id) => [id, `r${id}-${FILL}`]),
      ks,
    );
  }
  // Values the ⚑ encoding keeps exact: an integer beyond 2^53 and a BLOB.
  await sql("INSERT INTO items (id, v) VALUES (?, ?)", [{ int: "9007199254740993" }, { base64: "AAEC/w==" }], ks);
}

/** Writes while the copy runs: updates of copied and uncopied rows, deletes, inserts, a one-shard transactional batch. */
async function writeDuring(ks: string, round: number): Promise<void> {
  await sql("UPDATE items SET v = ? WHERE id = ?", [`u${round}`, 1 + ((round * 7) % ROWS)], ks);
  await sql("DELETE FROM items WHERE id = ?", [2 + ((round * 11) % ROWS)], ks);
  await sql("INSERT INTO items (id, v) VALUES (?, ?)", [1000 + round, `n${round}`], ks);
  const b = await api("POST", "/v1/batch", {
    keyspace: ks,
    transaction: true,
    statements: [
      { sql: "INSERT INTO items (id, v) VALUES (?, ?)", params: [2000 + round, `m${round}`] },
      { sql: "UPDATE items SET v = v || '+b' WHERE id = ?", params: [2000 + round] },
    ],
  });
  expect(b.status, JSON.stringify(b.body)).toBe(200);
}

async function converged(ks: string, name: string) {
  return waitFor(
    "the consumer's rows to equal the keyspace's",
    async () => {
      const got = read(await delivered(name));
      const want = await rowsNow(ks, "items");
      const have = replay(got.txs, "items");
      return have.size === want.size && [...want].every(([k, v]) => have.get(k) === v) ? got : undefined;
    },
    60_000,
  );
}

describe("queue subscriptions from start", () => {
  it("publishes the initial copy, then the changes: the consumer's rows equal the keyspace's", { timeout: 120_000 }, async () => {
    const KS = "subc";
    await seed(KS);
    armPublishCrash("sc", 3);
    const c = await create({ name: "sc", keyspace: KS, binding: "SUBSCRIPTION_QUEUE", from: "start" });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    expect(c.body["status"]).toEqual(expect.objectContaining({ running: true, copying: true }));
    for (let round = 0; round < 6; round++) await writeDuring(KS, round);
    const got = await converged(KS, "sc");
    expectOrderedPerShard(got.txs);
    const pages = got.txs.filter((t) => t.copy);
    // Both shards copied in several pages, every copy row marked.
    expect(new Set(pages.map((t) => t.shard))).toEqual(new Set(["-80", "80-"]));
    expect(pages.length).toBeGreaterThan(2);
    for (const t of pages) for (const e of t.events) if (e.type === "ROW") expect(e.copy).toBe(true);
    // The crashes resent kept rounds: the raw deliveries hold repeats the reader dropped.
    // After the copy, changes go on as usual (and the publisher is past its crashes).
    await sql("UPDATE items SET v = 'late' WHERE id = 3", undefined, KS);
    await converged(KS, "sc");
    // The crashes resent kept rounds as they were: message numbers repeat, each with the same body.
    const bodies = new Map<number, Set<string>>();
    for (const b of await delivered("sc")) {
      const n = (JSON.parse(b) as { n: number }).n;
      bodies.set(n, (bodies.get(n) ?? new Set()).add(b));
    }
    const sent = (await delivered("sc")).length;
    expect(sent).toBeGreaterThan(bodies.size);
    for (const [n, seen] of bodies) expect(seen.size, `message ${n}`).toBe(1);
    const shown = await api<{ subscriptions: { status: { copying: boolean } }[] }>("GET", "/v1/subscriptions?name=sc");
    expect(shown.body.subscriptions[0]?.status.copying).toBe(false);
    expect((await api("POST", "/v1/subscriptions", { action: "delete", name: "sc" })).status).toBe(200);
  });

  it("a split in the middle of the copy: the new shards go on with it, nothing lost or repeated", { timeout: 180_000 }, async () => {
    const KS = "subcs";
    await seed(KS);
    const c = await create({ name: "scs", keyspace: KS, binding: "SUBSCRIPTION_QUEUE", from: "start" });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    const wf = workflows(KS, "split");
    const w = await wf.call({ action: "create", sourceShards: ["-80"], targetShards: ["-40", "40-80"] });
    expect(w.status, JSON.stringify(w.body)).toBe(200);
    for (let round = 0; round < 3; round++) await writeDuring(KS, round);
    await wf.until("caught up", caughtUp);
    const sw = await wf.call({ action: "switchtraffic" });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    for (let round = 3; round < 6; round++) await writeDuring(KS, round);
    const got = await converged(KS, "scs");
    expectOrderedPerShard(got.txs);
    expect(got.txs.some((t) => t.shard === "-40" || t.shard === "40-80")).toBe(true);
    expect((await api("POST", "/v1/subscriptions", { action: "delete", name: "scs" })).status).toBe(200);
  });
});
