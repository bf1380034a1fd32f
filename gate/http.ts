// The ⚑ HTTP API.

import { ERROR_CODES, errorBody, toVtError, VtError } from "../topology/errors.ts";
import { accessFor, bearer, requireAccess } from "./auth.ts";
import { Executor } from "./executor.ts";
import { decodeKeyspace, decodeStatement, encodeResult } from "./wire.ts";

const MAX_BODY_BYTES = 8 * 1024 * 1024;

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

export function errorResponse(e: unknown): Response {
  const vt = toVtError(e);
  const body = errorBody(vt);
  delete body["cause"];
  return json({ error: body }, ERROR_CODES[vt.code].status);
}

async function readJson(req: Request): Promise<Record<string, unknown>> {
  const len = Number(req.headers.get("content-length") ?? "0");
  if (len > MAX_BODY_BYTES) throw new VtError("INVALID_ARGUMENT", `request body is over ${MAX_BODY_BYTES} bytes`);
  const text = await req.text();
  if (text.length > MAX_BODY_BYTES) throw new VtError("INVALID_ARGUMENT", `request body is over ${MAX_BODY_BYTES} bytes`);
  if (text.trim() === "") throw new VtError("INVALID_ARGUMENT", "the request body is empty; send a JSON object");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new VtError("INVALID_ARGUMENT", `the request body is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new VtError("INVALID_ARGUMENT", "the request body must be a JSON object");
  return v as Record<string, unknown>;
}

function route(method: string, path: string): string | undefined {
  const routes: Record<string, string> = {
    "POST /v1/sql": "sql",
    "POST /v1/batch": "batch",
    "GET /v1/topology": "topology",
    "POST /v1/keyspaces": "createKeyspace",
    "POST /v1/vschema": "applyVSchema",
    "GET /v1/vschema": "getVSchema",
  };
  return routes[`${method} ${path}`];
}

export async function handleHttp(req: Request, env: Env): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/healthz") return new Response("ok", { headers: { "content-type": "text/plain" } });
  try {
    const op = route(req.method, url.pathname);
    if (!op) {
      const known = ["/v1/sql", "/v1/batch", "/v1/topology", "/v1/keyspaces", "/v1/vschema", "/rpc", "/healthz"];
      if (known.includes(url.pathname)) throw new VtError("INVALID_ARGUMENT", `${req.method} is not allowed on ${url.pathname}`);
      return json({ error: { code: "INVALID_ARGUMENT", message: `no endpoint ${url.pathname}`, retryable: false } }, 404);
    }
    const access = accessFor(env, bearer(req));
    const admin = op === "createKeyspace" || op === "applyVSchema";
    requireAccess(access, admin ? "admin" : "user");
    const ex = new Executor(env);
    switch (op) {
      case "sql": {
        const body = await readJson(req);
        return json(encodeResult(await ex.execute(decodeKeyspace(body), decodeStatement(body, "request", true))));
      }
      case "batch": {
        const body = await readJson(req);
        const raw = body["statements"];
        if (!Array.isArray(raw)) throw new VtError("INVALID_ARGUMENT", '"statements" must be an array of {sql, params?}');
        const tx = body["transaction"];
        if (tx !== undefined && typeof tx !== "boolean") throw new VtError("INVALID_ARGUMENT", '"transaction" must be true or false');
        const statements = raw.map((s, i) => {
          try {
            return decodeStatement(s, `statement ${i}`, true);
          } catch (e) {
            const vt = toVtError(e);
            vt["statementIndex"] = i;
            throw vt;
          }
        });
        const results = await ex.batch(decodeKeyspace(body), statements, tx === true);
        return json({ results: results.map(encodeResult) });
      }
      case "topology":
        return json(await ex.view());
      case "createKeyspace": {
        const body = await readJson(req);
        return json(await ex.createKeyspace(body["name"], body["shards"]));
      }
      case "applyVSchema": {
        const body = await readJson(req);
        return json(await ex.applyVSchema(body["keyspace"], body["vschema"]));
      }
      case "getVSchema":
        return json(await ex.getVSchema(url.searchParams.get("keyspace") ?? undefined));
      default:
        throw new VtError("INTERNAL", `unrouted ${op}`);
    }
  } catch (e) {
    return errorResponse(e);
  }
}
