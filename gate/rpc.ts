// The ⚑ capnweb API at /rpc (WebSocket and HTTP batch): the same operations as HTTP, with
// values travelling natively (bigint, Uint8Array). Errors cross as Error with a `code` field.

import { RpcTarget } from "capnweb";
import { toWireError, VtError } from "../topology/errors.ts";
import type { TopologyView } from "../topology/graph.ts";
import type { QueryResult } from "../tablet/types.ts";
import { accessFor, requireAccess, type Access } from "./auth.ts";
import { Executor } from "./executor.ts";
import { decodeKeyspace, decodeStatement } from "./wire.ts";

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

export class GateRpc extends RpcTarget {
  readonly #env: Env;
  #access: Access;

  constructor(env: Env, access: Access) {
    super();
    this.#env = env;
    this.#access = access;
  }

  /** Binds a token to this session (WebSocket clients cannot always set headers). */
  authenticate(token: string): Promise<void> {
    return wire(() => {
      const a = accessFor(this.#env, typeof token === "string" ? token : null);
      requireAccess(a, "user");
      this.#access = a;
    });
  }

  execute(req: unknown): Promise<QueryResult> {
    return wire(async () => {
      requireAccess(this.#access, "user");
      const o = asObject(req, "execute(req)");
      return new Executor(this.#env).execute(decodeKeyspace(o), decodeStatement(o, "request", false));
    });
  }

  batch(req: unknown): Promise<{ results: QueryResult[] }> {
    return wire(async () => {
      requireAccess(this.#access, "user");
      const o = asObject(req, "batch(req)");
      const raw = o["statements"];
      if (!Array.isArray(raw)) throw new VtError("INVALID_ARGUMENT", '"statements" must be an array of {sql, params?}');
      const statements = raw.map((s, i) => decodeStatement(s, `statement ${i}`, false));
      const tx = o["transaction"] === true;
      return { results: await new Executor(this.#env).batch(decodeKeyspace(o), statements, tx) };
    });
  }

  topology(): Promise<TopologyView> {
    return wire(() => {
      requireAccess(this.#access, "user");
      return new Executor(this.#env).view();
    });
  }

  createKeyspace(req: unknown): Promise<TopologyView> {
    return wire(() => {
      requireAccess(this.#access, "admin");
      const o = asObject(req, "createKeyspace(req)");
      return new Executor(this.#env).createKeyspace(o["name"], o["shards"]);
    });
  }

  applyVSchema(req: unknown): Promise<{ keyspace: string; vschema: unknown }> {
    return wire(() => {
      requireAccess(this.#access, "admin");
      const o = asObject(req, "applyVSchema(req)");
      return new Executor(this.#env).applyVSchema(o["keyspace"], o["vschema"]);
    });
  }
}
