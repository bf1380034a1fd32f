// MoveTables under faults and races, with a client writing throughout naming either keyspace:
// queue parts duplicated, reordered and dropped; tablets restarted mid-copy; the Topology
// stopping mid-switch; two switches at once; a complete refused after a reverse. Each ends
// completed with every acknowledged write in the target keyspace exactly once, on its shard, the
// moved tables gone from the source, and no client write failed.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { armStreamFaults, disarmStreamFaults } from "../../tablet/stream-faults.ts";
import { arm, disarm } from "../../topology/failpoints.ts";
import {
  bothAnswer,
  caughtUp,
  checkCompleted,
  moveModel,
  moveWorkflow,
  moveWriter,
  type Pair,
  restartTopologyThenAlarm,
  setUpMove,
  sleep,
  sourceRefuses,
  tabletOf,
  topology,
} from "./movetables-harness.ts";

const TABLES = ["customer", "corder"];

async function started(p: Pair, rows: number, seed: number) {
  const m = moveModel();
  await setUpMove(p, rows, m);
  const wf = moveWorkflow(p, "mv");
  const c = await wf.call({ action: "create", kind: "movetables", sourceKeyspace: p.source, tables: TABLES });
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  const w = moveWriter(p, m, seed);
  return { m, wf, w };
}

const restart = (tablet: string) =>
  runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tablet)), (_i, state) => {
    state.abort("restart");
  }).catch(() => undefined);

/** Switch, stop the client, check both names answer the model, complete, check the target. */
async function finish(p: Pair, run: Awaited<ReturnType<typeof started>>): Promise<void> {
  const { m, wf, w } = run;
  const v = await wf.show();
  if (v.state !== "switched") expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
  await sourceRefuses(p);
  await sleep(100);
  await w.stop();
  expect(w.errors, JSON.stringify(w.errors)).toEqual([]);
  await sleep(100);
  await bothAnswer(p, m);
  expect((await wf.retried("complete"))["state"]).toBe("completed");
  await checkCompleted(p, m);
}

describe("movetables races and faults", () => {
  afterEach(() => {
    disarmStreamFaults();
    disarm();
  });

  it("queue parts duplicated and reordered through copy, catch-up and the reverse streams: nothing applied twice or out of order", async () => {
    const p = { source: "mf1a", target: "mf1b" };
    armStreamFaults({ duplicate: 2, reorder: 3, stallMs: 300 });
    const run = await started(p, 500, 21);
    await run.wf.until("caught up", caughtUp);
    expect((await run.wf.retried("switchtraffic"))["state"]).toBe("switched");
    await sleep(200);
    expect((await run.wf.retried("reversetraffic"))["state"]).toBe("running");
    await run.wf.until("forward streams again", caughtUp);
    await finish(p, run);
  }, 90_000);

  it("queue parts dropped for a while mid-copy: the streams start new chains and finish", async () => {
    const p = { source: "mf2a", target: "mf2b" };
    armStreamFaults({ reorder: 2, stallMs: 200 });
    const run = await started(p, 600, 22);
    await sleep(30);
    armStreamFaults({ drop: true, stallMs: 200 });
    await sleep(400);
    armStreamFaults({ stallMs: 200 });
    await run.wf.until("caught up", caughtUp);
    await finish(p, run);
  }, 90_000);

  it("the source and target tablets restarted mid-copy, and the pump forgetting its chains: the copy resumes from its position", async () => {
    const p = { source: "mf3a", target: "mf3b" };
    // Parts are lost while the tablets restart, so the copy is surely under way and not done.
    armStreamFaults({ drop: true, stallMs: 200 });
    const run = await started(p, 600, 23);
    const v = await run.wf.show();
    const src = tabletOf(await topology(), p.source, "-");
    for (const name of [src, v.targets[0]?.tablet ?? "?", src, v.targets[1]?.tablet ?? "?"]) {
      await restart(name);
      await sleep(40);
    }
    armStreamFaults({ stallMs: 200, restart: true, duplicate: 1 });
    await sleep(100);
    await restart(v.targets[0]?.tablet ?? "?");
    await run.wf.until("caught up", caughtUp);
    await finish(p, run);
  }, 90_000);

  it("the Topology stops mid-switch while parts are duplicated; its alarm repairs it and the move completes", async () => {
    const p = { source: "mf4a", target: "mf4b" };
    armStreamFaults({ duplicate: 1, stallMs: 300 });
    const run = await started(p, 300, 24);
    await run.wf.until("caught up", caughtUp);
    arm({ crashAt: "switch-drained" });
    expect((await run.wf.call({ action: "switchtraffic" })).status).not.toBe(200);
    disarm();
    await restartTopologyThenAlarm();
    expect((await topology()).workflows.find((x) => x.keyspace === p.target && x.name === "mv")?.progress).toMatchObject({ switching: null });
    await run.wf.until("streams moving again", caughtUp);
    await finish(p, run);
  }, 90_000);

  it("two switchtraffic calls at once both answer switched; a complete after a reverse is refused and changes nothing", async () => {
    const p = { source: "mf5a", target: "mf5b" };
    const run = await started(p, 300, 25);
    await run.wf.until("caught up", caughtUp);
    const [a, b] = await Promise.all([run.wf.call({ action: "switchtraffic" }), run.wf.call({ action: "switchtraffic" })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect([a.body["state"], b.body["state"]]).toEqual(["switched", "switched"]);
    await sourceRefuses(p);
    expect((await run.wf.retried("reversetraffic"))["state"]).toBe("running");
    const before = await topology();
    const refused = await run.wf.call({ action: "complete" });
    expect(refused.body["error"]).toMatchObject({ code: "INVALID_ARGUMENT" });
    const after = await topology();
    expect(after.workflows.find((x) => x.keyspace === p.target && x.name === "mv")).toMatchObject({ state: "running" });
    expect(after.keyspaces.find((k) => k.name === p.source)?.tables.sort()).toEqual(before.keyspaces.find((k) => k.name === p.source)?.tables.sort());
    await run.wf.until("forward streams again", caughtUp);
    await finish(p, run);
  }, 90_000);

  it("a move cancelled during its copy leaves the target without the tables, and a new one of the same name completes", async () => {
    const p = { source: "mf6a", target: "mf6b" };
    armStreamFaults({ drop: true });
    const run = await started(p, 300, 26);
    expect((await run.wf.call({ action: "cancel" })).status).toBe(200);
    expect((await topology()).keyspaces.find((k) => k.name === p.target)?.tables).toEqual([]);
    disarmStreamFaults();
    const again = await run.wf.call({ action: "create", kind: "movetables", sourceKeyspace: p.source, tables: TABLES });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    await run.wf.until("caught up", caughtUp);
    await finish(p, run);
  }, 90_000);
});
