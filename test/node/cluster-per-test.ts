// A test's in-memory cluster (fake-cursor.ts), closed after the test that made it.

import { afterEach } from "vitest";
import { type Cluster, type ClusterOptions, createCluster } from "./fake-cursor.ts";

/** Registers the afterEach that closes what the returned function creates; call it at the top of a test file. */
export function clusterPerTest(): (opts: ClusterOptions) => Cluster {
  let open: Cluster | undefined;
  afterEach(() => {
    open?.close();
    open = undefined;
  });
  return (opts) => {
    open = createCluster(opts);
    return open;
  };
}

/** Two ids that live on different shards: 1, and the first id after it placed elsewhere. */
export function idsOnTwoShards(cl: Cluster): [number, number] {
  for (let b = 2; b < 100; b++) if (cl.shardOf(1) !== cl.shardOf(b)) return [1, b];
  throw new Error("no two shards");
}
