// The Client implementation. Ownership: with transport "http" every call owns a fresh capnweb
// HTTP batch session (authenticate + the call in one request, nothing kept between calls); with
// "websocket" the client owns one session, authenticated once when opened, replaced after it
// breaks, and closed by close().

import { newWebSocketRpcSession, RpcSession, type RpcStub } from "capnweb";
import { isErrorCode } from "../contract/errors.ts";
import type { BatchOptions, Client, ClientConfig, InStatement, Params, ResultSet, Row, TopologyView, Transaction, Value } from "./api.ts";
import type { BatchRequest, ExecuteRequest, GateRpc } from "./gate-rpc.ts";
import { checkSql, encodeParams, encodeStatement } from "./params.ts";
import { batchSender, HttpBatchTransport, openWebSocket, type FetchFn } from "./rpc-transport.ts";
import { toVitessError, unreachable, VitessError } from "./vitess-error.ts";
import { openVStream, type ChangeEvent, type VStream, type VStreamOptions } from "./vstream.ts";

type Gate = RpcStub<GateRpc>;

interface WsSession {
  readonly gate: Gate;
  readonly socket: WebSocket;
  /** Settles with the authenticate call sent first on the socket; undefined without a token. */
  readonly authed: Promise<void> | undefined;
  /** Set once capnweb reports the session broken; the next call opens a new one. */
  broken: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function badReply(what: string): VitessError {
  return new VitessError("INTERNAL", `the gate sent a malformed reply to ${what}`);
}

function closedError(): VitessError {
  return new VitessError("INVALID_ARGUMENT", "client is closed");
}

function invalid(message: string): VitessError {
  return new VitessError("INVALID_ARGUMENT", message);
}

function toResultSet(raw: unknown, what: string): ResultSet {
  if (!isRecord(raw)) throw badReply(what);
  const { columns, rows, rowsAffected, lastInsertRowid } = raw;
  if (!Array.isArray(columns) || !columns.every((c) => typeof c === "string")) throw badReply(what);
  if (!Array.isArray(rows) || !rows.every((r) => Array.isArray(r))) throw badReply(what);
  if (typeof rowsAffected !== "number") throw badReply(what);
  for (const row of rows as unknown[][]) {
    // capnweb on Node decodes bytes as Buffer; callers get a plain Uint8Array on every runtime.
    row.forEach((v, i) => {
      if (v instanceof Uint8Array && v.constructor !== Uint8Array) row[i] = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    });
  }
  const rs: ResultSet = { columns: columns as string[], rows: rows as Value[][], rowsAffected };
  if (typeof lastInsertRowid === "number" || typeof lastInsertRowid === "bigint") rs.lastInsertRowid = lastInsertRowid;
  return rs;
}

function toRows<T>(rs: ResultSet): T[] {
  return rs.rows.map((values) => {
    const row: Row = {};
    // defineProperty: a column named "__proto__" is a field, and a repeated name keeps the last.
    rs.columns.forEach((name, i) => {
      Object.defineProperty(row, name, { value: values[i] ?? null, enumerable: true, writable: true, configurable: true });
    });
    return row as unknown as T;
  });
}

function normalizeBaseUrl(url: unknown): string {
  if (typeof url !== "string") throw invalid('config.url is required, e.g. "http://127.0.0.1:8787"');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`config.url ${JSON.stringify(url)} is not a URL`);
  }
  const protocol = { "http:": "http:", "https:": "https:", "ws:": "http:", "wss:": "https:" }[parsed.protocol];
  if (protocol === undefined) throw invalid(`config.url must be http(s) or ws(s), not ${parsed.protocol}`);
  parsed.protocol = protocol;
  parsed.search = "";
  parsed.hash = "";
  return parsed.href.replace(/\/+$/, "");
}

