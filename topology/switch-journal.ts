// The journal a switch leaves for VStream (contract/vstream.ts ShardJournal): once the serving
// graph (or a MoveTables' routing) flipped, each shard that stopped taking the moved writes gets,
// at the end of its binlog, a journal naming the shards that took them and the binlog position
// on each from which their changes are new: the heads read before the flip, while those shards
// took no writes of the moved rows. A stream reading an old shard meets the journal right after
// the old shard's last change and goes on at those positions, with nothing lost or repeated.
//
// Written after the flip and outside the write pause, by the switch itself and, when it stopped
// between the flip and this step, by whoever finishes the switch (the next action or the
// Topology's alarm, from the heads in the switch mark); the id makes a repeat a no-op.

import { unwrap } from "../contract/envelope.ts";
import type { ShardJournal } from "../contract/vstream.ts";
import { VtError } from "../contract/errors.ts";
import type { TabletOf, WorkflowShard } from "./reshard-streams.ts";

export interface SwitchJournal {
  readonly workflow: string;
  readonly direction: "forward" | "reverse";
  /** The keyspace the writes went to. */
  readonly keyspace: string;
  /** The tables that moved (a MoveTables); null: all of them (a Reshard). */
  readonly tables: readonly string[] | null;
  /** The shards that stopped taking the writes: the journal goes into their binlogs. */
  readonly from: readonly WorkflowShard[];
  /** The shards that took them, and their heads (tablet → seq) as read before the flip. */
  readonly to: readonly WorkflowShard[];
  readonly heads: ReadonlyMap<string, number>;
  /** A MoveTables switch: its targets wrote arrival markers under this id (ShardJournal.arrivals). */
  readonly arrivalId?: string;
}

/** The journal's id on each old shard: one switch (its direction and the heads it recorded) writes one journal. */
export function journalId(j: SwitchJournal): string {
  const at = j.to.map((t) => `${t.tablet}@${String(j.heads.get(t.tablet) ?? "?")}`).join(",");
  return `${j.workflow}/${j.direction}/${at}`;
}

/** Writes the switch's journal into every old shard's binlog (all at once); idempotent. */
export async function writeJournals(j: SwitchJournal, tabletOf: TabletOf): Promise<void> {
  const targets = await Promise.all(
    j.to.map(async (t) => {
      const seq = j.heads.get(t.tablet);
      if (seq === undefined) throw new VtError("INTERNAL", `workflow ${j.workflow}: no head recorded for tablet ${t.tablet}`);
      const position = unwrap(await tabletOf(t.tablet).status()).position;
      const arrival = j.arrivalId === undefined ? null : unwrap(await tabletOf(t.tablet).journalSeq(j.arrivalId)).seq;
      return { shard: t.shard, tablet: t.tablet, uid: position.slice(0, position.lastIndexOf(":")), seq, ...(arrival !== null ? { arrival } : {}) };
    }),
  );
  const journal: ShardJournal = {
    workflow: j.workflow,
    keyspace: j.keyspace,
    tables: j.tables === null ? null : [...j.tables],
    sources: j.from.map((s) => s.shard),
    targets,
    ...(j.direction === "forward" && j.tables !== null ? { forward: true as const } : {}),
    ...(j.arrivalId !== undefined ? { arrivals: true as const } : {}),
  };
  const id = journalId(j);
  await Promise.all(j.from.map(async (s) => unwrap(await tabletOf(s.tablet).appendJournal(id, journal))));
}
