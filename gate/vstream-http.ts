// GET /v1/vstream: a VStream as Server-Sent Events, for any HTTP client. Each event is
// `event: <TYPE>` and `data: <JSON>`; a COMMIT, HEARTBEAT or JOURNAL also carries its token as
// the SSE `id`, so an EventSource that reconnects sends it back as Last-Event-ID and resumes
// exactly there. A failure after the stream began arrives as `event: ERROR` (the ⚑ error body),
// then the stream ends.

import { errorBody, toVtError, VtError } from "../contract/errors.ts";
import { unwrap } from "../contract/envelope.ts";
import { tabletRpc } from "../contract/tablet-rpc.ts";
import { topologyRpc } from "../contract/topology-rpc.ts";
import type { VEvent, VStreamRequest } from "../contract/vstream.ts";
import { Backend } from "./backend.ts";
import { Deadline } from "./deadline.ts";
import { decodeVStreamRequest, eventJson } from "./vstream-request.ts";
import { resolveStart, vstreamBatches, type VStreamTablets } from "./vstream.ts";

/** Looking up the keyspace before the stream starts gets this long. */
const SETUP_MS = 10_000;

/** The tablets and graph as a VStream reaches them (no request deadline: a stream lives as long as its subscriber). */
export function vstreamTablets(env: Env): VStreamTablets {
  return {
    keyspace: (name, fresh) => new Backend(env, new Deadline(SETUP_MS)).keyspace(name, fresh),
    read: async (tablet, req) => unwrap(await tabletRpc(env.TABLET, tablet).vstreamRead(req)),
    known: async (keyspace) => unwrap(await topologyRpc(env.TOPOLOGY).keyspaceTablets(keyspace)),
  };
}

/** Checks the request against the keyspace (it exists; the tables are its own), before anything streams. */
export async function checkVStream(env: Env, req: VStreamRequest): Promise<void> {
  const ks = await new Backend(env, new Deadline(SETUP_MS)).keyspace(req.keyspace, true);
  for (const t of req.tables ?? []) {
    if (!Object.hasOwn(ks.tables, t)) throw new VtError("UNKNOWN_TABLE", `vstream: no table ${t} in keyspace ${req.keyspace}`, { table: t });
  }
}

function sse(e: VEvent): string {
  const id = e.type === "COMMIT" || e.type === "HEARTBEAT" || e.type === "JOURNAL" ? `id: ${e.token}\n` : "";
  return `event: ${e.type}\n${id}data: ${JSON.stringify(eventJson(e))}\n\n`;
}

export async function serveVStream(req: Request, url: URL, env: Env): Promise<Response> {
  const q: Record<string, string> = Object.fromEntries(url.searchParams);
  const resumeFrom = req.headers.get("last-event-id");
  if (resumeFrom !== null && resumeFrom !== "") q["from"] = resumeFrom;
  const vreq = decodeVStreamRequest(q, env.DEFAULT_KEYSPACE || "main");
  await checkVStream(env, vreq);
  const tablets = vstreamTablets(env);
  // "now" is when the answer starts: the shards' heads are read before it does.
  // One chunk per batch (what one shard read handed out), not one per event.
  const events = vstreamBatches(await resolveStart(vreq, tablets), tablets);
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const n = await events.next();
        if (n.done) controller.close();
        else controller.enqueue(encoder.encode(n.value.map(sse).join("")));
      } catch (e) {
        const err = errorBody(toVtError(e));
        delete err["cause"];
        controller.enqueue(encoder.encode(`event: ERROR\ndata: ${JSON.stringify({ type: "ERROR", error: err })}\n\n`));
        controller.close();
      }
    },
    async cancel() {
      await events.return(undefined);
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-store" } });
}
