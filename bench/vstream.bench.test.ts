// VStream through the gate. (1) Events per second through one SSE stream: a keyspace of two
// shards holds ROWS rows inserted after the stream's token; the subscriber reads from that token
// until every row's ROW event arrived (parsing each SSE event as a consumer would). Baseline: the
// same rows read through the gate with plain paged SELECTs (keyset by id, PAGE rows a page), the
// way an application without CDC would fetch them. Rounds alternate which side runs first.
// (2) Commit-to-delivery latency: one client inserts through the gate every ~10 ms for WRITE_MS
// while a stream from "now" is open; latency = the ROW's arrival at the subscriber − when the
// write was sent (the commit is between the two: an upper bound of commit-to-delivery, which
// here often arrives before the write's own answer), next to the write's own latency.

import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { distribution, emit, median } from "./measure.ts";
import { gate, keyspaceWithRows, sleep, sql, TABLE, writer } from "./reshard-fixture.ts";

const ROWS = 4_000;
const PAGE = 500;
const ROUNDS = 3;
const WRITE_MS = 5_000;

interface Event {
  readonly type: string;
  readonly after?: Record<string, unknown> | null;
  readonly token?: string;
}

/** An open SSE stream: `next()` hands the events parsed so far, waiting for more when none is left. */
async function open(query: string) {
  const res = await exports.default.fetch(new Request(`http://gate/v1/vstream?${query}`));
  if (res.status !== 200) throw new Error(`vstream answered ${res.status}: ${await res.text()}`);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buf = "";
  return {
    async next(): Promise<Event[]> {
      const { value, done } = await reader.read();
      if (done) throw new Error("vstream ended");
      buf += decoder.decode(value, { stream: true });
      const out: Event[] = [];
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const data = buf
          .slice(0, i)
          .split("\n")
          .find((l) => l.startsWith("data: "));
        buf = buf.slice(i + 2);
        if (data) out.push(JSON.parse(data.slice(6)) as Event);
      }
      return out;
    },
    close: () => reader.cancel(),
  };
}

/** The token where a stream from "now" begins (its first HEARTBEAT's). */
async function tokenNow(ks: string): Promise<string> {
  const s = await open(`keyspace=${ks}&tables=${TABLE}`);
  for (;;) {
    const hb = (await s.next()).find((e) => e.type === "HEARTBEAT");
    if (hb?.token) {
      await s.close();
      return hb.token;
    }
  }
}

async function streamAll(ks: string, token: string, rows: number): Promise<number> {
  const t0 = performance.now();
  const s = await open(`keyspace=${ks}&tables=${TABLE}&from=${token}`);
  let n = 0;
  while (n < rows) for (const e of await s.next()) if (e.type === "ROW") n += 1;
  const ms = performance.now() - t0;
  await s.close();
  return ms;
}

async function selectAll(ks: string, rows: number): Promise<number> {
  const t0 = performance.now();
  let after = 0;
  let n = 0;
  for (;;) {
    const r = await sql(ks, `SELECT id, name, score, data FROM ${TABLE} WHERE id > ? ORDER BY id LIMIT ${PAGE}`, [after]);
    n += r.rows.length;
    if (r.rows.length < PAGE) break;
    after = Number(r.rows.at(-1)?.[0]);
  }
  const ms = performance.now() - t0;
  expect(n).toBe(rows);
  return ms;
}

describe("vstream", () => {
  it("events per second through one stream vs the same rows by paged SELECT", { timeout: 300_000 }, async () => {
    const ks = "bvs";
    await keyspaceWithRows(ks, ["-80", "80-"], 0);
    const token = await tokenNow(ks);
    const blob = "ab".repeat(64);
    for (let i = 1; i <= ROWS; i += 200) {
      const values: string[] = [];
      for (let id = i; id < i + 200 && id <= ROWS; id++) values.push(`(${id}, 'user-${id}-${"x".repeat(12)}', ${(id % 97) * 1.25}, x'${blob}')`);
      await sql(ks, `INSERT INTO ${TABLE} (id, name, score, data) VALUES ${values.join(", ")}`);
    }
    const stream: number[] = [];
    const select: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        select.push(await selectAll(ks, ROWS));
        stream.push(await streamAll(ks, token, ROWS));
      } else {
        stream.push(await streamAll(ks, token, ROWS));
        select.push(await selectAll(ks, ROWS));
      }
    }
    const rate = (ms: number) => ROWS / (ms / 1000);
    emit({
      name: "vstream: events/s through one SSE stream vs paged SELECT of the same rows",
      unit: "rows/s",
      baseline: { label: `paged SELECT (${PAGE}/page)`, value: median(select.map(rate)), rounds: select.map(rate) },
      subject: { label: "vstream SSE ROW events", value: median(stream.map(rate)), rounds: stream.map(rate) },
      ratio: median(stream.map((s, i) => rate(s) / rate(select[i] ?? Number.NaN))),
      rounds: ROUNDS,
      opsPerRound: ROWS,
      minRoundMs: Math.min(...stream, ...select),
      note: `${ROWS} rows of ~170 B on 2 shards, inserted 200 a statement after the stream's token; ratio = events/s ÷ rows/s`,
    });
  });

  it("commit-to-delivery latency under steady writes", { timeout: 300_000 }, async () => {
    const ks = "bvl";
    const FIRST = 1_000_000;
    await keyspaceWithRows(ks, ["-80", "80-"], 100);
    const s = await open(`keyspace=${ks}&tables=${TABLE}`);
    const arrived = new Map<number, number>();
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const evs = await s.next();
        const at = performance.now();
        for (const e of evs) if (e.type === "ROW" && e.after) arrived.set(Number(e.after["id"]), at);
      }
    })();
    await sleep(200);
    const w = writer(ks, FIRST, 10);
    await sleep(WRITE_MS);
    await w.stop();
    const end = performance.now() + 10_000;
    while (w.acks.some((a) => !arrived.has(a.id)) && performance.now() < end) await sleep(10);
    reading = false;
    // One more write wakes the reader's pending read so it can see `reading` is off.
    await gate("POST", "/v1/sql", { keyspace: ks, sql: `INSERT INTO ${TABLE} (id, name) VALUES (?, 'last')`, params: [FIRST - 1] });
    await reader;
    await s.close();
    expect(w.errors).toEqual([]);
    expect(w.acks.every((a) => arrived.has(a.id))).toBe(true);
    const delivery = w.acks.map((a) => (arrived.get(a.id) ?? Number.NaN) - a.sent);
    const base = distribution(
      "write latency",
      w.acks.map((a) => a.acked - a.sent),
    );
    const subj = distribution("sent→delivered", delivery);
    emit({
      name: "vstream: commit-to-delivery latency vs the write's own latency",
      unit: "ms",
      baseline: base,
      subject: subj,
      ratio: (subj.dist?.p99 ?? Number.NaN) / (base.dist?.p99 ?? Number.NaN),
      rounds: 1,
      opsPerRound: w.acks.length,
      minRoundMs: 0,
      note: `one client, INSERT through the gate every ~10 ms for ${WRITE_MS} ms, one SSE stream from "now" over 2 shards; ratio = p99 / p99`,
    });
  });
});
