// How the client reaches `<url>/rpc`. capnweb's own newHttpBatchRpcSession always calls the
// global fetch, so the HTTP batch transport is re-implemented here over any fetch (a service
// binding, SELF.fetch in tests). The protocol is capnweb's: one POST whose body is the
// client's messages joined by "\n", answered by the server's messages joined by "\n".

import type { RpcTransport } from "capnweb";
import { errorFromFields, unreachable, VitessError } from "./vitess-error.ts";

export type FetchFn = typeof fetch;

/**
 * The client end of one capnweb HTTP batch. Every message sent before the next macrotask goes
 * in the one request, so callers must make all their calls (authenticate, then the call)
 * synchronously after creating the session.
 */
export class HttpBatchTransport implements RpcTransport {
  #toSend: string[] | null = [];
  #received: string[] | null = null;
  #aborted = false;
  #abortReason: unknown = undefined;
  readonly #done: Promise<void>;

  constructor(sendBatch: (messages: string[]) => Promise<string[]>) {
    this.#done = this.#run(sendBatch);
    // The failure reaches callers through receive(); this only keeps it from being "unhandled".
    this.#done.catch(() => undefined);
  }

  send(message: string): void {
    this.#toSend?.push(message);
  }

  async receive(): Promise<string> {
    if (this.#received === null) await this.#done;
    const message = this.#received?.shift();
    if (message === undefined) throw new Error("RPC batch ended");
    return message;
  }

  abort(reason: unknown): void {
    this.#aborted = true;
    this.#abortReason = reason;
  }

  async #run(sendBatch: (messages: string[]) => Promise<string[]>): Promise<void> {
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    if (this.#aborted) throw this.#abortReason;
    const batch = this.#toSend ?? [];
    this.#toSend = null;
    this.#received = await sendBatch(batch);
  }
}

/** The RPC endpoint for a base URL: `<url>/rpc`. */
export function rpcUrl(base: string): string {
  return `${base.replace(/\/+$/, "")}/rpc`;
}

function authHeaders(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** A non-2xx answer as a VitessError: the gate's `{"error": {...}}` body when it sent one. */
export async function httpError(response: Response, url: string): Promise<VitessError> {
  const text = await response.text().catch(() => "");
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === "object" && body !== null && "error" in body) {
      const err: unknown = body.error;
      if (typeof err === "object" && err !== null) {
        return errorFromFields({ ...err }, `${response.status} ${response.statusText}`);
      }
    }
  } catch {
    // not JSON: fall through
  }
  const detail = text.trim().slice(0, 200);
  return new VitessError("INTERNAL", `${url} answered ${response.status} ${response.statusText}${detail ? `: ${detail}` : ""}`, {
    retryable: response.status === 502 || response.status === 503 || response.status === 504,
  });
}

/** Sends one capnweb batch through `fetchFn`; network failures become retryable INTERNAL. */
export function batchSender(fetchFn: FetchFn, base: string, token: string | undefined) {
  const url = rpcUrl(base);
  return async (messages: string[]): Promise<string[]> => {
    let response: Response;
    try {
      response = await fetchFn(url, { method: "POST", body: messages.join("\n"), headers: authHeaders(token) });
    } catch (e) {
      throw unreachable(base, e);
    }
    if (!response.ok) throw await httpError(response, url);
    const body = await response.text();
    return body === "" ? [] : body.split("\n");
  };
}

/**
 * Opens the WebSocket for `<url>/rpc`: through `fetchFn` with `Upgrade: websocket` when given
 * (Workers: service bindings, SELF), else with the global `WebSocket`. capnweb queues messages
 * until the socket is open.
 */
export async function openWebSocket(base: string, token: string | undefined, fetchFn: FetchFn | undefined): Promise<WebSocket> {
  const url = rpcUrl(base);
  if (fetchFn === undefined) {
    try {
      return new WebSocket(url.replace(/^http/i, "ws"));
    } catch (e) {
      throw unreachable(base, e);
    }
  }
  let response: Response;
  try {
    response = await fetchFn(url, { headers: { upgrade: "websocket", ...authHeaders(token) } });
  } catch (e) {
    throw unreachable(base, e);
  }
  const ws: unknown = Reflect.get(response, "webSocket");
  if (!isAcceptable(ws)) {
    if (!response.ok) throw await httpError(response, url);
    throw new VitessError(
      "INVALID_ARGUMENT",
      `${url} did not upgrade to a WebSocket (status ${response.status}); a custom fetch with transport "websocket" must return Workers' response.webSocket`,
    );
  }
  ws.accept();
  return ws;
}

function isAcceptable(ws: unknown): ws is WebSocket & { accept(): void } {
  return typeof ws === "object" && ws !== null && typeof Reflect.get(ws, "accept") === "function";
}
