// Sequences as the gate serves them: where a sequence table lives, a table's automatic sequence
// (blocks the Topology hands out, topology/id-blocks.ts), and ids handed out from a block this
// isolate reserved (engine/sequence.ts keeps the blocks).

import { toVtError, VtError } from "../contract/errors.ts";
import type { KeyspaceGraph, ServingGraph } from "../contract/serving-graph.ts";
import type { SqlValue } from "../contract/sql-values.ts";
import { own } from "../topology/own.ts";
import type { Backend } from "./backend.ts";
import { blockOf, type IdSource, pastMaxId, reserveQuery, SequenceCache } from "./engine/sequence.ts";
import { Retry, retryLoop } from "./retry.ts";
import type { RunStatement } from "./vcursor.ts";

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

/** The cache key of a table's automatic sequence (no sequence table is named with a space). */
function autoKey(keyspace: string, table: string): string {
  return `auto ${keyspace}.${table}`.toLowerCase();
}

/**
 * `count` fresh ids, increasing, from a sequence table or a table's automatic sequence; with
 * `floor`, none below it.
 */
export function nextIds(backend: Backend, ks: KeyspaceGraph, run: RunStatement, source: IdSource, count: number, floor?: bigint): Promise<SqlValue[]> {
  return "sequence" in source ? nextValues(backend, source.sequence, count, floor) : autoIds(backend, ks, run, source, count, floor);
}

/** `count` ids from a sequence table, served from this isolate's cached block or a newly reserved one. */
export async function nextValues(backend: Backend, sequence: string, count: number, floor?: bigint): Promise<SqlValue[]> {
  const { keyspace, table } = locateSequence(await backend.graph(), sequence);
  return sequences.take(
    `${keyspace}.${table}`.toLowerCase(),
    count,
    (n) =>
      retryLoop(
        async (attempt) => {
          const ks = await backend.keyspace(keyspace, attempt > 0);
          const shard = ks.shards[0]?.name;
          if (!shard) throw new VtError("NOT_SERVING", `keyspace ${keyspace} has no shard`);
          try {
            const [res] = await backend.tablet(ks, shard, [reserveQuery(table, n, floor)]);
            return blockOf(sequence, res?.rows ?? []);
          } catch (e) {
            const vt = toVtError(e);
            // Only a stale graph is retried: the tablet refused before running anything.
            if (vt.code !== "NOT_SERVING" || vt["servingVersion"] === undefined) throw vt;
            return new Retry(vt);
          }
        },
        async (retry, n, held) => (held ? backend.afterStale(retry, n, held) : undefined),
        backend.buffering,
      ),
    floor,
  );
}

/**
 * Ids of a table's automatic sequence (topology/id-blocks.ts), served from this isolate's cached
 * block or a block the Topology reserves. The first block of a table starts past its max id.
 */
async function autoIds(
  backend: Backend,
  ks: KeyspaceGraph,
  run: RunStatement,
  source: { table: string; column: string },
  count: number,
  floor: bigint | undefined,
): Promise<SqlValue[]> {
  return sequences.take(
    autoKey(ks.name, source.table),
    count,
    async (n) => {
      const reserve = (from: bigint | undefined) =>
        backend.topology(true, (t) => t.reserveIds(ks.name, source.table, n, from === undefined ? null : from.toString()));
      let block = await reserve(floor);
      if (!block) block = await reserve((await pastMaxId((sql) => run(ks.name, sql, []), source.table, source.column)) ?? 1n);
      if (!block) throw new VtError("INTERNAL", `the Topology gave no ids for ${source.table}`);
      return { next: BigInt(block.next), end: BigInt(block.end) };
    },
    floor,
  );
}
