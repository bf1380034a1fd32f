// The ⚑ HTTP API.

import { ERROR_CODES, errorBody, toVtError, VtError } from "../contract/errors.ts";
import { accessFor, bearer, requireAccess } from "./auth.ts";
import { readBodyText } from "./body.ts";
import { Executor } from "./executor.ts";
import { opensRpcSession, serveRpc } from "./rpc-endpoint.ts";
import { checkedResult, decodeKeyspace, decodeStatement, decodeStatements, encodeResult } from "./wire.ts";
import { serveVStream } from "./vstream-http.ts";
import { createSubscription, deleteSubscription, readInbox, showSubscriptions, subscriptionsView, updateSubscription } from "./subscriptions.ts";
import { decodeWorkflowRequest, encodeWorkflowAnswer, runWorkflowRequest, workflowExecutor } from "./workflows.ts";

/** A request field, own properties only (a body {} has no "constructor"). */
function field(o: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

export function errorResponse(e: unknown): Response {
  const vt = toVtError(e);
  const body = errorBody(vt);
  delete body["cause"];
  return json({ error: body }, ERROR_CODES[vt.code].status);
}

/**
 * JSON.parse reviver: an integer written without point or exponent but beyond ±(2^53−1) (which
 * JSON.parse would round) becomes `{"int": "<its digits>"}`, so it is read exactly, as the
 * contract's own form for such integers is (and is refused, like that form, beyond 64 bits).
 * Numbers written as REALs stay numbers.
 */
function exactIntegers(_key: string, value: unknown, context?: { readonly source?: string }): unknown {
  if (typeof value !== "number" || Number.isSafeInteger(value)) return value;
  const source = context?.source;
  return source !== undefined && /^-?\d+$/.test(source) ? { int: source } : value;
}

async function readJson(req: Request): Promise<Record<string, unknown>> {
  const text = await readBodyText(req);
  if (text.trim() === "") throw new VtError("INVALID_ARGUMENT", "the request body is empty; send a JSON object");
  let v: unknown;
  try {
    v = JSON.parse(text, exactIntegers as Parameters<typeof JSON.parse>[1]);
  } catch (e) {
    throw new VtError("INVALID_ARGUMENT", `the request body is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new VtError("INVALID_ARGUMENT", "the request body must be a JSON object");
  return v as Record<string, unknown>;
}

const ROUTES: ReadonlyMap<string, string> = new Map([
  ["POST /v1/sql", "sql"],
  ["POST /v1/batch", "batch"],
  ["GET /v1/topology", "topology"],
  ["POST /v1/keyspaces", "createKeyspace"],
  ["POST /v1/vschema", "applyVSchema"],
  ["GET /v1/vschema", "getVSchema"],
  ["POST /v1/workflows", "workflow"],
  ["GET /v1/workflows", "showWorkflow"],
  ["GET /v1/vstream", "vstream"],
  ["GET /v1/retention", "getRetention"],
  ["POST /v1/retention", "setRetention"],
  ["POST /v1/subscriptions", "subscription"],
  ["GET /v1/subscriptions", "showSubscriptions"],
  ["GET /v1/subscriptions/inbox", "inbox"],
]);
const PATHS: ReadonlySet<string> = new Set([
  "/v1/sql",
  "/v1/batch",
  "/v1/topology",
  "/v1/keyspaces",
  "/v1/vschema",
  "/v1/workflows",
  "/v1/vstream",
  "/v1/retention",
  "/v1/subscriptions",
  "/v1/subscriptions/inbox",
]);

/**
 * Every request of the gate. The order is a contract: /healthz is open; any other request is
 * authenticated before its path or method is looked at (so a caller without the token learns
 * nothing about the API, not even that a path exists); /rpc alone admits a request without a
 * token, and only to open a session (a POST batch or a WebSocket upgrade), since capnweb
 * clients may authenticate() inside the session; a wrong token on it is refused at once.
 */
export async function handleHttp(req: Request, env: Env): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/healthz") return new Response("ok", { headers: { "content-type": "text/plain" } });
  try {
    const token = bearer(req);
    const access = await accessFor(env, token);
    if (url.pathname === "/rpc") {
      if (token !== null || !opensRpcSession(req)) requireAccess(access, "user");
      return await serveRpc(req, env, access);
    }
    requireAccess(access, "user");
    const op = ROUTES.get(`${req.method} ${url.pathname}`);
    if (!op) {
      if (PATHS.has(url.pathname)) throw new VtError("INVALID_ARGUMENT", `${req.method} is not allowed on ${url.pathname}`);
      return json({ error: { code: "INVALID_ARGUMENT", message: `no endpoint ${url.pathname}`, retryable: false } }, 404);
    }
    const admin = op === "createKeyspace" || op === "applyVSchema" || op === "workflow" || op === "setRetention" || op === "subscription";
    requireAccess(access, admin ? "admin" : "user");
    const ex = new Executor(env);
    switch (op) {
      case "sql": {
        const body = await readJson(req);
        return json(encodeResult(checkedResult(await ex.execute(decodeKeyspace(body), decodeStatement(body, "request", true)))));
      }
      case "batch": {
        const body = await readJson(req);
        const statements = decodeStatements(body, true);
        const tx = Object.hasOwn(body, "transaction") ? body["transaction"] : undefined;
        if (tx !== undefined && typeof tx !== "boolean") throw new VtError("INVALID_ARGUMENT", '"transaction" must be true or false');
        const results = await ex.batch(decodeKeyspace(body), statements, tx === true);
        return json({ results: results.map((r) => encodeResult(checkedResult(r))) });
      }
      case "topology": {
        const [view, subscriptions] = await Promise.all([ex.view(), subscriptionsView(env)]);
        return json({ ...view, subscriptions });
      }
      case "subscription": {
        const body = await readJson(req);
        const action = field(body, "action");
        if (action === "create") return json(await createSubscription(env, body));
        if (action === "delete") return json(await deleteSubscription(env, field(body, "name")));
        if (action === "update") return json(await updateSubscription(env, body));
        throw new VtError("INVALID_ARGUMENT", '"action" must be "create", "update" or "delete"');
      }
      case "showSubscriptions": {
        const name = url.searchParams.get("name");
        return json({ subscriptions: await showSubscriptions(env, name === null || name === "" ? undefined : name) });
      }
      case "inbox": {
        const num = (k: string, d: number) => {
          const v = url.searchParams.get(k);
          return v === null || v === "" ? d : /^\d{1,15}$/.test(v) ? Number(v) : Number.NaN;
        };
        return json(await readInbox(env, num("after", 0), num("limit", 500)));
      }
      case "createKeyspace": {
        const body = await readJson(req);
        return json(await ex.createKeyspace(field(body, "name"), field(body, "shards")));
      }
      case "applyVSchema": {
        const body = await readJson(req);
        return json(await ex.applyVSchema(field(body, "keyspace"), field(body, "vschema")));
      }
      case "getRetention":
        return json(await ex.retention(url.searchParams.get("keyspace") ?? (env.DEFAULT_KEYSPACE || "main"), undefined));
      case "setRetention": {
        const { keyspace, ...change } = await readJson(req);
        return json(await ex.retention(keyspace, change));
      }
      case "getVSchema":
        return json(await ex.getVSchema(url.searchParams.get("keyspace") ?? undefined));
      case "workflow": {
        const wreq = decodeWorkflowRequest(await readJson(req));
        return json(encodeWorkflowAnswer(await runWorkflowRequest(workflowExecutor(env), env, wreq)));
      }
      case "vstream":
        return await serveVStream(req, url, env);
      case "showWorkflow": {
        const q = Object.fromEntries(url.searchParams);
        const wreq = decodeWorkflowRequest({ ...q, action: "show" });
        return json(encodeWorkflowAnswer(await runWorkflowRequest(workflowExecutor(env), env, wreq)));
      }
      default:
        throw new VtError("INTERNAL", `unrouted ${op}`);
    }
  } catch (e) {
    return errorResponse(e);
  }
}
