// The SDK's VStream: GET <url>/v1/vstream read as Server-Sent Events over any fetch, as an async
// iterator (or a callback). Values arrive exact (bigint beyond 2^53, Uint8Array for BLOBs). When
// the connection breaks, it reconnects by itself from the last token it handed out, so the
// caller sees each change once; only after RECONNECTS failed tries in a row does it give up.
// A transaction is handed out only once its COMMIT has arrived (BEGIN, ROWs, COMMIT together),
// so a break mid-transaction never shows the caller part of one.

import { fromJsonValue, type SqlValue } from "../contract/sql-values.ts";
import { errorFromFields, unreachable, VitessError } from "./vitess-error.ts";

export type ChangeRow = Record<string, SqlValue>;

/**
 * One VStream event (see the README's "Change data capture"). `keyspace` is set on the events of
 * a shard of another keyspace (a MoveTables moved the table there and the stream followed it).
 */
export type ChangeEvent =
  | { type: "BEGIN"; shard: string; keyspace?: string }
  | {
      type: "ROW";
      shard: string;
      keyspace?: string;
      table: string;
      op: "insert" | "update" | "delete";
      before: ChangeRow | null;
      after: ChangeRow | null;
      pk: ChangeRow;
      copy?: true;
    }
  | { type: "DDL"; shard: string; keyspace?: string; ddl: string }
  | { type: "COMMIT"; shard: string; keyspace?: string; ts: number | null; token: string }
  | { type: "HEARTBEAT"; ts: number; token: string }
  | { type: "JOURNAL"; from: string[]; to: string[]; token: string };

export interface VStreamOptions {
  /** Default: the client's keyspace. */
  keyspace?: string;
  /** Default: every table of the keyspace. */
  tables?: string[];
  /** "now" (default), "start" (the rows as they are, then the changes) or a token from a COMMIT, HEARTBEAT or JOURNAL. */
  from?: string;
  /** How often an idle stream sends a HEARTBEAT, ms (100–60000; default 1000). */
  heartbeatMs?: number;
}

export interface VStream extends AsyncIterable<ChangeEvent> {
  /** The token after the last event handed out (null before the first): store it to resume. */
  readonly token: string | null;
  /** Ends the stream (the iterator then finishes). */
  close(): Promise<void>;
}

const RECONNECTS = 5;

function decodeRow(v: unknown): ChangeRow | null {
  if (v === null || typeof v !== "object") return null;
  const out: ChangeRow = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    Object.defineProperty(out, k, { value: fromJsonValue(x, "a vstream row"), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export function decodeEvent(data: unknown): ChangeEvent {
  const e = data as Record<string, unknown>;
  if (e["type"] !== "ROW") return e as unknown as ChangeEvent;
  return { ...(e as unknown as ChangeEvent & { type: "ROW" }), before: decodeRow(e["before"]), after: decodeRow(e["after"]), pk: decodeRow(e["pk"]) ?? {} };
}

/** Blocks of an SSE body: each `{event, data}`. */
async function* sseBlocks(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const lines = buf.slice(0, i).split("\n");
        buf = buf.slice(i + 2);
        const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message";
        const data = lines
          .filter((l) => l.startsWith("data: "))
          .map((l) => l.slice(6))
          .join("\n");
        if (data !== "") yield { event, data };
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

export function openVStream(fetchFn: typeof fetch, baseUrl: string, token: string | undefined, keyspace: string | undefined, opts: VStreamOptions): VStream {
  let last: string | null = null;
  let closed = false;
  const abort = new AbortController();
  const url = (from: string) => {
    const q = new URLSearchParams();
    const ks = opts.keyspace ?? keyspace;
    if (ks !== undefined) q.set("keyspace", ks);
    if (opts.tables !== undefined) q.set("tables", opts.tables.join(","));
    if (opts.heartbeatMs !== undefined) q.set("heartbeatMs", String(opts.heartbeatMs));
    q.set("from", from);
    return `${baseUrl}/v1/vstream?${q}`;
  };
  async function* events(): AsyncGenerator<ChangeEvent> {
    let failures = 0;
    while (!closed) {
      let res: Response;
      try {
        res = await fetchFn(url(last ?? opts.from ?? "now"), {
          headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
          signal: abort.signal,
        });
      } catch (e) {
        if (closed) return;
        if (++failures > RECONNECTS) throw unreachable(baseUrl, e);
        await new Promise((r) => setTimeout(r, 100 * 2 ** failures));
        continue;
      }
      if (res.status !== 200) {
        const body = (await res.json().catch(() => ({}))) as { error?: Record<string, unknown> };
        throw errorFromFields(body.error ?? { code: "INTERNAL" }, `vstream answered HTTP ${res.status}`);
      }
      // Per shard (of its keyspace), the events of the transaction whose COMMIT has not arrived yet.
      const open = new Map<string, ChangeEvent[]>();
      const where = (e: ChangeEvent) => ("shard" in e ? `${e.keyspace ?? ""}/${e.shard}` : "");
      try {
        for await (const b of sseBlocks(res.body as ReadableStream<Uint8Array>)) {
          const data = JSON.parse(b.data) as Record<string, unknown>;
          if (b.event === "ERROR") {
            const err = errorFromFields((data["error"] as Record<string, unknown>) ?? { code: "INTERNAL" }, "vstream failed");
            if (!err.retryable) throw err;
            break;
          }
          const e = decodeEvent(data);
          failures = 0;
          if (e.type === "BEGIN") {
            open.set(where(e), [e]);
            continue;
          }
          const txn = "shard" in e ? open.get(where(e)) : undefined;
          if (txn && e.type !== "COMMIT") {
            txn.push(e);
            continue;
          }
          if (txn && "shard" in e) open.delete(where(e));
          if ("token" in e) last = e.token;
          for (const x of [...(txn ?? []), e]) {
            yield x;
            if (closed) return;
          }
        }
      } catch (e) {
        if (e instanceof VitessError || closed) throw e;
      }
      if (closed) return;
      if (++failures > RECONNECTS)
        throw new VitessError("NOT_SERVING", "vstream: the connection kept breaking; resume later from the last token", { retryable: true });
      await new Promise((r) => setTimeout(r, 100 * 2 ** failures));
    }
  }
  const gen = events();
  return {
    get token() {
      return last;
    },
    [Symbol.asyncIterator]: () => gen,
    async close() {
      closed = true;
      abort.abort();
      await gen.return(undefined).catch(() => undefined);
    },
  };
}
