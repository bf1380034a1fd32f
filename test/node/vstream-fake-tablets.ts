// Fake tablets for the VStream merger's node tests: each answers reads from a list of
// transactions, two at a time, and stops at its journal (if any) until read past.

import type { KeyspaceGraph } from "../../contract/serving-graph.ts";
import type { ShardJournal, ShardRead, ShardReadRequest, ShardTransaction } from "../../contract/vstream.ts";
import type { VStreamTablets } from "../../gate/vstream.ts";

export interface FakeTablet {
  uid: string;
  txns: ShardTransaction[];
  journal?: ShardJournal;
  /** The journal's seq (its commit is the next); default: after the last transaction. */
  journalAt?: number;
  /** ms each read takes. */
  delay?: number;
}

export const tx = (seq: number, id: number, v: string): ShardTransaction => ({
  seq,
  ts: seq,
  changes: [{ table: "t", columns: ["id", "v"], pk: ["id"], before: null, after: [id, v] }],
});

export function fake(shards: Record<string, FakeTablet>, serving: string[]): VStreamTablets & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async keyspace(): Promise<KeyspaceGraph> {
      return {
        name: "ks",
        sharded: true,
        vschema: { sharded: true, vindexes: {}, tables: {} },
        tables: {},
        schemaIndex: 0,
        version: 1,
        shards: serving.map((s) => ({ name: s, keyRange: s, serving: true, tablet: `ks/${s}` })),
      };
    },
    async known(): Promise<string[]> {
      return Object.keys(shards).map((s) => `ks/${s}`);
    },
    async read(tablet: string, req: ShardReadRequest): Promise<ShardRead> {
      const t = shards[tablet.slice(3)];
      if (!t) throw new Error(`no tablet ${tablet}`);
      reads.push(tablet);
      await new Promise((r) => setTimeout(r, t.delay ?? 1));
      if (req.uid !== null && req.uid !== t.uid) throw Object.assign(new Error("too old"), { code: "INVALID_ARGUMENT" });
      const head = t.txns.at(-1)?.seq ?? 0;
      if (req.seq === -1) return { uid: t.uid, transactions: [], seq: head };
      // The journal stands after the transactions (or at journalAt) and is met until read past.
      const jAt = t.journalAt ?? head + 1;
      const relevant = t.journal && (t.journal.tables === null || t.journal.tables.some((x) => !(req.skip ?? []).includes(x)));
      const upTo = relevant && req.seq < jAt ? jAt : Number.POSITIVE_INFINITY;
      const after = t.txns.filter((x) => x.seq > req.seq && x.seq < upTo).slice(0, 2);
      const seq = after.at(-1)?.seq ?? req.seq;
      const atJournal = t.journal && upTo !== Number.POSITIVE_INFINITY && !t.txns.some((x) => x.seq > seq && x.seq < upTo);
      if (atJournal && t.journal) return { uid: t.uid, transactions: after, seq: jAt - 1, journal: t.journal, journalSeq: jAt + 1 };
      return { uid: t.uid, transactions: after, seq };
    },
  };
}
