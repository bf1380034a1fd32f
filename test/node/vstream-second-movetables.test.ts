// A second MoveTables into shards a VStream already reads for an earlier one's tables
// (gate/vstream-positions.ts). The invariant: the position on each such shard reads the new tables
// too only from that shard's arrival marker on (nothing of theirs is logged there before it), and
// only once every source shard stands at the switch's journal and every such target position at
// its marker, in either order; until then the arrived sides are not read and the token keeps them
// before their journal and marker, and a token taken when only some were widened resumes. A marker
// of tables the stream does not read in the keyspace they came from is passed at once; a switch
// from before arrival markers still ends the stream with VD2802.

import { describe, expect, it } from "vitest";
import { decodeToken, type ShardJournal, type ShardPosition } from "../../contract/vstream.ts";
import { StreamPositions } from "../../gate/vstream-positions.ts";
import { dst, readable, src } from "./vstream-positions-fixtures.ts";

/** The second MoveTables (orders → dst) switched: its journal in ks/- names dst's heads before the flip. */
const journal: ShardJournal = {
  workflow: "mv2",
  keyspace: "dst",
  tables: ["orders"],
  sources: ["-"],
  targets: [
    { shard: "-80", tablet: "dst/-80", uid: "d-80", seq: 50, arrival: 55 },
    { shard: "80-", tablet: "dst/80-", uid: "d80-", seq: 60, arrival: 65 },
  ],
  arrivals: true,
};
/** What each dst tablet wrote in the flip's config push, before it took orders' writes. */
const arrival: ShardJournal = { workflow: "mv2", keyspace: "dst", tables: ["orders"], sources: [], targets: [], arrival: true, sourceKeyspace: "ks" };

const positions = () => new StreamPositions("ks", null, [src(30), dst("-80", 10), dst("80-", 20)]);

