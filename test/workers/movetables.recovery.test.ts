// A Topology that stops mid-switch or mid-reverse of a MoveTables, under a client writing naming
// either keyspace. The invariant: whatever step it stopped after, the next action on the workflow
// or (after a restart of the Topology) its alarm repairs the switch: no table is left refusing
// writes on the side that serves it, no write fails (the gate buffers the short refusal), and
// after the workflow is switched again and completed the target holds exactly the acknowledged
// writes, each once, on its shard.

import { describe, expect, it } from "vitest";
import { arm, type CrashStep, disarm } from "../../topology/failpoints.ts";
import {
  bothAnswer,
  caughtUp,
  checkCompleted,
  moveModel,
  moveWorkflow,
  moveWriter,
  restartTopologyThenAlarm,
  setUpMove,
  sleep,
  sourceRefuses,
  topology,
  writesPromptly,
} from "./movetables-harness.ts";

/** The workflow's switch mark as the Topology holds it (read without running an action). */
async function mark(target: string, name: string): Promise<unknown> {
  const w = (await topology()).workflows.find((x) => x.keyspace === target && x.name === name);
  return (w?.progress as { switching?: unknown } | null)?.switching ?? null;
}

const CASES: [CrashStep, "action" | "alarm"][] = [
  ["switch-denied", "action"],
  ["switch-denied", "alarm"],
  ["switch-drained", "action"],
  ["switch-drained", "alarm"],
  ["switch-flipped", "action"],
  ["switch-flipped", "alarm"],
  ["reverse-denied", "action"],
  ["reverse-denied", "alarm"],
  ["reverse-drained", "action"],
  ["reverse-drained", "alarm"],
  ["reverse-flipped", "action"],
  ["reverse-flipped", "alarm"],
];

describe("movetables: a Topology that stops mid-switch", () => {
  it.each(CASES)(
    "stopped after %s, repaired by the %s: no table refuses writes, nothing is lost or doubled",
    async (step, by) => {
      const p = { source: `mr${CASES.findIndex(([s, b]) => s === step && b === by)}a`, target: `mr${CASES.findIndex(([s, b]) => s === step && b === by)}b` };
      const m = moveModel();
      await setUpMove(p, 60, m);
      const wf = moveWorkflow(p, "mv");
      const c = await wf.call({ action: "create", kind: "movetables", sourceKeyspace: p.source, tables: ["customer", "corder"] });
      expect(c.status, JSON.stringify(c.body)).toBe(200);
      const w = moveWriter(p, m, step.length * (by === "alarm" ? 7 : 3));
      await wf.until("caught up", caughtUp);
      const reverse = step.startsWith("reverse");
      if (reverse) expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");

      arm({ crashAt: step });
      const crashed = await wf.call({ action: reverse ? "reversetraffic" : "switchtraffic" });
      disarm();
      expect(crashed.status, JSON.stringify(crashed.body)).not.toBe(200);
      expect(JSON.stringify(crashed.body)).toContain(`topology stopped after step ${JSON.stringify(JSON.stringify(step)).slice(1, -1)}`);
      const flipped = step.endsWith("flipped");
      // Where the flip committed, the workflow stays flipped; before it, where it was.
      const want = flipped !== reverse ? "switched" : "running";
      // The mark is left for the repair, unless the workflow's Workflow runner (which calls
      // show and vdiff on its own) made the next action first and repaired it already.
      if ((await mark(p.target, "mv")) === null)
        expect((await topology()).workflows.find((x) => x.name === "mv" && x.keyspace === p.target)).toMatchObject({ state: want });

      if (by === "alarm") {
        // The Topology restarts (nothing of the interrupted action survives in memory); its alarm repairs.
        await restartTopologyThenAlarm();
        expect(await mark(p.target, "mv")).toBeNull();
        expect((await topology()).workflows.find((x) => x.name === "mv" && x.keyspace === p.target)).toMatchObject({ state: want });
      } else {
        expect((await wf.show()).state).toBe(want);
        expect(await mark(p.target, "mv")).toBeNull();
      }
      // Both names take writes at once, and every stream moves again.
      await writesPromptly(p.source, m, 90_001);
      await writesPromptly(p.target, m, 90_002);
      await sleep(200);
      if (want === "running") await wf.until("streams moving again", caughtUp);
      else await sourceRefuses(p);

      // The workflow goes on: switched (again), reversed, switched and completed.
      if (want === "running") expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
      expect((await wf.retried("reversetraffic"))["state"]).toBe("running");
      await wf.until("forward streams again", caughtUp);
      expect((await wf.retried("switchtraffic"))["state"]).toBe("switched");
      await sleep(100);
      await w.stop();
      expect(w.errors, JSON.stringify(w.errors)).toEqual([]);
      await sleep(100);
      await bothAnswer(p, m);
      expect((await wf.retried("complete"))["state"]).toBe("completed");
      await checkCompleted(p, m);
    },
    90_000,
  );
});
