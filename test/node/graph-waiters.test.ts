// The Topology's waiters for requests held through a cutover (topology/graph-waiters.ts): a wait
// ends on the next wake of its keyspace (and only its keyspace), at the end of any push of that
// keyspace's config to its tablets, or after its own bound; never later, and it leaves nothing
// behind once answered.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GraphWaiters, MAX_GRAPH_WAIT_MS, MAX_GRAPH_WAITERS } from "../../topology/graph-waiters.ts";

/** Whether `p` has settled once the microtasks queued now have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

describe("graph waiters", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("a wait ends on a wake of its keyspace, not of another, and is then forgotten", async () => {
    const w = new GraphWaiters();
    const a = w.wait("ks", 500);
    const b = w.wait("other", 500);
    expect(w.size).toBe(2);
    w.wake("other");
    expect(await settled(a)).toBe(false);
    expect(await settled(b)).toBe(true);
    w.wake("ks");
    expect(await settled(a)).toBe(true);
    expect(await a).toBe(true);
    expect(w.size).toBe(0);
  });

  it("a wait no wake ends is answered at its bound, clamped to MAX_GRAPH_WAIT_MS", async () => {
    const w = new GraphWaiters();
    const short = w.wait("ks", 100);
    const long = w.wait("ks", 60_000);
    await vi.advanceTimersByTimeAsync(99);
    expect(await settled(short)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(short)).toBe(true);
    await vi.advanceTimersByTimeAsync(MAX_GRAPH_WAIT_MS - 101);
    expect(await settled(long)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(long)).toBe(true);
    expect(w.size).toBe(0);
  });

  it("a zero, negative or non-finite bound answers at once", async () => {
    const w = new GraphWaiters();
    for (const ms of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const p = w.wait("ks", ms);
      expect(await settled(p)).toBe(true);
      expect(await p).toBe(false); // it did not wait
    }
    expect(w.size).toBe(0);
  });

  it("the end of a push wakes its keyspace's waiters, failed or not, and syncing says whether one is under way", async () => {
    const w = new GraphWaiters();
    let finish: () => void = () => undefined;
    let fail: (e: Error) => void = () => undefined;
    const first = w.sync("ks", () => new Promise<string>((r) => (finish = () => r("done"))));
    const second = w.sync("ks", () => new Promise<string>((_r, j) => (fail = j)));
    expect(w.syncing("ks")).toBe(true);
    expect(w.syncing("other")).toBe(false);
    const a = w.wait("ks", 500);
    finish();
    expect(await first).toBe("done");
    expect(await settled(a)).toBe(true);
    expect(w.syncing("ks")).toBe(true);
    const b = w.wait("ks", 500);
    fail(new Error("a tablet did not answer"));
    await expect(second).rejects.toThrow("did not answer");
    expect(await settled(b)).toBe(true);
    expect(w.syncing("ks")).toBe(false);
  });

  it("past MAX_GRAPH_WAITERS a wait answers at once", async () => {
    const w = new GraphWaiters();
    const held = Array.from({ length: MAX_GRAPH_WAITERS }, () => w.wait("ks", 500));
    expect(w.size).toBe(MAX_GRAPH_WAITERS);
    const over = w.wait("ks", 500);
    expect(await settled(over)).toBe(true);
    expect(await over).toBe(false);
    w.wake("ks");
    await Promise.all(held);
    expect(w.size).toBe(0);
  });
});
