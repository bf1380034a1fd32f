import { exports } from "cloudflare:workers";

export interface ApiResult<T = unknown> {
  status: number;
  body: T;
}

/** Calls the gate Worker's HTTP API in-process. */
export async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResult<T>> {
  const init: RequestInit = { method, headers: { "content-type": "application/json", ...headers } };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await exports.default.fetch(new Request(`http://gate${path}`, init));
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain text (healthz)
  }
  return { status: res.status, body: parsed as T };
}

export interface SqlOk {
  columns: string[];
  rows: unknown[][];
  rowsAffected: number;
  lastInsertRowid?: unknown;
}

export async function sql(text: string, params?: unknown, keyspace?: string): Promise<SqlOk> {
  const r = await api<SqlOk & { error?: unknown }>("POST", "/v1/sql", {
    sql: text,
    ...(params !== undefined ? { params } : {}),
    ...(keyspace ? { keyspace } : {}),
  });
  if (r.status !== 200) throw new Error(`SQL failed (${r.status}): ${JSON.stringify(r.body)} for ${text}`);
  return r.body;
}

export async function sqlError(
  text: string,
  params?: unknown,
  keyspace?: string,
): Promise<{ status: number; code: string; message: string; [k: string]: unknown }> {
  const r = await api<{ error: { code: string; message: string } }>("POST", "/v1/sql", {
    sql: text,
    ...(params !== undefined ? { params } : {}),
    ...(keyspace ? { keyspace } : {}),
  });
  if (r.status === 200) throw new Error(`expected an error for ${text}, got ${JSON.stringify(r.body)}`);
  return { status: r.status, ...r.body.error };
}
