// The write pause a client sees at cutover: a client inserts through the gate back to back while
// the workflow switches traffic, then reverses it, CUTOVERS times in all; before each switch the
// same client writes a burst of NORMAL_WRITES with no switch, the baseline. Reported: the gaps
// between consecutive acknowledged writes of the bursts during a switch (the longest of each is
// the pause that switch caused) vs those of the normal bursts, and the switches' own pauseMs (how
// long the sources refused writes) next to the normal gap. No write may fail: the gate holds those
// meeting the switch.
//
// Locally every Durable Object, the gate and this client share one workerd event loop, and a timer
// fires only when that loop has nothing else to run: a client pausing on a timer between writes
// sends nothing while a switchtraffic request keeps the loop busy, so it measures that request's
// length rather than a pause writes meet (the earlier version of this bench did that). Back to
// back, the client's writes are in flight all through the switch; between bursts the loop goes
// idle, so the streams' alarms and this bench's own pauses run (200 ms before each switch, so the
// streams have caught up with the normal burst, as they would beside a client on Cloudflare).

import { describe, expect, it } from "vitest";
import { distribution, emit } from "./measure.ts";
import { type Ack, burst, copied, keyspaceWithRows, sleep, until, workflow } from "./reshard-fixture.ts";

const KS = "bcut";
const CUTOVERS = 8;
const NORMAL_WRITES = 40;
/** Writes after the switch answered, so the burst's last gaps are on the new shards. */
const AFTER_WRITES = 5;

const gaps = (acks: readonly Ack[]) => acks.slice(1).map((a, i) => a.acked - (acks[i]?.acked ?? a.acked));

describe("write pause at cutover", () => {
  it("gaps between acknowledged writes of a client writing back to back, during switchtraffic vs normal", { timeout: 300_000 }, async () => {
    await keyspaceWithRows(KS, ["-"], 2000);
    await workflow(KS, "cut", { action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"] });
    await until(KS, "cut", "copy", copied);
    // The Workflows runner compares the copy (VDiff) once it has caught up, as a user switches after
    // VDiff: with it still comparing beside the switches (on the same Durable Objects, here on the
    // same thread), one switch of each run paused 73-116 ms instead of ~20-35.
    await until(KS, "cut", "the runner's VDiff", (v) => (v as { vdiff?: { done?: boolean } }).vdiff?.done === true, 20, 60_000);
    const normal: number[] = [];
    const around: number[] = [];
    const worst: number[] = [];
    const pauses: number[] = [];
    const errors: unknown[] = [];
    let id = 1_000_000;
    for (let i = 0; i < CUTOVERS; i++) {
      const base = await burst(KS, id, { count: NORMAL_WRITES });
      id += base.acks.length + 1;
      normal.push(...gaps(base.acks));
      errors.push(...base.errors);
      // The loop idle, the streams' alarms carry the burst to the targets, as they would alongside
      // a client on Cloudflare, where the client does not hold up their timers.
      await sleep(200);
      const switching = workflow(KS, "cut", { action: i % 2 === 0 ? "switchtraffic" : "reversetraffic" });
      const during = await burst(KS, id, { during: switching, after: AFTER_WRITES });
      id += during.acks.length + 1;
      const v = await switching;
      const g = gaps(during.acks);
      around.push(...g);
      worst.push(Math.max(...g));
      pauses.push(v.pauseMs ?? Number.NaN);
      errors.push(...during.errors);
      await sleep(200);
      if (i % 2 === 1) await until(KS, "cut", "forward streams again", (x) => x.state === "running" && copied(x));
    }
    expect(errors).toEqual([]);
    const base = distribution("normal gap", normal);
    const subj = distribution("gap during a switch", around);
    emit({
      name: "cutover: write gap during switchtraffic vs normal",
      unit: "ms",
      baseline: base,
      subject: subj,
      ratio: (subj.dist?.p99 ?? Number.NaN) / (base.dist?.p99 ?? Number.NaN),
      rounds: CUTOVERS,
      opsPerRound: NORMAL_WRITES,
      minRoundMs: 0,
      note: `one client, INSERT through the gate back to back; ${CUTOVERS} cutovers (switch, reverse alternately); ratio = p99 / p99`,
    });
    const longest = distribution("longest gap of each switch", worst);
    emit({
      name: "cutover: longest write gap of each switch vs normal gap",
      unit: "ms",
      baseline: base,
      subject: longest,
      ratio: (longest.dist?.p50 ?? Number.NaN) / (base.dist?.p50 ?? Number.NaN),
      rounds: CUTOVERS,
      opsPerRound: 1,
      minRoundMs: 0,
      note: "the pause each switch caused, as the writing client saw it; ratio = p50 / p50",
    });
    const pause = distribution("switch pauseMs", pauses);
    emit({
      name: "cutover: switch pauseMs vs normal write gap",
      unit: "ms",
      baseline: base,
      subject: pause,
      ratio: (pause.dist?.p50 ?? Number.NaN) / (base.dist?.p50 ?? Number.NaN),
      rounds: CUTOVERS,
      opsPerRound: 1,
      minRoundMs: 0,
      note: "pauseMs: from the sources refusing writes to the graph flipped, as the workflow answers it; ratio = p50 / p50",
    });
  });
});