export class VitessClient implements Client {
  readonly #url: string;
  readonly #keyspace: string | undefined;
  readonly #token: string | undefined;
  readonly #transport: "http" | "websocket";
  readonly #fetch: FetchFn | undefined;
  #closed = false;
  #ws: WsSession | undefined;
  #wsOpening: Promise<WsSession> | undefined;
  readonly #streams = new Set<VStream>();

  constructor(config: ClientConfig) {
    if (!isRecord(config)) throw invalid("createClient needs a config object: { url, keyspace?, token?, transport?, fetch? }");
    this.#url = normalizeBaseUrl(config.url);
    const { keyspace, token, transport = "http", fetch: fetchFn } = config;
    if (keyspace !== undefined && (typeof keyspace !== "string" || keyspace === "")) {
      throw invalid("config.keyspace must be a non-empty string");
    }
    if (token !== undefined && typeof token !== "string") throw invalid("config.token must be a string");
    if (transport !== "http" && transport !== "websocket") {
      throw invalid(`config.transport must be "http" or "websocket", not ${JSON.stringify(transport)}`);
    }
    if (fetchFn !== undefined && typeof fetchFn !== "function") throw invalid("config.fetch must be a function");
    if (transport === "websocket" && fetchFn === undefined && typeof globalThis.WebSocket !== "function") {
      throw invalid(
        'transport "websocket" needs a global WebSocket (Node >= 22, Workers, browsers) or a fetch that can upgrade; use transport "http" on this runtime',
      );
    }
    this.#keyspace = keyspace;
    this.#token = token === "" ? undefined : token;
    this.#transport = transport;
    this.#fetch = fetchFn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async execute(sql: string, params?: Params): Promise<ResultSet> {
    this.#assertOpen();
    const req: ExecuteRequest = { sql: checkSql(sql) };
    const wire = encodeParams(params);
    if (wire !== undefined) req.params = wire;
    if (this.#keyspace !== undefined) req.keyspace = this.#keyspace;
    return toResultSet(await this.#call((gate) => gate.execute(req)), "execute");
  }

  async query<T = Row>(sql: string, params?: Params): Promise<T[]> {
    return toRows<T>(await this.execute(sql, params));
  }

  async batch(statements: readonly InStatement[], options: BatchOptions = {}): Promise<ResultSet[]> {
    this.#assertOpen();
    if (!Array.isArray(statements)) throw invalid("batch takes an array of statements");
    const list: readonly InStatement[] = statements;
    const req: BatchRequest = { statements: list.map((s, i) => encodeStatement(s, i)) };
    if (req.statements.length === 0) return [];
    if (options.transaction === true) req.transaction = true;
    if (this.#keyspace !== undefined) req.keyspace = this.#keyspace;
    const raw = await this.#call((gate) => gate.batch(req));
    if (!isRecord(raw) || !Array.isArray(raw["results"])) throw badReply("batch");
    const results: unknown[] = raw["results"];
    if (results.length !== req.statements.length) throw badReply("batch");
    return results.map((r) => toResultSet(r, "batch"));
  }

  async transaction<T>(_fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.#assertOpen();
    throw new VitessError(
      "UNSUPPORTED",
      "interactive transactions are not available yet; use batch(statements, { transaction: true }) to apply statements all or nothing",
      { id: "VD1110" },
    );
  }

  async topology(): Promise<TopologyView> {
    this.#assertOpen();
    const raw = await this.#call((gate) => gate.topology());
    if (!isRecord(raw) || !Array.isArray(raw["keyspaces"])) throw badReply("topology");
    const { version, keyspaces, workflows, subscriptions } = raw;
    return {
      version: typeof version === "number" ? version : 0,
      keyspaces: keyspaces as TopologyView["keyspaces"],
      workflows: Array.isArray(workflows) ? workflows : [],
      ...(Array.isArray(subscriptions) ? { subscriptions } : {}),
    };
  }

  vstream(options?: VStreamOptions): VStream;
  vstream(options: VStreamOptions, onEvent: (e: ChangeEvent) => unknown): Promise<{ token: string | null }>;
  vstream(options: VStreamOptions = {}, onEvent?: (e: ChangeEvent) => unknown): VStream | Promise<{ token: string | null }> {
    this.#assertOpen();
    if (!isRecord(options)) throw invalid("vstream takes an options object: { keyspace?, tables?, from?, heartbeatMs? }");
    if (onEvent !== undefined && typeof onEvent !== "function") throw invalid("vstream's second argument must be a function");
    const stream = openVStream(this.#fetch ?? globalThis.fetch, this.#url, this.#token, this.#keyspace, options);
    this.#streams.add(stream);
    if (onEvent === undefined) return stream;
    return (async () => {
      try {
        for await (const e of stream) if ((await onEvent(e)) === false) break;
        return { token: stream.token };
      } finally {
        await stream.close();
        this.#streams.delete(stream);
      }
    })();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    for (const s of this.#streams) await s.close();
    this.#streams.clear();
    this.#closed = true;
    const session = this.#ws ?? (await this.#wsOpening?.catch(() => undefined));
    this.#ws = undefined;
    session?.socket.close(1000, "client closed");
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }

  async #call(invoke: (gate: Gate) => PromiseLike<unknown>): Promise<unknown> {
    return this.#transport === "websocket" ? this.#callWebSocket(invoke) : this.#callHttp(invoke);
  }

  async #callHttp(invoke: (gate: Gate) => PromiseLike<unknown>): Promise<unknown> {
    const fetchFn: FetchFn = this.#fetch ?? globalThis.fetch;
    const session = new RpcSession<GateRpc>(new HttpBatchTransport(batchSender(fetchFn, this.#url, this.#token)));
    const gate = session.getRemoteMain();
    // Both calls must be made before the batch leaves (next macrotask): authenticate first.
    const calls: PromiseLike<unknown>[] = [];
    if (this.#token !== undefined) calls.push(gate.authenticate(this.#token));
    calls.push(invoke(gate));
    try {
      const results = await Promise.all(calls);
      return results[results.length - 1];
    } catch (e) {
      throw toVitessError(e);
    }
  }

  async #callWebSocket(invoke: (gate: Gate) => PromiseLike<unknown>): Promise<unknown> {
    const session = await this.#webSocketSession();
    try {
      const call = invoke(session.gate);
      if (session.authed === undefined) return await call;
      const [, result] = await Promise.all([session.authed, call]);
      return result;
    } catch (e) {
      if (this.#closed) throw closedError();
      const carriesCode = isRecord(e) && isErrorCode(e["code"]);
      if (session.broken !== undefined && !carriesCode) throw unreachable(this.#url, session.broken);
      throw toVitessError(e);
    }
  }

  async #webSocketSession(): Promise<WsSession> {
    if (this.#ws !== undefined && this.#ws.broken === undefined) return this.#ws;
    this.#wsOpening ??= this.#openWebSocketSession().finally(() => {
      this.#wsOpening = undefined;
    });
    return this.#wsOpening;
  }

  async #openWebSocketSession(): Promise<WsSession> {
    const socket = await openWebSocket(this.#url, this.#token, this.#fetch);
    if (this.#closed) {
      socket.close(1000, "client closed");
      throw closedError();
    }
    const gate = newWebSocketRpcSession<GateRpc>(socket);
    let authed: Promise<void> | undefined;
    if (this.#token !== undefined) {
      const token = this.#token;
      authed = (async () => {
        await gate.authenticate(token);
      })();
      // Awaited by every call; this handler only stops an early failure from being "unhandled".
      authed.catch(() => undefined);
    }
    const session: WsSession = { gate, socket, authed, broken: undefined };
    gate.onRpcBroken((error: unknown) => {
      session.broken = error ?? new Error("connection lost");
      if (this.#ws === session) this.#ws = undefined;
    });
    this.#ws = session;
    return session;
  }
}
