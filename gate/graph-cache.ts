// The serving graph as this isolate caches it. Every request of the isolate plans with the same
// copy for up to GRAPH_TTL_MS; a stale copy costs a retry (tablets refuse plans of an older
// version with NOT_SERVING), never a wrong answer, so freshness is a matter of speed only.

import type { ServingGraph } from "../contract/serving-graph.ts";

const GRAPH_TTL_MS = 5_000;

export class GraphCache {
  #graph: ServingGraph | null = null;
  #fetchedAt = 0;

  /** The cached graph while it is fresh and `refresh` is false; otherwise `fetch()`'s, kept. */
  async get(fetch: () => Promise<ServingGraph>, refresh: boolean): Promise<ServingGraph> {
    if (!refresh && this.#graph && Date.now() - this.#fetchedAt < GRAPH_TTL_MS) return this.#graph;
    const g = await fetch();
    this.adopt(g);
    return g;
  }

  /** Keeps a graph a Topology call answered (a change answers the graph after it). */
  adopt(g: ServingGraph): void {
    this.#graph = g;
    this.#fetchedAt = Date.now();
  }
}

/** Shared by every request of the isolate. */
export const graphCache = new GraphCache();
