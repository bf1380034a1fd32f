// A tablet retired (Complete retires a Reshard's sources, Cancel its targets) while its stream pump
// is mid-round: the round is waiting on its read of the source (held busy) when the retire runs. The invariant: once retired,
// the tablet's pump stops (no alarm left armed, no stream), and nothing is written to it
// afterwards: the parts that round read are not sent, or find no stream, and no row, table or
// binlog entry appears on it however long the queue takes.

import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { unwrap } from "../../contract/envelope.ts";
import { api, sql } from "./helpers.ts";
import { sleep } from "./movetables-harness.ts";

type Shown = { targets: { tablet: string }[]; streams: { phase: string }[] };

async function contents(tablet: string) {
  return runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tablet)), async (_i, state) => {
    const q = <T extends Record<string, SqlStorageValue>>(text: string) => state.storage.sql.exec<T>(text).toArray();
    return {
      alarm: await state.storage.getAlarm(),
      tables: q<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'").map(
        (r) => r.name,
      ),
      streams: q<{ n: number }>("SELECT count(*) AS n FROM _vt_vreplication")[0]?.n,
      parts: q<{ n: number }>("SELECT count(*) AS n FROM _vt_vrepl_parts")[0]?.n,
      binlog: q<{ n: number }>("SELECT count(*) AS n FROM _vt_binlog")[0]?.n,
    };
  });
}

describe("retiring a tablet while its stream pump is mid-round", () => {
  it.each([1, 2, 3])(
    "run %i: the pump stops and nothing is written to the retired tablet afterwards",
    async (run) => {
      const ks = `rt${run}`;
      expect((await api("POST", "/v1/keyspaces", { name: ks, shards: ["-80", "80-"] })).status).toBe(200);
      await sql("CREATE TABLE t (id INTEGER PRIMARY KEY, pad TEXT)", undefined, ks);
      for (let i = 0; i < 40; i++) {
        const rows = Array.from({ length: 25 }, (_, j) => [i * 25 + j + 1, "x".repeat(400)]);
        await sql(`INSERT INTO t (id, pad) VALUES ${rows.map(() => "(?, ?)").join(", ")}`, rows.flat(), ks);
      }
      const c = await api<Shown>("POST", "/v1/workflows", {
        action: "create",
        keyspace: ks,
        workflow: "w",
        sourceShards: ["-80"],
        targetShards: ["-40", "40-80"],
      });
      expect(c.status, JSON.stringify(c.body)).toBe(200);
      const target = c.body.targets[0]?.tablet ?? "?";
      const stub = env.TABLET.get(env.TABLET.idFromName(target));
      for (;;) {
        const v = (await api<Shown>("GET", `/v1/workflows?keyspace=${ks}&workflow=w`)).body;
        if (v.streams.length === 2 && v.streams.every((s) => s.phase === "running")) break;
        await sleep(20);
      }
      // New rows on the source, which then holds every request for a while: the target's next pump
      // round is left waiting on its read of them, and the retire meets it there.
      const rows = Array.from({ length: 25 }, (_, j) => [5000 + j, "y"]);
      await sql(`INSERT INTO t (id, pad) VALUES ${rows.map(() => "(?, ?)").join(", ")}`, rows.flat(), ks);
      const source = env.TABLET.get(env.TABLET.idFromName(`${ks}/-80`));
      const held = runInDurableObject(source, (_i, state) => state.blockConcurrencyWhile(() => sleep(300)));
      await sleep(60 * run);
      const sent: string[] = [];
      const queue = env.VREPL_QUEUE;
      const send = queue.send.bind(queue);
      Object.defineProperty(queue, "send", {
        configurable: true,
        value: (body: { target?: string }, opts?: QueueSendOptions) => {
          sent.push(String(body.target));
          return send(body, opts);
        },
      });
      const retired = unwrap(await stub.retire());
      expect(retired.config).toBeNull();
      await held;
      // The round ends: it sends nothing to the retired tablet and leaves its alarm off.
      for (let i = 0; i < 20; i++) {
        expect((await contents(target)).alarm, `alarm after the round (${i})`).toBeNull();
        await sleep(5);
      }
      expect(sent.filter((t) => t === target)).toEqual([]);
      Object.defineProperty(queue, "send", { configurable: true, value: send });
      const empty = { alarm: null, tables: [], streams: 0, parts: 0, binlog: 0 };
      expect(await contents(target)).toEqual(empty);
      // Parts the round may have sent reach the tablet through the queue meanwhile.
      await sleep(400);
      expect(await runDurableObjectAlarm(stub)).toBe(false);
      expect(await contents(target)).toEqual(empty);
      expect((await api("POST", "/v1/workflows", { action: "cancel", keyspace: ks, workflow: "w" })).status).toBe(200);
      await sleep(100);
      expect(await contents(target)).toEqual(empty);
      expect((await sql("SELECT count(*) FROM t", undefined, ks)).rows).toEqual([[1025]]);
    },
    60_000,
  );
});
