// A reversed MoveTables while a VStream follows it (gate/vstream-positions.ts). The invariant:
// the moved tables come back to the source shards only once every position reading them in the
// target keyspace stands at its reverse journal and every source shard at its rejoin marker, in
// either order; until then the arrived sides are not read; then the target positions go and the
// source shards read the tables again past the marker, and the token says so; a position in the
// target keyspace that reads other tables too goes on with those.

import { describe, expect, it } from "vitest";
import { decodeToken, type ShardJournal, type ShardPosition } from "../../contract/vstream.ts";
import { StreamPositions } from "../../gate/vstream-positions.ts";
import { dst, readable, src } from "./vstream-positions-fixtures.ts";

/** The reverse journal each target shard gets: customer goes back to "-" at seq 40. */
const reverse: ShardJournal = {
  workflow: "mv",
  keyspace: "ks",
  tables: ["customer"],
  sources: ["-80", "80-"],
  targets: [{ shard: "-", tablet: "ks/-", uid: "u", seq: 40 }],
};
/** The marker the source tablet writes before it takes customer's writes again. */
const marker: ShardJournal = { workflow: "mv", keyspace: "ks", tables: ["customer"], sources: [], targets: [], rejoin: true };

const positions = (extra: ShardPosition[] = []) => new StreamPositions("ks", null, [src(30), dst("-80", 10), dst("80-", 20), ...extra]);

describe("a vstream across a reversed MoveTables", () => {
  it("journals first, then the marker: the target positions wait unread, then go; the source reads customer again past the marker", () => {
    const p = positions();
    expect(p.follow("dst/-80", reverse, 12)).toBeNull();
    expect(readable(p)).toEqual(["dst/80-", "ks/-"]);
    expect(p.follow("dst/80-", reverse, 22)).toBeNull();
    expect(readable(p)).toEqual(["ks/-"]);
    // The source read up to just before its marker (seq 44, commit 45).
    p.advance("ks/-", { seq: 43 });
    const ev = p.follow("ks/-", marker, 45);
    expect(ev).toMatchObject({ type: "JOURNAL", from: ["dst/-80", "dst/80-"], to: ["-"] });
    expect(readable(p)).toEqual(["ks/-"]);
    const back = p.get("ks/-");
    expect(back).toMatchObject({ seq: 45 });
    expect(back?.skip).toBeUndefined();
    if (ev?.type !== "JOURNAL") throw new Error("no journal");
    expect(decodeToken(ev.token).shards).toEqual([{ shard: "-", tablet: "ks/-", uid: "u", seq: 45, copy: null }]);
  });

  it("the marker first: the source waits unread at it until every target position reached its journal", () => {
    const p = positions();
    p.advance("ks/-", { seq: 43 });
    expect(p.follow("ks/-", marker, 45)).toBeNull();
    expect(readable(p)).toEqual(["dst/-80", "dst/80-"]);
    // The token meanwhile keeps the source before its marker, so a resume meets it again.
    expect(decodeToken(p.token()).shards.find((s) => s.shard === "-")).toMatchObject({ seq: 43, skip: ["customer"] });
    expect(p.follow("dst/-80", reverse, 12)).toBeNull();
    expect(readable(p)).toEqual(["dst/80-"]);
    expect(p.follow("dst/80-", reverse, 22)).toMatchObject({ type: "JOURNAL", from: ["dst/-80", "dst/80-"], to: ["-"] });
    expect(readable(p)).toEqual(["ks/-"]);
    expect(p.get("ks/-")).toMatchObject({ seq: 45 });
  });

  it("keeps skipping the tables of another MoveTables that stays moved", () => {
    const p = new StreamPositions("ks", null, [{ ...src(30), skip: ["customer", "orders"] }, dst("-80", 10), { ...dst("-", 5, ["orders"]), keyspace: "ord" }]);
    const oneBack: ShardJournal = { ...reverse, sources: ["-80"] };
    expect(p.follow("dst/-80", oneBack, 12)).toBeNull();
    expect(p.follow("ks/-", marker, 45)).toMatchObject({ type: "JOURNAL", from: ["dst/-80"], to: ["-"] });
    expect(p.get("ks/-")?.skip).toEqual(["orders"]);
    expect(readable(p)).toEqual(["ks/-", "ord/-"]);
  });

  it("a marker of tables the stream reads nowhere else lets the source go on at once, with no event", () => {
    const p = new StreamPositions("ks", null, [src(30)]);
    expect(p.follow("ks/-", marker, 45)).toBeNull();
    expect(p.get("ks/-")).toMatchObject({ seq: 45 });
    expect(p.get("ks/-")?.skip).toBeUndefined();
    expect(readable(p)).toEqual(["ks/-"]);
  });

  it("a target position that reads other tables too (two MoveTables into its shard) goes on with those past its reverse journal", () => {
    const p = new StreamPositions("ks", null, [{ ...src(30), skip: ["customer", "orders"] }, dst("-80", 10, ["customer", "orders"])]);
    expect(p.follow("dst/-80", { ...reverse, sources: ["-80"] }, 12)).toBeNull();
    expect(p.follow("ks/-", marker, 45)).toMatchObject({ type: "JOURNAL", from: ["dst/-80"], to: ["-"] });
    expect(p.get("dst/-80")).toMatchObject({ seq: 12, only: ["orders"] });
    expect(p.get("ks/-")).toMatchObject({ seq: 45, skip: ["orders"] });
    expect(readable(p)).toEqual(["dst/-80", "ks/-"]);
  });

  it("a new MoveTables moving the tables back (not a reverse: no rejoin markers come) ends the stream with VD2802 instead of waiting for ever", () => {
    const p = positions();
    const forward: ShardJournal = { ...reverse, workflow: "back", forward: true };
    expect(() => p.follow("dst/-80", forward, 12)).toThrow(expect.objectContaining({ code: "UNSUPPORTED", id: "VD2802" }));
  });
});
