// The gate's admin calls: the topology view, keyspace and vschema changes, and DDL, each through
// the Topology, whose answer (the graph after the change) the isolate's cache keeps.

import { toVtError, VtError } from "../contract/errors.ts";
import type { TopologyView } from "../contract/serving-graph.ts";
import type { DdlRequest, KeyspaceRetention } from "../contract/topology-rpc.ts";
import { own } from "../topology/own.ts";
import type { Backend } from "./backend.ts";
import { Retry, retryLoop } from "./retry.ts";

export function view(backend: Backend): Promise<TopologyView> {
  return backend.topology(false, (t) => t.view());
}

export async function createKeyspace(backend: Backend, name: unknown, shards: unknown): Promise<TopologyView> {
  if (typeof name !== "string") throw new VtError("INVALID_ARGUMENT", '"name" must be a string');
  if (typeof shards !== "number" && !Array.isArray(shards)) {
    throw new VtError("INVALID_ARGUMENT", '"shards" must be a count or a list of key ranges such as ["-80", "80-"]');
  }
  backend.adopt(await backend.topology(true, (t) => t.createKeyspace(name, shards as number | string[])));
  return view(backend);
}

export async function applyVSchema(backend: Backend, keyspace: unknown, vschema: unknown): Promise<{ keyspace: string; vschema: unknown }> {
  if (typeof keyspace !== "string") throw new VtError("INVALID_ARGUMENT", '"keyspace" must be a string');
  const g = await backend.topology(true, (t) => t.applyVSchema(keyspace, vschema));
  backend.adopt(g);
  return { keyspace, vschema: own(g.keyspaces, keyspace)?.vschema };
}

export async function getVSchema(backend: Backend, keyspace: string | undefined): Promise<{ keyspace: string; vschema: unknown }> {
  const ks = await backend.keyspace(keyspace, true);
  return { keyspace: ks.name, vschema: ks.vschema };
}

/**
 * A keyspace's binlog retention (`change` undefined) or a change of it: `change` holds
 * retentionSeconds, retentionBytes and/or holdSeconds; the Topology validates it and sends it to the tablets.
 */
export function retention(backend: Backend, keyspace: unknown, change: unknown): Promise<KeyspaceRetention> {
  if (typeof keyspace !== "string") throw new VtError("INVALID_ARGUMENT", '"keyspace" must be a string');
  return backend.topology(change !== undefined, (t) => t.retention(keyspace, change));
}

/**
 * A DDL through the Topology. A retryable failure (the Topology restarted, a shard did not
 * answer) is retried with the same request id, so a retry answers the first attempt's outcome
 * when that attempt was decided, and never applies the statement twice.
 */
export function applyDdl(backend: Backend, req: DdlRequest): Promise<void> {
  return retryLoop(
    async () => {
      try {
        backend.adopt(await backend.topology(true, (t) => t.applyDdl(req)));
      } catch (e) {
        const vt = toVtError(e);
        if (!vt.retryable) throw vt;
        return new Retry(vt);
      }
    },
    (_retry, n) => backend.backoff(n),
  );
}
