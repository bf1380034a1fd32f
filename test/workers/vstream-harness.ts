// The SSE side of the VStream tests: a subscription to GET /v1/vstream read event by event.

import { exports } from "cloudflare:workers";
import { expect } from "vitest";

export interface Ev {
  type: string;
  shard?: string;
  /** ROW etc. of another keyspace than the stream's (a MoveTables' target). */
  keyspace?: string;
  table?: string;
  op?: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  pk?: Record<string, unknown>;
  copy?: boolean;
  token?: string;
  id?: string;
  /** JOURNAL: the shards left and the shards taken up. */
  from?: string[];
  to?: string[];
  error?: { code: string; message: string; id?: string; [k: string]: unknown };
}

/**
 * Replays ROW events onto a table model (key → row, by the event's pk), as a subscriber keeping a
 * copy would: an insert or update sets the row, a delete removes it.
 */
export function replay(evs: readonly Ev[], table: string, model = new Map<string, Record<string, unknown>>()): Map<string, Record<string, unknown>> {
  for (const e of evs) {
    if (e.type !== "ROW" || e.table !== table) continue;
    const key = JSON.stringify(e.pk);
    if (e.after) model.set(key, e.after);
    else model.delete(key);
  }
  return model;
}

/** A subscription: events as they arrive, until the caller closes it. */
export async function subscribe(query: string, headers: Record<string, string> = {}) {
  const res = await exports.default.fetch(new Request(`http://gate/v1/vstream?${query}`, { headers }));
  expect(res.status, await (res.status === 200 ? Promise.resolve("") : res.clone().text())).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const seen: Ev[] = [];
  return {
    seen,
    /** Reads until `ok(seen)` holds (or throws after `ms`). */
    async until(ok: (s: Ev[]) => boolean, ms = 10_000): Promise<Ev[]> {
      const end = Date.now() + ms;
      while (!ok(seen)) {
        if (Date.now() > end) throw new Error(`vstream: still waiting; seen ${JSON.stringify(seen.map((e) => e.type))}`);
        const { value, done } = await reader.read();
        if (done) throw new Error("vstream ended");
        buf += decoder.decode(value, { stream: true });
        for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split("\n").find((l) => l.startsWith("data: "));
          const id = block.split("\n").find((l) => l.startsWith("id: "));
          if (data) seen.push({ ...(JSON.parse(data.slice(6)) as Ev), ...(id ? { id: id.slice(4) } : {}) });
        }
      }
      return seen;
    },
    async close(): Promise<void> {
      await reader.cancel();
    },
  };
}
