// The gate's one retry loop with cutover buffering: a refusal a cutover causes is held and retried
// for up to the window (not just RETRIES times), at most `size` requests at once; anything else
// gets the ordinary RETRIES retries; a held request always gives its place back.

import { describe, expect, it } from "vitest";
import { VtError } from "../../contract/errors.ts";
import {
  type Buffering,
  bufferPauseMs,
  bufferSize,
  bufferWindowMs,
  CutoverBuffer,
  DEFAULT_BUFFER_SIZE,
  DEFAULT_BUFFER_WINDOW_MS,
  meetsCutover,
} from "../../gate/buffer.ts";
import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import { GRAPH_EVERY, RETRIES, Retry, retryLoop } from "../../gate/retry.ts";

const switching = () => new VtError("NOT_SERVING", "switching", { shard: "-80", servingVersion: 3, switching: true });
const stale = () => new VtError("NOT_SERVING", "older graph", { shard: "-80", servingVersion: 4 });
const fenced = () => new VtError("NOT_SERVING", "fenced", { shard: "-80", servingVersion: 3, fenced: true });

/** A loop on a fake clock: every pause between attempts moves it by `stepMs`. */
function harness(windowMs: number, size: number, stepMs = 10) {
  let t = 0;
  const buffer = new CutoverBuffer();
  const buffering: Buffering = { windowMs, size, buffer, now: () => t };
  const pauses: (number | false)[] = [];
  const run = <T>(attempt: (n: number) => T | Retry) => {
    let attempts = 0;
    const done = retryLoop(
      async (n) => {
        attempts++;
        return attempt(n);
      },
      async (_r, _n, held) => {
        pauses.push(held);
        t += stepMs;
      },
      buffering,
    );
    return { done, attempts: () => attempts };
  };
  return { run, buffer, pauses };
}

async function failure(p: Promise<unknown>): Promise<VtError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VtError) return e;
    throw e;
  }
  throw new Error("expected a failure");
}

describe("cutover buffering in the retry loop", () => {
  it("holds a switching refusal past RETRIES until the deny is lifted, then answers, and frees its place", async () => {
    const h = harness(1000, 5);
    const r = h.run((n) => (n < 20 ? new Retry(switching()) : "done"));
    expect(await r.done).toBe("done");
    expect(r.attempts()).toBe(21);
    expect(h.pauses.every((held) => held)).toBe(true);
    // Each pause is told the window it has left (1000 ms, 10 ms gone per retry), so no wait overruns it.
    expect(h.pauses).toEqual(Array.from({ length: 20 }, (_, i) => 1000 - 10 * i));
    expect(h.buffer.held).toBe(0);
    expect(h.buffer.entered).toBe(1);
  });

  it("answers the refusal once the window since the first one has run out", async () => {
    const h = harness(100, 5, 10);
    const r = h.run(() => new Retry(switching()));
    const e = await failure(r.done);
    expect(e).toMatchObject({ code: "NOT_SERVING", switching: true });
    // Attempts at t = 0, 10, …, 100: the one at 100 is past the window.
    expect(r.attempts()).toBe(11);
    expect(h.buffer.held).toBe(0);
  });

  it("holds a tablet on a newer graph, or one that does not serve the target, like a switching one", async () => {
    const h = harness(1000, 5);
    const r = h.run((n) => (n < RETRIES + 5 ? new Retry(stale()) : "done"));
    expect(await r.done).toBe("done");
    expect(h.buffer.entered).toBe(1);
  });

  it("beyond the bound: a switching refusal answers at once; a stale graph gets the ordinary retries", async () => {
    const h = harness(1000, 1);
    expect(h.buffer.enter(1)).toBe(true);
    const sw = h.run(() => new Retry(switching()));
    expect((await failure(sw.done))["switching"]).toBe(true);
    expect(sw.attempts()).toBe(1);
    const st = h.run(() => new Retry(stale()));
    expect((await failure(st.done)).code).toBe("NOT_SERVING");
    expect(st.attempts()).toBe(RETRIES + 1);
    h.buffer.leave();
    expect(h.buffer.held).toBe(0);
    expect(h.buffer.entered).toBe(1);
  });

  it("gives a schema change's write fence, and any other retry, only RETRIES retries and no place", async () => {
    const h = harness(1000, 5);
    const r = h.run(() => new Retry(fenced()));
    expect((await failure(r.done))["fenced"]).toBe(true);
    expect(r.attempts()).toBe(RETRIES + 1);
    expect(h.buffer.entered).toBe(0);
    expect(h.pauses.some((held) => held)).toBe(false);
  });

  it("frees its place when an attempt throws", async () => {
    const h = harness(1000, 5);
    const r = h.run((n) => {
      if (n < 3) return new Retry(switching());
      throw new VtError("CONSTRAINT", "duplicate");
    });
    expect((await failure(r.done)).code).toBe("CONSTRAINT");
    expect(h.buffer.held).toBe(0);
  });

  it("without buffering, a switching refusal gets the ordinary retries", async () => {
    let attempts = 0;
    const e = await failure(
      retryLoop(
        async () => {
          attempts++;
          return new Retry(switching());
        },
        async () => {},
      ),
    );
    expect(e["switching"]).toBe(true);
    expect(attempts).toBe(RETRIES + 1);
  });

  it("never counts a write whose outcome is unknown, or another code, as a cutover", () => {
    expect(meetsCutover(switching())).toBe(true);
    expect(meetsCutover(stale())).toBe(true);
    expect(meetsCutover(fenced())).toBe(false);
    expect(meetsCutover(new VtError("NOT_SERVING", "lost", { shard: "-80", applied: "unknown", switching: true }))).toBe(false);
    expect(meetsCutover(new VtError("NOT_SERVING", "restarted"))).toBe(false);
    expect(meetsCutover(new VtError("TIMEOUT", "late", { switching: true }))).toBe(false);
  });
});

