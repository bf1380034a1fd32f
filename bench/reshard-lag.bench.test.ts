// Replication lag under steady writes: once a split's streams run, one client inserts fresh ids
// through the gate (10 ms between an answer and its next write) for WRITE_MS, while this isolate
// polls both target tablets directly (every ~2 ms) for the ids not seen yet. Lag = first seen on
// its target − the write's acknowledgement (the commit is before the answer, so this is commit-
// to-apply less at most the answer's trip back). Next to it, the same writes' own latency.

import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { distribution, emit } from "./measure.ts";
import { copied, keyspaceWithRows, sleep, TABLE, until, workflow, writer } from "./reshard-fixture.ts";

const KS = "blag";
const WRITE_MS = 5000;
const FIRST_ID = 1_000_000;

describe("replication lag", () => {
  it("commit-to-apply on the target under steady writes", { timeout: 300_000 }, async () => {
    await keyspaceWithRows(KS, ["-"], 500);
    await workflow(KS, "lag", { action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"] });
    const { view } = await until(KS, "lag", "copy", copied);
    const targets = view.targets.map((t) => env.TABLET.get(env.TABLET.idFromName(t.tablet)));
    const seen = new Map<number, number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        for (const t of targets) {
          const ids = await runInDurableObject(t, (_i, state) =>
            state.storage.sql
              .exec<{ id: number }>(`SELECT id FROM ${TABLE} WHERE id >= ?`, FIRST_ID)
              .toArray()
              .map((r) => r.id),
          );
          const at = performance.now();
          for (const id of ids) if (!seen.has(id)) seen.set(id, at);
        }
        await sleep(2);
      }
    })();
    const w = writer(KS, FIRST_ID, 10);
    await sleep(WRITE_MS);
    await w.stop();
    const end = performance.now() + 10_000;
    while (w.acks.some((a) => !seen.has(a.id)) && performance.now() < end) await sleep(10);
    polling = false;
    await poller;
    expect(w.errors).toEqual([]);
    expect(w.acks.every((a) => seen.has(a.id))).toBe(true);
    const lag = w.acks.map((a) => Math.max(0, (seen.get(a.id) ?? Number.NaN) - a.acked));
    const latency = w.acks.map((a) => a.acked - a.sent);
    const base = distribution("write latency", latency);
    const subj = distribution("commit→apply lag", lag);
    emit({
      name: "replication lag on the target vs the write's own latency",
      unit: "ms",
      baseline: base,
      subject: subj,
      ratio: (subj.dist?.p99 ?? Number.NaN) / (base.dist?.p99 ?? Number.NaN),
      rounds: 1,
      opsPerRound: w.acks.length,
      minRoundMs: 0,
      note: `one client, INSERT through the gate every ~10 ms for ${WRITE_MS} ms, both targets polled directly every ~2 ms; ratio = p99 / p99`,
    });
  });
});
