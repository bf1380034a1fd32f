// Where a shard's tablet lives: one Durable Object per `<keyspace>/<shard>`.

import type { Tablet } from "./tablet.ts";

export function tabletName(keyspace: string, shard: string): string {
  return `${keyspace}/${shard}`;
}

export function tabletStub(ns: DurableObjectNamespace<Tablet>, keyspace: string, shard: string): DurableObjectStub<Tablet> {
  return ns.get(ns.idFromName(tabletName(keyspace, shard)));
}
