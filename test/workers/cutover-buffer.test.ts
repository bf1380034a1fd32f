// Writes at cutover: a tablet whose config denies writes (a SwitchTraffic in progress) refuses
// every batch holding a write before anything runs, NOT_SERVING with `switching: true`, and
// still serves reads. The gate holds a request that meets that refusal and retries it until the
// deny is lifted (here by the Topology's repair, as the flip of the serving graph would), so the
// client sees a pause and no error; past the buffer's bound or window it answers NOT_SERVING.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import { toVtError, type VtError } from "../../contract/errors.ts";
import type { QueryResult, TabletConfig, TabletStatus } from "../../contract/tablet-rpc.ts";
import { topologyRpc } from "../../contract/topology-rpc.ts";
import { cutoverBuffer } from "../../gate/buffer.ts";
import { type CallInfo, Deadline } from "../../gate/deadline.ts";
import { Executor } from "../../gate/executor.ts";
import { api, sql } from "./helpers.ts";

const asEnv = <T>(x: unknown): Envelope<T> => x as Envelope<T>;

function tablet(name: string) {
  return env.TABLET.get(env.TABLET.idFromName(name));
}

/** Brings a tablet's config to `denyWrites` directly through its sync, as the Topology's would. */
async function denyWrites(name: string): Promise<void> {
  const t = tablet(name);
  const st = asEnv<TabletStatus>(await t.status());
  if (!st.ok || st.value.config === null) throw new Error(`no config on ${name}`);
  const config: TabletConfig = { ...st.value.config, denyWrites: true };
  const synced = asEnv<TabletStatus>(await t.sync(config, [], st.value.fence));
  expect(synced.ok && synced.value.config?.denyWrites).toBe(true);
}

/** Lifts the deny as the Topology would: its repair sends every tablet the config it records. */
async function repair(keyspace: string): Promise<void> {
  const r = await topologyRpc(env.TOPOLOGY).repair(keyspace);
  expect(r.ok).toBe(true);
}

async function rowsOn(name: string): Promise<[number, string][]> {
  return runInDurableObject(tablet(name), (_i, state) =>
    state.storage.sql
      .exec<{ id: number; v: string }>("SELECT id, v FROM d ORDER BY id")
      .toArray()
      .map((r): [number, string] => [r.id, r.v]),
  );
}

/**
 * Waits (no time limit but the test's) until `n` requests are held in this isolate's buffer;
 * fails when one of `pending` settles first (it was answered, not held).
 */
