// The gate's VStream merger against fake tablets. The invariant: per shard, every transaction
// after the start arrives once, whole and in commit order; resuming from any COMMIT's token
// yields exactly the transactions after it; across a journal (split or merge) the stream moves
// to the new shards at the journal's positions, and a merged shard starts only after every old
// shard reached its journal.

import { describe, expect, it } from "vitest";
import { decodeToken, type ShardJournal, type ShardTransaction, type VEvent } from "../../contract/vstream.ts";
import { vstreamEvents } from "../../gate/vstream.ts";
import { type FakeTablet, fake, tx } from "./vstream-fake-tablets.ts";

/** Events until `until` holds (the generator stays open: a later take goes on where this one stopped). */
async function take(gen: AsyncGenerator<VEvent>, until: (seen: VEvent[]) => boolean, max = 500): Promise<VEvent[]> {
  const seen: VEvent[] = [];
  while (seen.length < max) {
    const n = await gen.next();
    if (n.done) break;
    seen.push(n.value);
    if (until(seen)) break;
  }
  return seen;
}

const values = (evs: VEvent[]) => evs.flatMap((e) => (e.type === "ROW" ? [`${e.shard}:${String(e.after?.["v"])}`] : []));
const commits = (evs: VEvent[]) => evs.filter((e) => e.type === "COMMIT");

