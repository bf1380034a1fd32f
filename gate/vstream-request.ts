// A VStream request as it arrives (query string of GET /v1/vstream, or the object of the capnweb
// vstream call), checked field by field, and the events as JSON (the ⚑ value encoding).

import { VtError } from "../contract/errors.ts";
import { toJsonValue, type JsonValue } from "../contract/sql-values.ts";
import { decodeToken, type Row, type VEvent, type VStreamRequest } from "../contract/vstream.ts";
import { setOwn } from "../topology/own.ts";

const MIN_HEARTBEAT_MS = 100;
const MAX_HEARTBEAT_MS = 60_000;
const MAX_TABLES = 100;
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,127}$/;

/**
 * `tables`: a list (or comma-separated text) of table names; `from`: "now" (the default), "start"
 * or a token; `heartbeatMs` in [100, 60000]. `keyspace` falls back to the gate's default.
 */
export function decodeVStreamRequest(o: Readonly<Record<string, unknown>>, defaultKeyspace: string): VStreamRequest {
  const get = (k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
  for (const k of Object.keys(o)) {
    if (!["keyspace", "tables", "from", "heartbeatMs"].includes(k)) throw new VtError("INVALID_ARGUMENT", `vstream: unknown field "${k}"`);
  }
  const keyspace = get("keyspace") ?? defaultKeyspace;
  if (typeof keyspace !== "string" || keyspace === "") throw new VtError("INVALID_ARGUMENT", 'vstream: "keyspace" must be a keyspace name');
  const rawTables = get("tables");
  let tables: string[] | undefined;
  if (rawTables !== undefined && rawTables !== "") {
    const list = typeof rawTables === "string" ? rawTables.split(",").map((t) => t.trim()) : rawTables;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_TABLES || !list.every((t) => typeof t === "string" && TABLE_NAME.test(t))) {
      throw new VtError("INVALID_ARGUMENT", `vstream: "tables" must be a list of at most ${MAX_TABLES} table names, such as ["users", "orders"]`);
    }
    if (list.some((t) => (t as string).toLowerCase().startsWith("_vt"))) {
      throw new VtError("PERMISSION_DENIED", "vstream: tables whose names start with _vt are the system's own");
    }
    tables = [...new Set((list as string[]).map((t) => t.toLowerCase()))];
  }
  const from = get("from") ?? "now";
  if (typeof from !== "string" || from === "") throw new VtError("INVALID_ARGUMENT", 'vstream: "from" must be "now", "start" or a resume token');
  const hb = get("heartbeatMs");
  const heartbeatMs = hb === undefined || hb === "" ? undefined : Number(hb);
  if (heartbeatMs !== undefined && (!Number.isInteger(heartbeatMs) || heartbeatMs < MIN_HEARTBEAT_MS || heartbeatMs > MAX_HEARTBEAT_MS)) {
    throw new VtError("INVALID_ARGUMENT", `vstream: "heartbeatMs" must be a whole number from ${MIN_HEARTBEAT_MS} to ${MAX_HEARTBEAT_MS}`);
  }
  return {
    keyspace,
    ...(tables ? { tables } : {}),
    from: from === "now" || from === "start" ? from : decodeToken(from),
    ...(heartbeatMs !== undefined ? { heartbeatMs } : {}),
  };
}

function jsonRow(r: Row | null): Record<string, JsonValue> | null {
  if (r === null) return null;
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(r)) setOwn(out, k, toJsonValue(v));
  return out;
}

/** An event as JSON: row values in the ⚑ encoding (`{"int"}` beyond 2^53, `{"base64"}` for BLOBs). */
export function eventJson(e: VEvent): unknown {
  if (e.type !== "ROW") return e;
  return { ...e, before: jsonRow(e.before), after: jsonRow(e.after), pk: jsonRow(e.pk) };
}