async function untilHeld(n: number, ...pending: Promise<unknown>[]): Promise<void> {
  let settled = false;
  for (const p of pending)
    p.then(
      () => (settled = true),
      () => (settled = true),
    );
  while (cutoverBuffer.held < n) {
    if (settled) throw new Error("a request was answered before it was held");
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function errorOf(p: Promise<unknown>): Promise<VtError> {
  try {
    await p;
  } catch (e) {
    return toVtError(e);
  }
  throw new Error("expected an error, got an answer");
}

/** A keyspace with rows on both shards; answers an id on `-80` and one on `80-`. */
async function keyspace(name: string): Promise<{ denied: number; other: number }> {
  expect((await api("POST", "/v1/keyspaces", { name, shards: 2 })).status).toBe(200);
  await sql("CREATE TABLE d (id INTEGER PRIMARY KEY, v TEXT)", undefined, name);
  await sql("INSERT INTO d VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f')", undefined, name);
  const denied = (await rowsOn(`${name}/-80`))[0]?.[0];
  const other = (await rowsOn(`${name}/80-`))[0]?.[0];
  if (denied === undefined || other === undefined) throw new Error("expected rows on both shards");
  return { denied, other };
}

describe("a tablet that denies writes", () => {
  it("refuses any batch with a write, switching: true, before anything runs, and serves reads", async () => {
    const { denied } = await keyspace("dw1");
    await denyWrites("dw1/-80");
    const t = tablet("dw1/-80");
    const st = asEnv<TabletStatus>(await t.status());
    const version = st.ok ? (st.value.config?.version ?? 0) : 0;
    const target = { keyspace: "dw1", shard: "-80", version };
    const write = asEnv<QueryResult[]>(await t.execute(target, [{ sql: "UPDATE d SET v = 'x' WHERE id = ?", params: [denied], kind: "write" }]));
    expect(write.ok).toBe(false);
    if (!write.ok) expect(write.error).toMatchObject({ code: "NOT_SERVING", shard: "-80", switching: true });
    // A read first does not let the batch through, and nothing of it runs.
    const mixed = asEnv<QueryResult[]>(
      await t.execute(target, [
        { sql: "SELECT v FROM d WHERE id = ?", params: [denied], kind: "read" },
        { sql: "INSERT INTO d VALUES (?, 'new')", params: [1000], kind: "insert" },
      ]),
    );
    expect(!mixed.ok && mixed.error.code).toBe("NOT_SERVING");
    const read = asEnv<QueryResult[]>(await t.execute(target, [{ sql: "SELECT v FROM d WHERE id = ?", params: [denied], kind: "read" }]));
    expect(read.ok && read.value[0]?.rows).toEqual([[(await rowsOn("dw1/-80"))[0]?.[1]]]);
    expect((await rowsOn("dw1/-80")).some(([id, v]) => id === 1000 || v === "x")).toBe(false);
    // Through the gate reads keep answering at once.
    expect((await sql("SELECT count(*) FROM d", undefined, "dw1")).rows).toEqual([[6]]);
    await repair("dw1");
    expect((await sql("UPDATE d SET v = 'x' WHERE id = ?", [denied], "dw1")).rowsAffected).toBe(1);
  });
});

describe("the Topology's wait for a flip (awaitGraph)", () => {
  const topo = () => topologyRpc(env.TOPOLOGY);
  const versionOf = async (keyspace: string) => {
    const g = await topo().graph();
    if (!g.ok) throw new Error("no graph");
    return g.value.keyspaces[keyspace]?.version ?? -1;
  };
  /** `p`'s answer, or "pending" when it has none after `ms` (well short of the wait's own 1000 ms bound). */
  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);

  it("answers the graph at once to a request that planned with an older version", async () => {
    await keyspace("aw1");
    const v = await versionOf("aw1");
    const r = await within(topo().awaitGraph("aw1", v - 1, 1000), 600);
    expect(r).not.toBe("pending");
    expect(r !== "pending" && r.ok && r.value.graph?.keyspaces["aw1"]?.version).toBe(v);
    expect(r !== "pending" && r.ok && r.value.waited).toBe(false);
  });

  it("waits at the current version until a push of the keyspace's config ends, then answers null (no new version)", async () => {
    await keyspace("aw2");
    await keyspace("aw2b");
    const v = await versionOf("aw2");
    const wait = topo().awaitGraph("aw2", v, 1000);
    // Another keyspace's push does not answer it.
    await repair("aw2b");
    expect(await within(wait, 50)).toBe("pending");
    await repair("aw2");
    const r = await within(wait, 600);
    expect(r).toEqual({ ok: true, value: { graph: null, waited: true } });
  });

  it("refuses arguments that are not a keyspace name, an integer version and a number of ms", async () => {
    for (const args of [
      [1, 1, 10],
      ["aw3", 1.5, 10],
      ["aw3", "1", 10],
      ["aw3", 1, "10"],
    ] as const) {
      const r = await (topo().awaitGraph as (...a: unknown[]) => Promise<Envelope<unknown>>)(...args);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe("INVALID_ARGUMENT");
    }
  });
});

describe("the gate's cutover buffer", () => {
  it("holds a client write and a transaction while writes are denied and answers them once the deny is lifted", async () => {
    const { denied, other } = await keyspace("dw2");
    await denyWrites("dw2/-80");
    const before = cutoverBuffer.held;
    const write = api("POST", "/v1/sql", { sql: "UPDATE d SET v = 'held' WHERE id = ?", params: [denied], keyspace: "dw2" });
    const tx = api("POST", "/v1/batch", {
      keyspace: "dw2",
      transaction: true,
      statements: [
        { sql: "SELECT v FROM d WHERE id = ?", params: [denied] },
        { sql: "UPDATE d SET v = v || '+tx' WHERE id = ?", params: [denied] },
      ],
    });
    await untilHeld(before + 2, write, tx);
    // Held, not applied; the other shard takes writes meanwhile.
    expect((await rowsOn("dw2/-80")).some(([, v]) => v.startsWith("held"))).toBe(false);
    expect((await sql("UPDATE d SET v = 'free' WHERE id = ?", [other], "dw2")).rowsAffected).toBe(1);
    await repair("dw2");
    const [w, t] = await Promise.all([write, tx]);
    expect(w.status).toBe(200);
    expect(w.body).toMatchObject({ rowsAffected: 1 });
    expect(t.status).toBe(200);
    expect(cutoverBuffer.held).toBe(before);
    const v = (await sql("SELECT v FROM d WHERE id = ?", [denied], "dw2")).rows[0]?.[0];
    // Both applied, in either order.
    expect(["held", "held+tx"]).toContain(v);
  });

  it("a held write whose wait on the Topology breaks (the Topology restarted) keeps being held and is answered once the deny is lifted", async () => {
    const { denied } = await keyspace("dw5");
    await denyWrites("dw5/-80");
    const before = cutoverBuffer.held;
    const write = api("POST", "/v1/sql", { sql: "UPDATE d SET v = 'through' WHERE id = ?", params: [denied], keyspace: "dw5" });
    await untilHeld(before + 1, write);
    const topo = env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global"));
    await runInDurableObject(topo, (_i, state) => state.abort("restart")).catch(() => undefined);
    // Still held, nothing applied; the restarted Topology's repair lifts the deny.
    await new Promise((r) => setTimeout(r, 50));
    expect(cutoverBuffer.held).toBe(before + 1);
    expect((await rowsOn("dw5/-80")).find(([id]) => id === denied)?.[1]).not.toBe("through");
    for (let n = 0; ; n++) {
      const r = await topologyRpc(env.TOPOLOGY)
        .repair("dw5")
        .catch((e: unknown) => ({ ok: false, error: e }));
      if (r.ok || n >= 5) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const w = await write;
    expect(w.status, JSON.stringify(w.body)).toBe(200);
    expect(cutoverBuffer.held).toBe(before);
    expect((await rowsOn("dw5/-80")).find(([id]) => id === denied)?.[1]).toBe("through");
  });

  it("answers NOT_SERVING at once beyond BUFFER_SIZE, and holds the one that fits", async () => {
    const { denied } = await keyspace("dw3");
    await denyWrites("dw3/-80");
    const small = { ...env, BUFFER_SIZE: String(cutoverBuffer.held + 1) };
    const first = new Executor(small).execute("dw3", { sql: "UPDATE d SET v = 'first' WHERE id = ?", params: [denied] });
    await untilHeld(cutoverBuffer.held + 1, first);
    const over = await errorOf(new Executor(small).execute("dw3", { sql: "UPDATE d SET v = 'over' WHERE id = ?", params: [denied] }));
    expect(over).toMatchObject({ code: "NOT_SERVING", switching: true, shard: "-80" });
    await repair("dw3");
    expect((await first).rowsAffected).toBe(1);
    expect((await rowsOn("dw3/-80")).find(([id]) => id === denied)?.[1]).toBe("first");
  });

  it("answers NOT_SERVING when the buffer window runs out before the deny is lifted", async () => {
    const { denied } = await keyspace("dw4");
    await denyWrites("dw4/-80");
    const before = cutoverBuffer.held;
    const entered = cutoverBuffer.entered;
    const ex = new Executor({ ...env, BUFFER_WINDOW_MS: "40" });
    const vt = await errorOf(ex.execute("dw4", { sql: "UPDATE d SET v = 'late' WHERE id = ?", params: [denied] }));
    // It was held (not refused after the ordinary retries), and the window ended it.
    expect(cutoverBuffer.entered).toBe(entered + 1);
    expect(vt).toMatchObject({ code: "NOT_SERVING", switching: true, shard: "-80" });
    expect(cutoverBuffer.held).toBe(before);
    expect((await rowsOn("dw4/-80")).some(([, v]) => v === "late")).toBe(false);
    await repair("dw4");
  });

  it("refuses a BUFFER_WINDOW_MS or BUFFER_SIZE that is not a whole number in range", async () => {
    expect(() => new Executor({ ...env, BUFFER_WINDOW_MS: "0" })).toThrow(expect.objectContaining({ code: "INTERNAL" }));
    expect(() => new Executor({ ...env, BUFFER_SIZE: "-1" })).toThrow(expect.objectContaining({ code: "INTERNAL" }));
    expect(() => new Executor({ ...env, BUFFER_SIZE: "1.5" })).toThrow(expect.objectContaining({ code: "INTERNAL" }));
  });
});

describe("the cutover buffer and lookup vindexes", () => {
  it("an INSERT, UPDATE or DELETE that keeps lookup rows elsewhere is held and applied once, the lookup rows in step; an INSERT the window ends leaves none", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: "dwl_idx", shards: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/keyspaces", { name: "dwl", shards: 2 })).status).toBe(200);
    await sql("CREATE TABLE email_idx (email TEXT PRIMARY KEY, keyspace_id BLOB NOT NULL)", undefined, "dwl_idx");
    const vschema = {
      sharded: true,
      vindexes: {
        xx: { type: "xxhash" },
        by_email: { type: "lookup_unique", params: { table: "dwl_idx.email_idx", from: "email", to: "keyspace_id" }, owner: "u" },
      },
      tables: {
        u: {
          column_vindexes: [
            { column: "id", name: "xx" },
            { column: "email", name: "by_email" },
          ],
        },
      },
    };
    expect((await api("POST", "/v1/vschema", { keyspace: "dwl", vschema })).status).toBe(200);
    await sql("CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT)", undefined, "dwl");
    await denyWrites("dwl/-80");
    await denyWrites("dwl/80-");
    const write = api("POST", "/v1/sql", { sql: "INSERT INTO u (id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x')", keyspace: "dwl" });
    await untilHeld(cutoverBuffer.held + 1, write);
    await repair("dwl");
    const w = await write;
    expect(w.status).toBe(200);
    expect(w.body).toMatchObject({ rowsAffected: 3 });
    expect((await sql("SELECT email FROM email_idx ORDER BY email", undefined, "dwl_idx")).rows).toEqual([["a@x"], ["b@x"], ["c@x"]]);
    expect((await sql("SELECT id FROM u WHERE email = 'b@x'", undefined, "dwl")).rows).toEqual([[2]]);

    await denyWrites("dwl/-80");
    await denyWrites("dwl/80-");
    const ex = new Executor({ ...env, BUFFER_WINDOW_MS: "40" });
    const vt = await errorOf(ex.execute("dwl", { sql: "INSERT INTO u (id, email) VALUES (4, 'd@x'), (5, 'e@x')", params: [] }));
    expect(vt).toMatchObject({ code: "NOT_SERVING", switching: true });
    await repair("dwl");
    expect((await sql("SELECT email FROM email_idx ORDER BY email", undefined, "dwl_idx")).rows).toEqual([["a@x"], ["b@x"], ["c@x"]]);
    expect((await sql("INSERT INTO u (id, email) VALUES (4, 'd@x'), (5, 'e@x')", undefined, "dwl")).rowsAffected).toBe(2);

    // An UPDATE of the lookup column and a DELETE: held, then applied once, the lookup rows in step.
    await denyWrites("dwl/-80");
    await denyWrites("dwl/80-");
    const up = api("POST", "/v1/sql", { sql: "UPDATE u SET email = 'b2@x' WHERE id = 2", keyspace: "dwl" });
    const del = api("POST", "/v1/sql", { sql: "DELETE FROM u WHERE email = 'c@x'", keyspace: "dwl" });
    await untilHeld(cutoverBuffer.held + 2, up, del);
    await repair("dwl");
    const [ur, dr] = await Promise.all([up, del]);
    expect([ur.status, dr.status]).toEqual([200, 200]);
    expect([ur.body, dr.body]).toMatchObject([{ rowsAffected: 1 }, { rowsAffected: 1 }]);
    expect((await sql("SELECT email FROM email_idx ORDER BY email", undefined, "dwl_idx")).rows).toEqual([["a@x"], ["b2@x"], ["d@x"], ["e@x"]]);
    expect((await sql("SELECT id, email FROM u ORDER BY id", undefined, "dwl")).rows).toEqual([
      [1, "a@x"],
      [2, "b2@x"],
      [4, "d@x"],
      [5, "e@x"],
    ]);
  });
});

/** Holds a tablet's input gate until `release()` (or a safety timeout, so a failure is an error, not a hang). */
function holdTablet(name: string): { held: Promise<void>; release: () => void; done: Promise<void> } {
  let release = (): void => undefined;
  const released = new Promise<void>((r) => {
    release = r;
    setTimeout(r, 3_000);
  });
  let markHeld = (): void => undefined;
  const held = new Promise<void>((r) => (markHeld = r));
  const done = runInDurableObject(tablet(name), (_i, state) =>
    state.blockConcurrencyWhile(async () => {
      markHeld();
      await released;
    }),
  );
  return { held, release, done };
}

/** A deadline whose time runs out just before the held request would send its write to a tablet again. */
class RunsOutBeforeResend extends Deadline {
  readonly #clock: { skew: number };
  readonly #heldBefore: number;

  constructor(budgetMs: number, heldBefore: number, clock = { skew: 0 }) {
    super(budgetMs, () => Date.now() + clock.skew);
    this.#clock = clock;
    this.#heldBefore = heldBefore;
  }

  override race<T>(start: () => Promise<T>, info: CallInfo): Promise<T> {
    if (info.writes && info.target.startsWith("tablet") && cutoverBuffer.held > this.#heldBefore) this.#clock.skew = 10 * this.budgetMs;
    return super.race(start, info);
  }
}

describe("a held write that reaches its deadline", () => {
  it("says it applied nothing when the deadline stops it before it is sent again (every try was refused)", async () => {
    const { denied } = await keyspace("dwd1");
    await denyWrites("dwd1/-80");
    const before = cutoverBuffer.held;
    const ex = new Executor(env, new RunsOutBeforeResend(5_000, before));
    const vt = await errorOf(ex.execute("dwd1", { sql: "UPDATE d SET v = 'late' WHERE id = ?", params: [denied] }));
    expect(vt).toMatchObject({ code: "TIMEOUT", applied: false, shard: "-80" });
    expect(vt.message).toContain("nothing of it was applied");
    expect(cutoverBuffer.held).toBe(before);
    await repair("dwd1");
    expect((await rowsOn("dwd1/-80")).some(([, v]) => v === "late")).toBe(false);
  });

  it("keeps applied unknown when its last try was sent and did not answer in time", async () => {
    const { denied } = await keyspace("dwd2");
    await denyWrites("dwd2/-80");
    const before = cutoverBuffer.held;
    const ex = new Executor({ ...env, QUERY_TIMEOUT_MS: "300" });
    const write = errorOf(ex.execute("dwd2", { sql: "UPDATE d SET v = 'late' WHERE id = ?", params: [denied] }));
    await untilHeld(before + 1, write);
    // The next try reaches a tablet that cannot answer before the deadline: the gate cannot know what it did.
    const busy = holdTablet("dwd2/-80");
    await busy.held;
    const vt = await write;
    busy.release();
    await busy.done;
    expect(vt).toMatchObject({ code: "TIMEOUT", applied: "unknown", shard: "-80" });
    expect(cutoverBuffer.held).toBe(before);
    await repair("dwd2");
    // It was refused in the end (writes were still denied), and never sent again.
    expect((await rowsOn("dwd2/-80")).some(([, v]) => v === "late")).toBe(false);
  });

  it("answers the refusal, saying nothing was applied, when the deadline leaves no time for another try", async () => {
    const { denied } = await keyspace("dwd3");
    await denyWrites("dwd3/-80");
    const ex = new Executor({ ...env, QUERY_TIMEOUT_MS: "60" });
    const vt = await errorOf(ex.execute("dwd3", { sql: "UPDATE d SET v = 'late' WHERE id = ?", params: [denied] }));
    expect(["NOT_SERVING", "TIMEOUT"]).toContain(vt.code);
    expect(vt["applied"]).not.toBe("unknown");
    await repair("dwd3");
    expect((await rowsOn("dwd3/-80")).some(([, v]) => v === "late")).toBe(false);
  });
});
