// The ⚑ capnweb API at /rpc (WebSocket and HTTP batch): the same operations as HTTP, with
// values travelling natively (bigint, Uint8Array). Errors cross as Error with a `code` field.

import { RpcTarget } from "capnweb";
import { toWireError, VtError } from "../contract/errors.ts";
import type { TopologyView } from "../contract/serving-graph.ts";
import { createSubscription, deleteSubscription, showSubscriptions, subscriptionsView, type SubscriptionView, updateSubscription } from "./subscriptions.ts";
import type { SubscriptionRecord } from "../contract/subscription-rpc.ts";
import type { QueryResult } from "../contract/tablet-rpc.ts";
import type { KeyspaceRetention } from "../contract/topology-rpc.ts";
import { accessFor, requireAccess, type Access } from "./auth.ts";
import { Executor } from "./executor.ts";
import { checkedResult, decodeKeyspace, decodeStatement, decodeStatements } from "./wire.ts";
import type { VEvent } from "../contract/vstream.ts";
import { checkVStream, vstreamTablets } from "./vstream-http.ts";
import { decodeVStreamRequest } from "./vstream-request.ts";
import { resolveStart, vstreamEvents } from "./vstream.ts";

async function wire<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toWireError(e);
  }
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new VtError("INVALID_ARGUMENT", `${what} must be an object`);
  return v as Record<string, unknown>;
}

/** capnweb passes every argument the caller sent: more than a method takes is a mistake, not ignored. */
function noExtra(extra: readonly unknown[], method: string, takes: number): void {
  if (extra.length > 0) {
    throw new VtError(
      "INVALID_ARGUMENT",
      `${method} takes ${takes === 0 ? "no arguments" : takes === 1 ? "one argument" : `${takes} arguments`}, not ${takes + extra.length}`,
    );
  }
}

export class GateRpc extends RpcTarget {
  readonly #env: Env;
  #access: Access;

  constructor(env: Env, access: Access) {
    super();
    this.#env = env;
    this.#access = access;
  }