describe("a vstream across a second MoveTables into shards it reads", () => {
  it("the journal first: the source waits unread; each target waits at its marker; then they read orders from their markers", () => {
    const p = positions();
    p.advance("ks/-", { seq: 69 });
    expect(p.follow("ks/-", journal, 71)).toBeNull();
    expect(readable(p)).toEqual(["dst/-80", "dst/80-"]);
    // Meanwhile the token keeps the source before its journal: a resume meets it again.
    expect(decodeToken(p.token()).shards.find((x) => x.shard === "-")).toMatchObject({ seq: 69, skip: ["customer"] });
    p.advance("dst/-80", { seq: 53 });
    // -80 at its marker with the source at the journal: it reads orders from there; the source still waits for 80-.
    expect(p.follow("dst/-80", arrival, 55)).toMatchObject({ type: "JOURNAL", from: ["-"], to: ["dst/-80"] });
    expect(readable(p)).toEqual(["dst/-80", "dst/80-"]);
    expect(p.get("dst/-80")).toMatchObject({ seq: 55, only: ["customer", "orders"] });
    p.advance("dst/80-", { seq: 63 });
    const ev = p.follow("dst/80-", arrival, 65);
    expect(ev).toMatchObject({ type: "JOURNAL", from: ["-"], to: ["dst/80-"] });
    expect(readable(p)).toEqual(["dst/-80", "dst/80-", "ks/-"]);
    expect(p.get("dst/-80")).toMatchObject({ seq: 55, only: ["customer", "orders"] });
    expect(p.get("dst/80-")).toMatchObject({ seq: 65, only: ["customer", "orders"] });
    expect(p.get("ks/-")).toMatchObject({ seq: 71, skip: ["customer", "orders"] });
  });

  it("the markers first: the targets wait unread at them until the source reaches the journal", () => {
    const p = positions();
    expect(p.follow("dst/-80", arrival, 55)).toBeNull();
    expect(p.follow("dst/80-", arrival, 65)).toBeNull();
    expect(readable(p)).toEqual(["ks/-"]);
    expect(p.follow("ks/-", journal, 71)).toMatchObject({ type: "JOURNAL", from: ["-"], to: ["dst/-80", "dst/80-"] });
    expect(p.get("dst/-80")).toMatchObject({ seq: 55, only: ["customer", "orders"] });
    expect(p.get("ks/-")).toMatchObject({ seq: 71, skip: ["customer", "orders"] });
  });

  it("a target shard the stream does not read yet starts at the journal's position, reading orders alone", () => {
    const p = new StreamPositions("ks", null, [src(30), dst("-80", 10)]);
    expect(p.follow("ks/-", journal, 71)).toMatchObject({ type: "JOURNAL", from: ["-"], to: ["dst/80-"] });
    expect(readable(p)).toEqual(["dst/-80", "dst/80-"]);
    expect(p.follow("dst/-80", arrival, 55)).toMatchObject({ type: "JOURNAL", from: ["-"], to: ["dst/-80"] });
    expect(p.get("ks/-")).toMatchObject({ seq: 71, skip: ["customer", "orders"] });
    expect(p.get("dst/80-")).toMatchObject({ seq: 60, only: ["orders"] });
    expect(p.get("dst/-80")).toMatchObject({ seq: 55, only: ["customer", "orders"] });
  });

  it("a marker of tables the stream reads nowhere else is passed at once, with no event", () => {
    const p = new StreamPositions("ks", ["customer"], [{ ...src(30), skip: ["customer"] }, dst("-80", 10)]);
    expect(p.follow("dst/-80", arrival, 55)).toBeNull();
    expect(p.get("dst/-80")).toMatchObject({ seq: 55, only: ["customer"] });
    expect(readable(p)).toEqual(["dst/-80", "ks/-"]);
    // A stream of the target keyspace itself, of other tables: the same.
    const own = new StreamPositions("dst", ["customer"], [{ shard: "-80", tablet: "dst/-80", uid: "d-80", seq: 10, copy: null }]);
    expect(own.follow("dst/-80", arrival, 55)).toBeNull();
    expect(own.get("dst/-80")).toMatchObject({ seq: 55 });
  });

  it("a switch from before arrival markers, or one into shards being copied, still ends the stream with VD2802", () => {
    const { arrivals: _, ...old } = journal;
    expect(() => positions().follow("ks/-", old, 71)).toThrow(expect.objectContaining({ code: "UNSUPPORTED", id: "VD2802" }));
    const copying = new StreamPositions("ks", null, [src(30), { ...dst("-80", 10), copy: { table: "customer", after: null } }, dst("80-", 20)]);
    expect(() => copying.follow("ks/-", journal, 71)).toThrow(expect.objectContaining({ code: "UNSUPPORTED", id: "VD2802" }));
  });

  it("a token taken when only some targets were widened resumes: those read orders already, the others widen at their markers", () => {
    const p = new StreamPositions("ks", null, [src(69), dst("-80", 55, ["customer", "orders"]), dst("80-", 20)]);
    expect(p.follow("ks/-", journal, 71)).toBeNull();
    expect(readable(p)).toEqual(["dst/-80", "dst/80-"]);
    expect(p.follow("dst/80-", arrival, 65)).toMatchObject({ type: "JOURNAL", from: ["-"], to: ["dst/80-"] });
    expect(p.get("dst/80-")).toMatchObject({ seq: 65, only: ["customer", "orders"] });
    expect(p.get("dst/-80")).toMatchObject({ seq: 55, only: ["customer", "orders"] });
    expect(p.get("ks/-")).toMatchObject({ seq: 71, skip: ["customer", "orders"] });
    // Every target widened already: the source simply goes on past the journal.
    const all = new StreamPositions("ks", null, [src(69), dst("-80", 55, ["customer", "orders"]), dst("80-", 65, ["customer", "orders"])]);
    expect(all.follow("ks/-", journal, 71)).toBeNull();
    expect(all.get("ks/-")).toMatchObject({ seq: 71, skip: ["customer", "orders"] });
    expect(readable(all)).toEqual(["dst/-80", "dst/80-", "ks/-"]);
  });

  it("a marker of a MoveTables from a keyspace the stream does not read the tables in is passed, whatever the stream's tables", () => {
    const p = positions();
    const other: ShardJournal = { ...arrival, workflow: "k9mv", tables: ["widgets"], sourceKeyspace: "k9" };
    expect(p.follow("dst/-80", other, 55)).toBeNull();
    expect(p.get("dst/-80")).toMatchObject({ seq: 55, only: ["customer"] });
    expect(readable(p)).toEqual(["dst/-80", "dst/80-", "ks/-"]);
  });

  it("a position standing at an arrival marker is not taken for one at a reverse journal", () => {
    const p = positions();
    expect(p.follow("dst/-80", arrival, 55)).toBeNull();
    const rejoin: ShardJournal = { workflow: "mv1", keyspace: "ks", tables: ["customer"], sources: [], targets: [], rejoin: true };
    expect(p.follow("ks/-", rejoin, 45)).toBeNull();
    // customer is still read on dst (-80 waits at its marker, 80- reads on).
    expect(p.get("dst/-80")?.only).toEqual(["customer"]);
    expect(p.get("ks/-")?.skip).toEqual(["customer"]);
  });

  it("when a source reading only the moved table feeds a widened position, it goes once nothing waits for it", () => {
    const k3: ShardPosition = { shard: "-", tablet: "k3/-", uid: "k", seq: 30, copy: null, keyspace: "k3", only: ["orders"] };
    const p = new StreamPositions("ks", null, [k3, dst("-80", 10)]);
    const fromK3: ShardJournal = { ...journal, targets: [journal.targets[0] as ShardJournal["targets"][number]] };
    expect(p.follow("k3/-", fromK3, 71)).toBeNull();
    expect(p.follow("dst/-80", { ...arrival, sourceKeyspace: "k3" }, 55)).toMatchObject({ type: "JOURNAL", from: ["k3/-"], to: ["dst/-80"] });
    expect(p.get("k3/-")).toBeUndefined();
    expect(readable(p)).toEqual(["dst/-80"]);
  });

  it("a target that went past its marker while the stream read the tables nowhere in their keyspace cannot be widened: VD2802, not a stall", () => {
    // dst/-80 passed the marker (seq 55) before the stream read orders on ks again (a token, a lag).
    const p = new StreamPositions("ks", null, [src(69), dst("-80", 58), dst("80-", 20)]);
    expect(() => p.follow("ks/-", journal, 71)).toThrow(expect.objectContaining({ code: "UNSUPPORTED", id: "VD2802" }));
  });

  it("the second MoveTables reversed while only some of its targets were widened: the stream waits, then narrows them back", () => {
    const p = positions();
    p.advance("ks/-", { seq: 69 });
    expect(p.follow("ks/-", journal, 71)).toBeNull();
    expect(p.follow("dst/-80", arrival, 55)).toMatchObject({ type: "JOURNAL", to: ["dst/-80"] });
    // Its reverse: orders back to ks/- (whose rejoin marker commits at 80).
    const back: ShardJournal = {
      workflow: "mv2",
      keyspace: "ks",
      tables: ["orders"],
      sources: ["-80", "80-"],
      targets: [{ shard: "-", tablet: "ks/-", uid: "u", seq: 75 }],
    };
    expect(p.follow("dst/-80", back, 58)).toBeNull();
    expect(readable(p)).toEqual(["dst/80-"]);
    expect(p.follow("dst/80-", arrival, 65)).toMatchObject({ type: "JOURNAL", from: ["-"], to: ["dst/80-"] });
    expect(p.get("ks/-")).toMatchObject({ seq: 71, skip: ["customer", "orders"] });
    expect(p.follow("dst/80-", back, 68)).toBeNull();
    const rejoin: ShardJournal = { workflow: "mv2", keyspace: "ks", tables: ["orders"], sources: [], targets: [], rejoin: true };
    expect(p.follow("ks/-", rejoin, 80)).toMatchObject({ type: "JOURNAL", from: ["dst/-80", "dst/80-"], to: ["-"] });
    expect(p.get("dst/-80")).toMatchObject({ seq: 58, only: ["customer"] });
    expect(p.get("dst/80-")).toMatchObject({ seq: 68, only: ["customer"] });
    expect(p.get("ks/-")).toMatchObject({ seq: 80, skip: ["customer"] });
  });

  it("a journal it cannot follow without losing or stalling something around a Reshard of the target keyspace ends with VD2802", () => {
    const vd2802 = expect.objectContaining({ code: "UNSUPPORTED", id: "VD2802" });
    // dst was merged into "-" (the stream still reads -80 and 80-) when the second MoveTables names "-".
    const merged: ShardJournal = { ...journal, targets: [{ shard: "-", tablet: "dst/-", uid: "dm", seq: 40, arrival: 45 }] };
    expect(() => positions().follow("ks/-", merged, 71)).toThrow(vd2802);
    // The merge's journal met first: "-" waits to start for it when the MoveTables' journal names it.
    const p = positions();
    const merge: ShardJournal = {
      workflow: "m",
      keyspace: "dst",
      tables: null,
      sources: ["-80", "80-"],
      targets: [{ shard: "-", tablet: "dst/-", uid: "dm", seq: 30 }],
    };
    expect(p.follow("dst/-80", merge, 12)).toBeNull();
    expect(() => p.follow("ks/-", merged, 71)).toThrow(vd2802);
    // A Reshard's journal naming a shard the stream reads already (taken up for a MoveTables).
    const split: ShardJournal = {
      workflow: "s",
      keyspace: "dst",
      tables: null,
      sources: ["-80"],
      targets: [{ shard: "-", tablet: "dst/-", uid: "dm", seq: 30 }],
    };
    const r = new StreamPositions("ks", null, [src(30), dst("-80", 10), dst("-", 10)]);
    expect(() => r.follow("dst/-80", split, 12)).toThrow(vd2802);
  });

  it("resumed from a token taken while only some targets were taken up, the second MoveTables' reverse is followed too", () => {
    const two = (shard: string, seq: number): ShardPosition => ({ shard, tablet: `ks/${shard}`, uid: `u${shard}`, seq, copy: null, skip: ["customer"] });
    const j2: ShardJournal = { ...journal, sources: ["-80", "80-"] };
    const p = new StreamPositions("ks", null, [two("-80", 2), two("80-", 2), dst("-80", 55, ["customer", "orders"]), dst("80-", 20)]);
    expect(p.follow("dst/80-", arrival, 65)).toBeNull();
    expect(p.follow("ks/-80", j2, 71)).toBeNull();
    // -80 runs ahead to the reverse's journal while ks/80- is still before the forward one.
    const back: ShardJournal = {
      workflow: "mv2",
      keyspace: "ks",
      tables: ["orders"],
      sources: ["-80", "80-"],
      targets: [
        { shard: "-80", tablet: "ks/-80", uid: "u-80", seq: 75 },
        { shard: "80-", tablet: "ks/80-", uid: "u80-", seq: 75 },
      ],
    };
    expect(p.follow("dst/-80", back, 58)).toBeNull();
    expect(p.follow("ks/80-", j2, 71)).toMatchObject({ type: "JOURNAL", to: ["dst/80-"] });
    expect(p.follow("dst/80-", back, 68)).toBeNull();
    const rejoin: ShardJournal = { workflow: "mv2", keyspace: "ks", tables: ["orders"], sources: [], targets: [], rejoin: true };
    expect(p.follow("ks/-80", rejoin, 80)).toBeNull();
    expect(p.follow("ks/80-", rejoin, 80)).toMatchObject({ type: "JOURNAL", from: ["dst/-80", "dst/80-"], to: ["-80", "80-"] });
    expect(p.get("dst/-80")).toMatchObject({ seq: 58, only: ["customer"] });
    expect(p.get("dst/80-")).toMatchObject({ seq: 68, only: ["customer"] });
    expect(p.get("ks/-80")).toMatchObject({ seq: 80, skip: ["customer"] });
    expect(p.get("ks/80-")).toMatchObject({ seq: 80, skip: ["customer"] });
  });

  it("a Reshard of the target keyspace the stream follows while taking up the second MoveTables does not refuse it", () => {
    const two = (shard: string, seq: number): ShardPosition => ({ shard, tablet: `ks/${shard}`, uid: `u${shard}`, seq, copy: null, skip: ["customer"] });
    const j2: ShardJournal = { ...journal, sources: ["-80", "80-"] };
    const p = new StreamPositions("ks", null, [two("-80", 2), two("80-", 2), dst("-80", 55, ["customer", "orders"]), dst("80-", 20)]);
    expect(p.follow("dst/80-", arrival, 65)).toBeNull();
    expect(p.follow("ks/-80", j2, 71)).toBeNull();
    // dst/-80 (reading orders already) meets dst's merge into "-": "-" waits for 80- too.
    const merge: ShardJournal = {
      workflow: "rs",
      keyspace: "dst",
      tables: null,
      sources: ["-80", "80-"],
      targets: [{ shard: "-", tablet: "dst/-", uid: "dm", seq: 90 }],
    };
    expect(p.follow("dst/-80", merge, 59)).toBeNull();
    expect(p.follow("ks/80-", j2, 71)).toMatchObject({ type: "JOURNAL", to: ["dst/80-"] });
    expect(p.get("ks/-80")).toMatchObject({ seq: 71, skip: ["customer", "orders"] });
    expect(p.follow("dst/80-", merge, 69)).toMatchObject({ type: "JOURNAL", from: ["dst/-80", "dst/80-"], to: ["dst/-"] });
    expect(p.get("dst/-")).toMatchObject({ seq: 90, only: ["customer", "orders"] });
  });
});