describe("vstream merger", () => {
  it("hands out each shard's transactions once, whole and in order, and a token resumes exactly after its commit", async () => {
    const shards = {
      "-80": { uid: "a", txns: [tx(1, 1, "a1"), tx(2, 2, "a2"), tx(3, 3, "a3")] },
      "80-": { uid: "b", txns: [tx(1, 10, "b1"), tx(5, 11, "b2")] },
    };
    const t = fake(shards, ["-80", "80-"]);
    const all = await take(
      vstreamEvents(
        {
          keyspace: "ks",
          from: {
            keyspace: "ks",
            shards: [
              { shard: "-80", tablet: "ks/-80", uid: "a", seq: 0, copy: null },
              { shard: "80-", tablet: "ks/80-", uid: "b", seq: 0, copy: null },
            ],
          },
        },
        t,
      ),
      (s) => commits(s).length === 5,
    );
    expect(values(all).filter((v) => v.startsWith("-80"))).toEqual(["-80:a1", "-80:a2", "-80:a3"]);
    expect(values(all).filter((v) => v.startsWith("80-"))).toEqual(["80-:b1", "80-:b2"]);
    // Whole: each BEGIN of a shard is followed by its rows and its COMMIT before that shard's next BEGIN.
    for (const shard of ["-80", "80-"]) {
      const mine = all.filter((e) => "shard" in e && e.shard === shard).map((e) => e.type);
      expect(mine.join(",")).toMatch(/^(BEGIN,ROW,COMMIT,?)+$/);
    }
    // Resume from every commit's token: exactly the rest, in each shard's order.
    const all5 = commits(all);
    for (const [i, c] of all5.entries()) {
      if (c.type !== "COMMIT" || i === all5.length - 1) continue;
      const left = all5.length - 1 - i;
      const again = await take(vstreamEvents({ keyspace: "ks", from: decodeToken(c.token) }, fake(shards, ["-80", "80-"])), (x) => commits(x).length === left);
      const rest = values(all.slice(all.indexOf(c) + 1));
      for (const shard of ["-80:", "80-:"]) expect(values(again).filter((v) => v.startsWith(shard))).toEqual(rest.filter((v) => v.startsWith(shard)));
    }
  });

  it('"now" starts at every head: only later commits arrive; idle streams beat', async () => {
    const shards: Record<string, FakeTablet> = { "-": { uid: "u", txns: [tx(1, 1, "old")] } };
    const t = fake(shards, ["-"]);
    const gen = vstreamEvents({ keyspace: "ks", from: "now", heartbeatMs: 20 }, t);
    const beat = await take(gen, (s) => s.some((e) => e.type === "HEARTBEAT"));
    expect(values(beat)).toEqual([]);
    shards["-"]?.txns.push(tx(2, 2, "new"));
    const more = await take(gen, (s) => commits(s).length === 1);
    expect(values(more)).toEqual(["-:new"]);
    const hb = beat.find((e) => e.type === "HEARTBEAT");
    expect(hb && hb.type === "HEARTBEAT" ? decodeToken(hb.token).shards[0]?.seq : null).toBe(1);
  });

  it("follows a split's journal to the new shards at its positions", async () => {
    const journal: ShardJournal = {
      workflow: "split",
      keyspace: "ks",
      tables: null,
      sources: ["-"],
      targets: [
        { shard: "-80", tablet: "ks/-80", uid: "l", seq: 7 },
        { shard: "80-", tablet: "ks/80-", uid: "r", seq: 4 },
      ],
    };
    const shards: Record<string, FakeTablet> = {
      "-": { uid: "s", txns: [tx(1, 1, "s1"), tx(2, 2, "s2")], journal },
      // What the copy wrote (seq ≤ the journal's) is not handed out again.
      "-80": { uid: "l", txns: [tx(7, 1, "copied"), tx(8, 1, "l1")] },
      "80-": { uid: "r", txns: [tx(4, 2, "copied"), tx(9, 2, "r1")] },
    };
    const evs = await take(
      vstreamEvents({ keyspace: "ks", from: { keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "s", seq: 0, copy: null }] } }, fake(shards, [])),
      (s) => commits(s).length === 4,
    );
    expect(values(evs).sort()).toEqual(["-:s1", "-:s2", "-80:l1", "80-:r1"].sort());
    const j = evs.find((e) => e.type === "JOURNAL");
    expect(j).toMatchObject({ from: ["-"], to: ["-80", "80-"] });
    if (j?.type === "JOURNAL")
      expect(decodeToken(j.token).shards.map((p) => [p.shard, p.seq])).toEqual([
        ["-80", 7],
        ["80-", 4],
      ]);
    // Nothing of the new shards comes before the journal.
    expect(evs.findIndex((e) => e.type === "JOURNAL")).toBeLessThan(evs.findIndex((e) => "shard" in e && e.shard !== "-"));
  });

  it("starts a merged shard only once every old shard reached its journal", async () => {
    const journal: ShardJournal = {
      workflow: "merge",
      keyspace: "ks",
      tables: null,
      sources: ["-80", "80-"],
      targets: [{ shard: "-", tablet: "ks/-", uid: "m", seq: 3 }],
    };
    const shards: Record<string, FakeTablet> = {
      "-80": { uid: "a", txns: [tx(1, 1, "a1")], journal },
      // The slow old shard still has changes to hand out when the fast one reaches its journal.
      "80-": { uid: "b", txns: [tx(1, 2, "b1"), tx(2, 2, "b2"), tx(3, 2, "b3")], journal, delay: 30 },
      "-": { uid: "m", txns: [tx(3, 0, "copied"), tx(4, 2, "m1")] },
    };
    const evs = await take(
      vstreamEvents(
        {
          keyspace: "ks",
          from: {
            keyspace: "ks",
            shards: [
              { shard: "-80", tablet: "ks/-80", uid: "a", seq: 0, copy: null },
              { shard: "80-", tablet: "ks/80-", uid: "b", seq: 0, copy: null },
            ],
          },
        },
        fake(shards, []),
      ),
      (s) => values(s).includes("-:m1"),
    );
    const order = values(evs);
    expect(order.indexOf("-:m1")).toBeGreaterThan(order.indexOf("80-:b3"));
    expect(evs.filter((e) => e.type === "JOURNAL")).toHaveLength(1);
    expect(evs.find((e) => e.type === "JOURNAL")).toMatchObject({ from: ["-80", "80-"], to: ["-"] });
  });

  it("a token of a tablet that was since remade is refused, not silently restarted", async () => {
    const shards = { "-": { uid: "new", txns: [tx(1, 1, "x")] } };
    const gen = vstreamEvents(
      { keyspace: "ks", from: { keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "old", seq: 0, copy: null }] } },
      fake(shards, []),
    );
    await expect(take(gen, (seen) => seen.some((e) => e.type !== "HEARTBEAT"))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("a shard read to its end that no longer serves, with no journal, ends the stream with VD2801 instead of missing changes", async () => {
    const shards = { "-": { uid: "u", txns: [tx(1, 1, "x")] } };
    const gen = vstreamEvents(
      { keyspace: "ks", heartbeatMs: 20, from: { keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "u", seq: 0, copy: null }] } },
      fake(shards, ["-80", "80-"]),
      // A clock 1000 times faster: the journal grace (JOURNAL_GRACE_MS) passes in milliseconds.
      () => Date.now() * 1000,
    );
    await expect(take(gen, () => false)).rejects.toMatchObject({ code: "UNSUPPORTED", id: "VD2801" });
  });

  it("a shard that stopped serving is waited for while its journal may still come (a switch writes it just after its flip)", async () => {
    const shards: Record<string, FakeTablet> = { "-": { uid: "u", txns: [tx(1, 1, "x")] }, "-80": { uid: "l", txns: [tx(5, 1, "l1")] } };
    const gen = vstreamEvents(
      { keyspace: "ks", heartbeatMs: 20, from: { keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "u", seq: 0, copy: null }] } },
      fake(shards, ["-80"]),
    );
    const first = await take(gen, (s) => s.filter((e) => e.type === "HEARTBEAT").length >= 3);
    expect(values(first)).toEqual(["-:x"]);
    const old = shards["-"];
    if (old) old.journal = { workflow: "w", keyspace: "ks", tables: null, sources: ["-"], targets: [{ shard: "-80", tablet: "ks/-80", uid: "l", seq: 4 }] };
    const after = await take(gen, (s) => values(s).includes("-80:l1"));
    expect(after.find((e) => e.type === "JOURNAL")).toMatchObject({ from: ["-"], to: ["-80"] });
  });

  it("follows a MoveTables' journal into the target keyspace for the moved tables and goes on with the others past it", async () => {
    const journal: ShardJournal = {
      workflow: "mv",
      keyspace: "dst",
      tables: ["t"],
      sources: ["-"],
      targets: [{ shard: "-80", tablet: "ks/d80", uid: "d", seq: 9 }],
    };
    const other = (seq: number, v: string): ShardTransaction => ({
      seq,
      ts: seq,
      changes: [{ table: "o", columns: ["id", "v"], pk: ["id"], before: null, after: [1, v] }],
    });
    const shards: Record<string, FakeTablet> = {
      "-": { uid: "u", txns: [tx(1, 1, "x"), other(5, "after")], journal, journalAt: 3 },
      d80: { uid: "d", txns: [tx(9, 1, "copied"), tx(10, 1, "moved")] },
    };
    const gen = vstreamEvents(
      { keyspace: "ks", from: { keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "u", seq: 0, copy: null }] } },
      fake(shards, ["-"]),
    );
    const evs = await take(gen, (s) => values(s).includes("-80:moved") && values(s).includes("-:after") && s.at(-1)?.type === "COMMIT");
    const j = evs.find((e) => e.type === "JOURNAL");
    expect(j).toMatchObject({ from: ["-"], to: ["dst/-80"] });
    expect(evs.find((e) => e.type === "ROW" && String(e.after?.["v"]) === "moved")).toMatchObject({ keyspace: "dst", shard: "-80" });
    expect(evs.findIndex((e) => e.type === "JOURNAL")).toBeLessThan(evs.findIndex((e) => e.type === "ROW" && String(e.after?.["v"]) === "moved"));
    // The token holds both: the source past the journal without t, the target reading t only.
    const last = evs.filter((e) => e.type === "COMMIT").at(-1);
    const shardsOf = last?.type === "COMMIT" ? decodeToken(last.token).shards : [];
    expect(shardsOf.find((p) => p.shard === "-")).toMatchObject({ seq: 5, skip: ["t"] });
    expect(shardsOf.find((p) => p.shard === "-80")).toMatchObject({ keyspace: "dst", only: ["t"], seq: 10 });
  });

  it("a split while the stream still copies (from start) carries the copy cursor to the new shards", async () => {
    const journal: ShardJournal = {
      workflow: "split",
      keyspace: "ks",
      tables: null,
      sources: ["-"],
      targets: [{ shard: "-80", tablet: "ks/-80", uid: "l", seq: 3 }],
    };
    const shards: Record<string, FakeTablet> = { "-": { uid: "s", txns: [], journal }, "-80": { uid: "l", txns: [] } };
    const copy = { table: "t", after: [5] };
    const gen = vstreamEvents({ keyspace: "ks", from: { keyspace: "ks", shards: [{ shard: "-", tablet: "ks/-", uid: "s", seq: 0, copy }] } }, fake(shards, []));
    const evs = await take(gen, (s) => s.some((e) => e.type === "JOURNAL"));
    const j = evs.find((e) => e.type === "JOURNAL");
    expect(j?.type === "JOURNAL" ? decodeToken(j.token).shards : null).toEqual([{ shard: "-80", tablet: "ks/-80", uid: "l", seq: 3, copy }]);
  });

  it("a merge of shards copied to different points restarts the merged shard's copy at the first table still copying", async () => {
    const journal: ShardJournal = {
      workflow: "m",
      keyspace: "ks",
      tables: null,
      sources: ["-80", "80-"],
      targets: [{ shard: "-", tablet: "ks/-", uid: "m", seq: 2 }],
    };
    const shards: Record<string, FakeTablet> = { "-80": { uid: "a", txns: [], journal }, "80-": { uid: "b", txns: [], journal }, "-": { uid: "m", txns: [] } };
    const gen = vstreamEvents(
      {
        keyspace: "ks",
        from: {
          keyspace: "ks",
          shards: [
            { shard: "-80", tablet: "ks/-80", uid: "a", seq: 0, copy: { table: "users", after: [9] } },
            { shard: "80-", tablet: "ks/80-", uid: "b", seq: 0, copy: { table: "accounts", after: [3] } },
          ],
        },
      },
      fake(shards, []),
    );
    const evs = await take(gen, (s) => s.some((e) => e.type === "JOURNAL"));
    const j = evs.find((e) => e.type === "JOURNAL");
    expect(j?.type === "JOURNAL" ? decodeToken(j.token).shards : null).toEqual([
      { shard: "-", tablet: "ks/-", uid: "m", seq: 2, copy: { table: "accounts", after: null } },
    ]);
  });

  it("a token naming a tablet the keyspace does not have is refused before anything is read", async () => {
    const t = fake({ "-": { uid: "u", txns: [tx(1, 1, "x")] } }, ["-"]);
    const gen = vstreamEvents({ keyspace: "ks", from: { keyspace: "ks", shards: [{ shard: "-", tablet: "other/secret", uid: "u", seq: 0, copy: null }] } }, t);
    await expect(take(gen, () => false)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(t.reads).toEqual([]);
  });
});
