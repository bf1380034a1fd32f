import { afterEach, describe, expect, it, vi } from "vitest";
import { Deadline, DEFAULT_QUERY_TIMEOUT_MS, queryTimeoutMs } from "../../gate/deadline.ts";
import { toVtError } from "../../contract/errors.ts";

const read = { target: "tablet k/-80", writes: false, shard: "-80" } as const;
const write = { target: "tablet k/-80", writes: true, shard: "-80" } as const;

async function errorOf(p: Promise<unknown>): Promise<ReturnType<typeof toVtError>> {
  try {
    await p;
  } catch (e) {
    return toVtError(e);
  }
  throw new Error("expected an error, got an answer");
}

afterEach(() => {
  vi.useRealTimers();
});

describe("Deadline.race", () => {
  it("answers TIMEOUT (retryable) for a call that never answers", async () => {
    vi.useFakeTimers();
    const d = new Deadline(50);
    const p = errorOf(d.race(() => new Promise<never>(() => undefined), read));
    await vi.advanceTimersByTimeAsync(50);
    const vt = await p;
    expect(vt.code).toBe("TIMEOUT");
    expect(vt.retryable).toBe(true);
    expect(vt["shard"]).toBe("-80");
    expect(vt["deadlineMs"]).toBe(50);
    expect(vt["applied"]).toBeUndefined();
  });

  it("marks a write that timed out as of unknown outcome", async () => {
    vi.useFakeTimers();
    const d = new Deadline(10);
    const p = errorOf(d.race(() => new Promise<never>(() => undefined), write));
    await vi.advanceTimersByTimeAsync(10);
    expect((await p)["applied"]).toBe("unknown");
  });

  it("returns an answer that comes in time, and leaves no timer behind", async () => {
    vi.useFakeTimers();
    const d = new Deadline(1_000);
    await expect(d.race(() => Promise.resolve(7), read)).resolves.toBe(7);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("passes the call's own error through, and leaves no timer behind", async () => {
    vi.useFakeTimers();
    const d = new Deadline(1_000);
    const vt = await errorOf(d.race(() => Promise.reject(new Error("boom")), read));
    expect(vt.message).toBe("boom");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("shares one budget between the calls of a request", async () => {
    let now = 0;
    const d = new Deadline(100, () => now);
    now = 60;
    expect(d.remainingMs()).toBe(40);
    now = 100;
    let started = false;
    const vt = await errorOf(
      d.race(() => {
        started = true;
        return Promise.resolve(1);
      }, read),
    );
    expect(vt.code).toBe("TIMEOUT");
    expect(started).toBe(false);
  });

  it("says a write it stopped before sending applied nothing (applied: false), unlike one sent that did not answer", async () => {
    let now = 0;
    const d = new Deadline(100, () => now);
    now = 100;
    let started = false;
    const vt = await errorOf(
      d.race(() => {
        started = true;
        return Promise.resolve(1);
      }, write),
    );
    expect(started).toBe(false);
    expect(vt.code).toBe("TIMEOUT");
    expect(vt["applied"]).toBe(false);
    expect(vt["shard"]).toBe("-80");
  });

  it("bounds a retry's back-off by the time left", async () => {
    vi.useFakeTimers();
    const d = new Deadline(30);
    const p = errorOf(d.sleep(10_000, read));
    await vi.advanceTimersByTimeAsync(30);
    expect((await p).code).toBe("TIMEOUT");
  });
});

describe("QUERY_TIMEOUT_MS", () => {
  it("defaults when unset and accepts whole milliseconds up to 5 minutes", () => {
    expect(queryTimeoutMs(undefined)).toBe(DEFAULT_QUERY_TIMEOUT_MS);
    expect(queryTimeoutMs("")).toBe(DEFAULT_QUERY_TIMEOUT_MS);
    expect(queryTimeoutMs("250")).toBe(250);
    expect(queryTimeoutMs("300000")).toBe(300_000);
  });

  it("refuses a value that is not a whole number of ms in range", () => {
    for (const bad of ["0", "-5", "1.5", "abc", "300001", "5s"]) {
      expect(() => queryTimeoutMs(bad)).toThrow(/QUERY_TIMEOUT_MS/);
    }
  });
});