describe("buffer settings", () => {
  it("default when unset, take whole numbers in range, refuse the rest with INTERNAL", () => {
    expect(bufferWindowMs(undefined)).toBe(DEFAULT_BUFFER_WINDOW_MS);
    expect(bufferWindowMs(" ")).toBe(DEFAULT_BUFFER_WINDOW_MS);
    expect(bufferWindowMs("250")).toBe(250);
    expect(bufferSize(undefined)).toBe(DEFAULT_BUFFER_SIZE);
    expect(bufferSize("0")).toBe(0);
    for (const bad of ["0", "-5", "1.5", "abc", "300001"]) expect(() => bufferWindowMs(bad)).toThrow(expect.objectContaining({ code: "INTERNAL" }));
    for (const bad of ["-1", "2.5", "x", "100001"]) expect(() => bufferSize(bad)).toThrow(expect.objectContaining({ code: "INTERNAL" }));
  });

  it("pause milliseconds between held retries: 5, then 10 for the first tries (a switch takes milliseconds), then doubling to at most 50", () => {
    expect([0, 1, 2, 7, 8, 9, 10, 40].map(bufferPauseMs)).toEqual([5, 10, 10, 10, 20, 40, 50, 50]);
  });
});

describe("the graph a retry plans with", () => {
  const ks = { name: "k", version: 3 } as unknown as KeyspaceGraph;
  /** The `refresh` each attempt was given, for a loop whose attempts answer `answers` in turn, then "done". */
  async function refreshes(answers: (() => Retry)[], size = 5): Promise<boolean[]> {
    const seen: boolean[] = [];
    const buffering: Buffering = { windowMs: 10_000, size, buffer: new CutoverBuffer(), now: () => 0 };
    await retryLoop(
      async (n, refresh) => {
        seen.push(refresh);
        return answers[n]?.() ?? "done";
      },
      async () => undefined,
      buffering,
    );
    return seen;
  }

  it("is fetched afresh for every retry after a stale refusal", async () => {
    expect(await refreshes([() => new Retry(stale(), ks), () => new Retry(stale(), ks)])).toEqual([false, true, true]);
  });

  it("is the cached one while a held write is refused at the plan's own version, fetched again every GRAPH_EVERY-th try", async () => {
    const seen = await refreshes(Array.from({ length: 9 }, () => () => new Retry(switching(), ks)));
    expect(seen).toEqual(Array.from({ length: 10 }, (_, n) => n > 0 && n % GRAPH_EVERY === 0));
  });

  it("is fetched afresh when the switching tablet knows another version, or refuses a moved table (new routing rules)", async () => {
    const newer = () => new VtError("NOT_SERVING", "switching", { shard: "-80", servingVersion: 4, switching: true });
    const moved = () => new VtError("NOT_SERVING", "moved", { shard: "-80", servingVersion: 3, switching: true, table: "t" });
    expect(await refreshes([() => new Retry(newer(), ks), () => new Retry(moved(), ks)])).toEqual([false, true, true]);
    expect(new Retry(switching(), ks).sameGraph).toBe(true);
    expect(new Retry(switching()).sameGraph).toBe(false);
  });

  it("waits on the Topology for the flip (awaitsFlip) only while the switching tablet is at the plan's own version, a moved table's refusal too", () => {
    const newer = () => new VtError("NOT_SERVING", "switching", { shard: "-80", servingVersion: 4, switching: true });
    const moved = () => new VtError("NOT_SERVING", "moved", { shard: "-80", servingVersion: 3, switching: true, table: "t" });
    expect(new Retry(switching(), ks).awaitsFlip).toBe(true);
    expect(new Retry(moved(), ks).awaitsFlip).toBe(true);
    expect(new Retry(moved(), ks).sameGraph).toBe(false);
    expect(new Retry(newer(), ks).awaitsFlip).toBe(false);
    expect(new Retry(stale(), ks).awaitsFlip).toBe(false);
    expect(new Retry(fenced(), ks).awaitsFlip).toBe(false);
    expect(new Retry(switching()).awaitsFlip).toBe(false);
  });
});
