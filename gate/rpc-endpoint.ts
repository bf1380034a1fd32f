// `/rpc` (⚑ capnweb): the HTTP batch and WebSocket transports of GateRpc. Everything a caller
// can get wrong answers a catalogue error: a request that is neither POST nor a WebSocket
// upgrade, a batch body over the cap or not capnweb messages (HTTP error responses), and a call
// of a method GateRpc does not have (an RPC error with `code`, as every other).

import { newWorkersRpcResponse, type RpcSessionOptions } from "capnweb";
import { isErrorCode, toWireError, VtError } from "../contract/errors.ts";
import type { Access } from "./auth.ts";
import { readBodyText } from "./body.ts";
import { GateRpc } from "./rpc.ts";

/** Largest capnweb message over a WebSocket, in UTF-16 code units (as for HTTP bodies). */
export const MAX_RPC_MESSAGE = 8 * 1024 * 1024;

/**
 * Errors reach capnweb's serializer either from GateRpc's methods (already catalogue errors
 * with `code`) or from capnweb itself when a call cannot be delivered: an unknown method, a
 * property that is not a method, a path into a non-object. Those are the caller's mistake.
 */
function onSendError(e: Error): Error | undefined {
  if (isErrorCode((e as Error & { code?: unknown }).code)) return undefined;
  const vt = e instanceof TypeError ? new VtError("INVALID_ARGUMENT", `rpc: ${e.message}`) : e;
  const out = toWireError(vt);
  // A rewritten error's stack would be sent to the peer.
  Object.defineProperty(out, "stack", { value: undefined });
  return out;
}

const OPTIONS: RpcSessionOptions = { onSendError, limits: { maxMessageSize: MAX_RPC_MESSAGE } };

/** A POST (capnweb HTTP batch) or a WebSocket upgrade: the two ways to open a session. */
export function opensRpcSession(req: Request): boolean {
  return req.method === "POST" || req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

export async function serveRpc(req: Request, env: Env, access: Access): Promise<Response> {
  if (req.method === "POST") {
    const text = await readBodyText(req);
    // capnweb reads the body itself: give it the copy read under the cap.
    const bounded = new Request(req.url, { method: "POST", body: text });
    try {
      return await newWorkersRpcResponse(bounded, new GateRpc(env, access), OPTIONS);
    } catch (e) {
      // The batch session aborts only on a line it cannot take as a capnweb message.
      throw new VtError("INVALID_ARGUMENT", `the body is not a capnweb batch: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (opensRpcSession(req)) {
    return newWorkersRpcResponse(req, new GateRpc(env, access), OPTIONS);
  }
  throw new VtError("INVALID_ARGUMENT", `${req.method} is not allowed on /rpc (POST a capnweb batch, or open a WebSocket)`);
}