  /** Binds a token to this session (WebSocket clients cannot always set headers). */
  authenticate(token: string, ...extra: unknown[]): Promise<void> {
    return wire(async () => {
      noExtra(extra, "authenticate(token)", 1);
      if (typeof token !== "string") throw new VtError("INVALID_ARGUMENT", "authenticate(token): the token must be a string");
      const a = await accessFor(this.#env, token);
      requireAccess(a, "user");
      this.#access = a;
    });
  }

  execute(req: unknown, ...extra: unknown[]): Promise<QueryResult> {
    return wire(async () => {
      requireAccess(this.#access, "user");
      noExtra(extra, "execute(req)", 1);
      const o = asObject(req, "execute(req)");
      return checkedResult(await new Executor(this.#env).execute(decodeKeyspace(o), decodeStatement(o, "request", false)));
    });
  }

  batch(req: unknown, ...extra: unknown[]): Promise<{ results: QueryResult[] }> {
    return wire(async () => {
      requireAccess(this.#access, "user");
      noExtra(extra, "batch(req)", 1);
      const o = asObject(req, "batch(req)");
      const statements = decodeStatements(o, false);
      const t = o["transaction"];
      if (t !== undefined && typeof t !== "boolean") throw new VtError("INVALID_ARGUMENT", '"transaction" must be true or false');
      const tx = t === true;
      return { results: (await new Executor(this.#env).batch(decodeKeyspace(o), statements, tx)).map(checkedResult) };
    });
  }

  topology(...extra: unknown[]): Promise<TopologyView> {
    return wire(async () => {
      requireAccess(this.#access, "user");
      noExtra(extra, "topology()", 0);
      const [view, subscriptions] = await Promise.all([new Executor(this.#env).view(), subscriptionsView(this.#env)]);
      return { ...view, subscriptions };
    });
  }

  /**
   * VStream: calls `onEvent(event)` for each event, in order, waiting for each call (so a slow
   * subscriber slows the stream, never loses events), until it returns false or the connection
   * breaks; answers the token after the last event handed out. Values travel natively.
   */
  vstream(req: unknown, onEvent: unknown, ...extra: unknown[]): Promise<{ token: string | null }> {
    return wire(async () => {
      requireAccess(this.#access, "user");
      noExtra(extra, "vstream(req, onEvent)", 2);
      if (typeof onEvent !== "function") throw new VtError("INVALID_ARGUMENT", "vstream(req, onEvent): onEvent must be a function");
      const o = asObject(req, "vstream(req, onEvent)");
      const vreq = decodeVStreamRequest(o, this.#env.DEFAULT_KEYSPACE || "main");
      await checkVStream(this.#env, vreq);
      const tablets = vstreamTablets(this.#env);
      let token: string | null = null;
      for await (const e of vstreamEvents(await resolveStart(vreq, tablets), tablets)) {
        const more: unknown = await (onEvent as (e: VEvent) => unknown)(e);
        if ("token" in e) token = e.token;
        if (more === false) break;
      }
      return { token };
    });
  }

  createKeyspace(req: unknown, ...extra: unknown[]): Promise<TopologyView> {
    return wire(() => {
      requireAccess(this.#access, "admin");
      noExtra(extra, "createKeyspace(req)", 1);
      const o = asObject(req, "createKeyspace(req)");
      return new Executor(this.#env).createKeyspace(o["name"], o["shards"]);
    });
  }

  /** `{keyspace}`: the keyspace's binlog retention; with retentionSeconds, retentionBytes and/or holdSeconds: sets it (admin). */
  retention(req: unknown, ...extra: unknown[]): Promise<KeyspaceRetention> {
    return wire(() => {
      requireAccess(this.#access, "user");
      noExtra(extra, "retention(req)", 1);
      const { keyspace, ...change } = asObject(req, "retention(req)");
      const set = Object.keys(change).length > 0;
      if (set) requireAccess(this.#access, "admin");
      return new Executor(this.#env).retention(keyspace, set ? change : undefined);
    });
  }

  /**
   * Creates, updates or deletes a queue subscription (admin), with the body of `POST /v1/subscriptions`:
   * `{action: "create", name, keyspace?, tables?, binding, from?}`, `{action: "update", name, tables}`
   * or `{action: "delete", name}`.
   */
  subscription(req: unknown, ...extra: unknown[]): Promise<SubscriptionView | { deleted: SubscriptionRecord; stopped: boolean }> {
    return wire<SubscriptionView | { deleted: SubscriptionRecord; stopped: boolean }>(() => {
      requireAccess(this.#access, "admin");
      noExtra(extra, "subscription(req)", 1);
      const { action, ...body } = asObject(req, "subscription(req)");
      if (action === "create") return createSubscription(this.#env, body);
      if (action === "delete") {
        for (const k of Object.keys(body)) if (k !== "name") throw new VtError("INVALID_ARGUMENT", `subscription: unknown field "${k}"`);
        return deleteSubscription(this.#env, body["name"]);
      }
      if (action === "update") return updateSubscription(this.#env, body);
      throw new VtError("INVALID_ARGUMENT", 'subscription(req): "action" must be "create", "update" or "delete"');
    });
  }

  /** The queue subscriptions with their publishers' status, or `{name}`'s alone (as `GET /v1/subscriptions`). */
  subscriptions(req?: unknown, ...extra: unknown[]): Promise<{ subscriptions: SubscriptionView[] }> {
    return wire(async () => {
      requireAccess(this.#access, "user");
      noExtra(extra, "subscriptions(req?)", 1);
      const o = req === undefined ? {} : asObject(req, "subscriptions(req?)");
      for (const k of Object.keys(o)) if (k !== "name") throw new VtError("INVALID_ARGUMENT", `subscriptions(req?): unknown field "${k}"`);
      const name = o["name"];
      if (name !== undefined && typeof name !== "string") throw new VtError("INVALID_ARGUMENT", 'subscriptions(req?): "name" must be a string');
      return { subscriptions: await showSubscriptions(this.#env, name) };
    });
  }

  applyVSchema(req: unknown, ...extra: unknown[]): Promise<{ keyspace: string; vschema: unknown }> {
    return wire(() => {
      requireAccess(this.#access, "admin");
      noExtra(extra, "applyVSchema(req)", 1);
      const o = asObject(req, "applyVSchema(req)");
      return new Executor(this.#env).applyVSchema(o["keyspace"], o["vschema"]);
    });
  }
}
