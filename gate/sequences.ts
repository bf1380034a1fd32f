// Sequences as the gate serves them: where a sequence table lives, and ids handed out from a
// block this isolate reserved there (engine/sequence.ts keeps the blocks).

import { toVtError, VtError } from "../contract/errors.ts";
import type { KeyspaceGraph, ServingGraph } from "../contract/serving-graph.ts";
import type { SqlValue } from "../contract/sql-values.ts";
import { own } from "../topology/own.ts";
import type { Backend } from "./backend.ts";
import { blockOf, reserveQuery, SequenceCache } from "./engine/sequence.ts";
import { graphCache } from "./graph-cache.ts";
import { Retry, retryLoop } from "./retry.ts";

/** Shared by every request of the isolate. */
const sequences = new SequenceCache();

/**
 * The keyspace and table of a sequence named `table` or `keyspace.table`: a table of an
 * unsharded keyspace, marked `{"type": "sequence"}` in its vschema (or, named with its keyspace,
 * any table of an unsharded keyspace).
 */
export function locateSequence(g: ServingGraph, name: string): { keyspace: string; table: string } {
  const dot = name.indexOf(".");
  const hint = `create it in an unsharded keyspace (CREATE TABLE ${name.slice(dot + 1)} (id INTEGER PRIMARY KEY, next_id INTEGER NOT NULL, cache INTEGER NOT NULL), then INSERT (0, 1, 100)) and mark it {"type": "sequence"} in that keyspace's vschema`;
  if (dot > 0) {
    const keyspace = name.slice(0, dot);
    const table = name.slice(dot + 1);
    const ks = own(g.keyspaces, keyspace);
    if (!ks || ks.sharded || !own(ks.tables, table.toLowerCase())) throw new VtError("INVALID_ARGUMENT", `no sequence table ${name}: ${hint}`);
    return { keyspace, table };
  }
  const lower = name.toLowerCase();
  const marked = Object.values(g.keyspaces).filter(
    (ks) => !ks.sharded && Object.entries(ks.vschema.tables).some(([t, v]) => t.toLowerCase() === lower && v.type === "sequence"),
  );
  const found = marked.length > 0 ? marked : Object.values(g.keyspaces).filter((ks) => !ks.sharded && own(ks.tables, lower));
  if (found.length !== 1) {
    throw new VtError(
      "INVALID_ARGUMENT",
      found.length === 0
        ? `no sequence table ${name}: ${hint}`
        : `sequence ${name} is in several keyspaces (${found.map((k) => k.name).join(", ")}); name it as keyspace.${name}`,
    );
  }
  return { keyspace: (found[0] as KeyspaceGraph).name, table: name };
}

/** `count` ids from a sequence table, served from this isolate's cached block or a newly reserved one. */
export async function nextValues(backend: Backend, sequence: string, count: number): Promise<SqlValue[]> {
  const { keyspace, table } = locateSequence(await backend.graph(), sequence);
  return sequences.take(`${keyspace}.${table}`.toLowerCase(), count, (n) =>
    retryLoop(
      async (attempt) => {
        const ks = await backend.keyspace(keyspace, attempt > 0);
        const shard = ks.shards[0]?.name;
        if (!shard) throw new VtError("NOT_SERVING", `keyspace ${keyspace} has no shard`);
        try {
          const [res] = await backend.tablet(ks.name, shard, ks.version, [reserveQuery(table, n)]);
          return blockOf(sequence, res?.rows ?? []);
        } catch (e) {
          const vt = toVtError(e);
          // Only a stale graph is retried: the tablet refused before running anything.
          if (vt.code !== "NOT_SERVING" || vt["servingVersion"] === undefined) throw vt;
          return new Retry(vt);
        }
      },
      async () => {},
    ),
  );
}

/** Forgets the ids cached for a sequence (its table changed); an unknown sequence has none. */
export function forgetSequence(sequence: string): void {
  try {
    const { keyspace, table } = locateSequence(graphCache.last ?? { version: 0, keyspaces: {} }, sequence);
    sequences.forget(`${keyspace}.${table}`.toLowerCase());
  } catch {
    // unknown sequence: nothing cached
  }
}
