// Workflow actions meeting each other and restarts, under clients writing: two switchtraffic calls
// at once, a switchtraffic while a VDiff runs, a cancel during the copy followed by a new workflow
// of the same name, and a source tablet restarted while its streams read it. Each ends with the
// keyspace holding exactly the acknowledged writes, each row on its shard, and no write failed.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { armStreamFaults, disarmStreamFaults } from "../../tablet/stream-faults.ts";
import { caughtUp, check, type Model, setUp, sleep, workflows, writer } from "./reshard-harness.ts";

const SPLIT = { initial: ["-80", "80-"], users: 40 } as const;
const FINAL = ["-40", "40-80", "80-"];

function model(): Model {
  return { users: new Map(), tags: new Map(), countries: new Map() };
}

async function created(ks: string, name = "wf") {
  const wf = workflows(ks, name);
  const c = await wf.call({ action: "create", sourceShards: ["-80"], targetShards: ["-40", "40-80"] });
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  return wf;
}

describe("reshard races", () => {
  it("two switchtraffic calls at once both answer switched, and the switch happens once", async () => {
    const ks = "rr1";
    const m = model();
    await setUp(ks, SPLIT, m);
    const w = writer(ks, m, 0, 11);
    const wf = await created(ks);
    await wf.until("caught up", caughtUp);
    const [a, b] = await Promise.all([wf.call({ action: "switchtraffic" }), wf.call({ action: "switchtraffic" })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect([a.body["state"], b.body["state"]]).toEqual(["switched", "switched"]);
    await sleep(50);
    await w.stop();
    expect((await wf.retried("complete"))["state"]).toBe("completed");
    expect(w.errors).toEqual([]);
    await check(ks, FINAL, m);
  }, 60_000);

  it("a switchtraffic sent while a VDiff runs waits for it, then switches", async () => {
    const ks = "rr2";
    const m = model();
    await setUp(ks, SPLIT, m);
    const w = writer(ks, m, 0, 12);
    const wf = await created(ks);
    await wf.until("caught up", caughtUp);
    const [diff, sw] = await Promise.all([wf.call({ action: "vdiff" }), sleep(1).then(() => wf.call({ action: "switchtraffic" }))]);
    expect(diff.status, JSON.stringify(diff.body)).toBe(200);
    expect(diff.body).toMatchObject({ match: true });
    expect(sw.status, JSON.stringify(sw.body)).toBe(200);
    expect(sw.body["state"]).toBe("switched");
    await sleep(50);
    await w.stop();
    expect((await wf.retried("complete"))["state"]).toBe("completed");
    expect(w.errors).toEqual([]);
    await check(ks, FINAL, m);
  }, 60_000);

  it("a workflow cancelled during its copy leaves nothing behind, and a new one of the same name reshards", async () => {
    const ks = "rr3";
    const m = model();
    await setUp(ks, SPLIT, m);
    const w = writer(ks, m, 0, 13);
    // Parts are lost, so the first workflow is still copying when it is cancelled.
    armStreamFaults({ drop: true });
    const first = await created(ks);
    const old = (await first.call({ action: "show" })).body as { targets: { tablet: string }[] };
    expect((await first.call({ action: "cancel" })).status).toBe(200);
    disarmStreamFaults();
    const again = await created(ks);
    await again.until("caught up", caughtUp);
    expect((await again.retried("switchtraffic"))["state"]).toBe("switched");
    await sleep(50);
    await w.stop();
    expect((await again.retried("complete"))["state"]).toBe("completed");
    expect(w.errors).toEqual([]);
    await check(ks, FINAL, m);
    // The cancelled workflow's tablets hold no rows and no streams, and their alarms stay off.
    await sleep(100);
    for (const t of old.targets) {
      const left = await runInDurableObject(env.TABLET.get(env.TABLET.idFromName(t.tablet)), async (_i, state) => ({
        tables: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name IN ('users', 'tags', 'countries')").one().n,
        streams: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_vreplication").one().n,
      }));
      expect(left).toEqual({ tables: 0, streams: 0 });
    }
  }, 60_000);

  it("tablets restarted while streams read them and pump into them (copy, and reverse streams after the switch): the streams go on", async () => {
    const ks = "rr4";
    const m = model();
    await setUp(ks, { initial: SPLIT.initial, users: 80 }, m);
    const w = writer(ks, m, 0, 14);
    const wf = await created(ks);
    const shown = (await wf.call({ action: "show" })).body as { sources: { tablet: string }[]; targets: { tablet: string }[] };
    const restart = (name: string) =>
      runInDurableObject(env.TABLET.get(env.TABLET.idFromName(name)), (_i, state) => {
        state.abort("restart");
      }).catch(() => undefined);
    for (const name of [`${ks}/-80`, shown.targets[0]?.tablet ?? "?", `${ks}/-80`, shown.targets[1]?.tablet ?? "?"]) {
      await restart(name);
      await sleep(30);
    }
    await wf.until("caught up", caughtUp);
    expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
    // The old source now pumps the reverse streams from its alarm.
    await restart(`${ks}/-80`);
    await sleep(100);
    expect((await wf.retried("reversetraffic"))["state"]).toBe("running");
    await wf.until("forward streams again", caughtUp);
    expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
    await sleep(50);
    await w.stop();
    expect((await wf.retried("complete"))["state"]).toBe("completed");
    expect(w.errors).toEqual([]);
    await check(ks, FINAL, m);
  }, 60_000);
});
