// The write pause a client sees at cutover: one client inserts through the gate in a loop (2 ms
// between an answer and its next write) while the workflow switches traffic, then reverses it,
// CUTOVERS times in all. Each gap between two consecutive acknowledged writes is "around a
// switch" when it overlaps a switchtraffic / reversetraffic request in flight (or the 50 ms
// after it answered), "normal" otherwise. Reported: both gap distributions, and
// the switches' own pauseMs (how long the sources refused writes) next to the normal gap. No
// write may fail: the gate holds those meeting the switch.
//
// Locally every Durable Object, the gate and this client share one workerd event loop, and a timer
// fires only when that loop has nothing else to run: the client's 2 ms pause does not end while
// the switchtraffic request keeps the loop busy (a 1 ms interval ticks not once during it). So a
// gap around a switch here holds the whole request (readiness check, write pause, view), not only
// pauseMs. The bench waits for the forward streams after a reverse only after its settle pause,
// so its own polling stays out of the gaps it measures.

import { describe, expect, it } from "vitest";
import { distribution, emit } from "./measure.ts";
import { copied, keyspaceWithRows, sleep, until, workflow, writer } from "./reshard-fixture.ts";

const KS = "bcut";
const CUTOVERS = 8;
const SETTLE_MS = 50;

describe("write pause at cutover", () => {
  it("gaps between acknowledged writes around switchtraffic vs normal", { timeout: 300_000 }, async () => {
    await keyspaceWithRows(KS, ["-"], 2000);
    await workflow(KS, "cut", { action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"] });
    await until(KS, "cut", "copy", copied);
    const w = writer(KS, 1_000_000, 2);
    await sleep(1000);
    const windows: [number, number][] = [];
    const pauses: number[] = [];
    for (let i = 0; i < CUTOVERS; i++) {
      const t0 = performance.now();
      const v = await workflow(KS, "cut", { action: i % 2 === 0 ? "switchtraffic" : "reversetraffic" });
      windows.push([t0, performance.now() + SETTLE_MS]);
      pauses.push(v.pauseMs ?? Number.NaN);
      await sleep(500);
      if (i % 2 === 1) await until(KS, "cut", "forward streams again", (x) => x.state === "running" && copied(x));
    }
    await w.stop();
    expect(w.errors).toEqual([]);
    const around: number[] = [];
    const normal: number[] = [];
    for (let i = 1; i < w.acks.length; i++) {
      const a = w.acks[i];
      const b = w.acks[i - 1];
      if (!a || !b) continue;
      const gap = a.acked - b.acked;
      (windows.some(([s, e]) => a.acked >= s && b.acked <= e) ? around : normal).push(gap);
    }
    const base = distribution("normal gap", normal);
    const subj = distribution("gap around a switch", around);
    emit({
      name: "cutover: write gap around switchtraffic vs normal",
      unit: "ms",
      baseline: base,
      subject: subj,
      ratio: (subj.dist?.p99 ?? Number.NaN) / (base.dist?.p99 ?? Number.NaN),
      rounds: CUTOVERS,
      opsPerRound: w.acks.length,
      minRoundMs: 0,
      note: `one client, INSERT through the gate, 2 ms between writes; ${CUTOVERS} cutovers (switch, reverse alternately); ratio = p99 / p99`,
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
