// Positions for the StreamPositions tests (gate/vstream-positions.ts) around MoveTables: a stream of
// keyspace ks whose shard "-" reads everything but customer, which a MoveTables moved to keyspace
// dst, where the stream reads it (`only`).

import type { ShardPosition } from "../../contract/vstream.ts";
import type { StreamPositions } from "../../gate/vstream-positions.ts";

/** ks/- at `seq`, without customer. */
export const src = (seq: number): ShardPosition => ({ shard: "-", tablet: "ks/-", uid: "u", seq, copy: null, skip: ["customer"] });

/** dst/<shard> at `seq`, reading `only`. */
export const dst = (shard: string, seq: number, only = ["customer"]): ShardPosition => ({
  shard,
  tablet: `dst/${shard}`,
  uid: `d${shard}`,
  seq,
  copy: null,
  keyspace: "dst",
  only,
});

/** The keys of the positions read now, sorted. */
export const readable = (p: StreamPositions): string[] =>
  p
    .readable()
    .map(([k]) => k)
    .sort();
