// A tablet that does not answer (here: held busy through its input gate, as a tablet stuck in a
// long statement is on Cloudflare, where every Durable Object has its own thread) must not hold
// the gate: the request answers TIMEOUT within its deadline, the other shard and /healthz keep
// answering, and a write that timed out is never retried by the gate.
//
// Locally a tablet stuck inside one SQLite step blocks the whole workerd thread, timers included
// (see gate/deadline.ts); that case is covered by the tablet refusing what never ends
// (runaway.test.ts), not by the deadline.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { toVtError } from "../../contract/errors.ts";
import { Executor } from "../../gate/executor.ts";
import { api, sql } from "./helpers.ts";

/** Holds a Durable Object's input gate until `release()` (or a safety timeout, so old code fails, not hangs). */
function hold<T extends Rpc.DurableObjectBranded | undefined>(stub: DurableObjectStub<T>): { held: Promise<void>; release: () => void; done: Promise<void> } {
  let release = (): void => undefined;
  const released = new Promise<void>((r) => {
    release = r;
    setTimeout(r, 3_000);
  });
  let markHeld = (): void => undefined;
  const held = new Promise<void>((r) => (markHeld = r));
  const done = runInDurableObject(stub, (_i, state) =>
    state.blockConcurrencyWhile(async () => {
      markHeld();
      await released;
    }),
  );
  return { held, release, done };
}

function holdTablet(name: string): ReturnType<typeof hold> {
  return hold(env.TABLET.get(env.TABLET.idFromName(name)));
}

async function idsOn(name: string): Promise<number[]> {
  const stub = env.TABLET.get(env.TABLET.idFromName(name));
  return runInDurableObject(stub, (_i, state) =>
    state.storage.sql
      .exec<{ id: number }>("SELECT id FROM d ORDER BY id")
      .toArray()
      .map((r) => r.id),
  );
}

async function errorOf(p: Promise<unknown>): Promise<ReturnType<typeof toVtError>> {
  try {
    await p;
  } catch (e) {
    return toVtError(e);
  }
  throw new Error("expected an error, got an answer");
}

describe("the gate's deadline", () => {
  it("answers TIMEOUT for a shard that does not answer, while /healthz and the other shard answer", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "dl", shards: 2 })).status).toBe(200);
    await sql("CREATE TABLE d (id INTEGER PRIMARY KEY, v TEXT)", undefined, "dl");
    await sql("INSERT INTO d VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f')", undefined, "dl");
    const [busyId] = await idsOn("dl/-80");
    const [freeId] = await idsOn("dl/80-");
    if (busyId === undefined || freeId === undefined) throw new Error("expected rows on both shards");

    const busy = holdTablet("dl/-80");
    await busy.held;
    const ex = new Executor({ ...env, QUERY_TIMEOUT_MS: "200" });
    const stuck = errorOf(ex.execute("dl", { sql: "SELECT v FROM d WHERE id = ?", params: [busyId] }));
    // Meanwhile the cluster answers: health, and a point read on the shard that is not busy.
    const health = await api("GET", "/healthz");
    expect(health.status).toBe(200);
    expect((await sql("SELECT id FROM d WHERE id = ?", [freeId], "dl")).rows).toEqual([[freeId]]);
    const vt = await stuck;
    busy.release();
    await busy.done;
    expect(vt.code).toBe("TIMEOUT");
    expect(vt.retryable).toBe(true);
    expect(vt["shard"]).toBe("-80");
    expect(vt["deadlineMs"]).toBe(200);
    expect(vt["applied"]).toBeUndefined();
    // Once the shard answers again, so does the same statement.
    expect((await sql("SELECT id FROM d WHERE id = ?", [busyId], "dl")).rows).toEqual([[busyId]]);
  });

  it("answers TIMEOUT for a write whose outcome it cannot know, and never sends it twice", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "dlw", shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE w (n INTEGER)", undefined, "dlw");
    const busy = holdTablet("dlw/-");
    await busy.held;
    const ex = new Executor({ ...env, QUERY_TIMEOUT_MS: "200" });
    const vt = await errorOf(ex.execute("dlw", { sql: "INSERT INTO w (n) VALUES (1)" }));
    busy.release();
    await busy.done;
    expect(vt.code).toBe("TIMEOUT");
    expect(vt["applied"]).toBe("unknown");
    // The tablet ran the write it had queued once it was free again: exactly once, not retried.
    expect((await sql("SELECT count(*) FROM w", undefined, "dlw")).rows).toEqual([[1]]);
  });

  it("bounds a transactional batch and topology calls by the same deadline", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "dlb", shards: 1 })).status).toBe(200);
    await sql("CREATE TABLE b (id INTEGER PRIMARY KEY)", undefined, "dlb");
    const busy = holdTablet("dlb/-");
    await busy.held;
    const ex = new Executor({ ...env, QUERY_TIMEOUT_MS: "200" });
    const vt = await errorOf(ex.batch("dlb", [{ sql: "INSERT INTO b VALUES (1)" }, { sql: "INSERT INTO b VALUES (2)" }], true));
    busy.release();
    await busy.done;
    expect(vt.code).toBe("TIMEOUT");
    expect(vt["applied"]).toBe("unknown");

    const topo = hold(env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global")));
    await topo.held;
    const tv = await errorOf(new Executor({ ...env, QUERY_TIMEOUT_MS: "200" }).view());
    topo.release();
    await topo.done;
    expect(tv.code).toBe("TIMEOUT");
  });
});
