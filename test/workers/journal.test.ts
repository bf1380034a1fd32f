// A switch's journal in a tablet's binlog (Tablet.appendJournal, read by VStream). The invariant:
// one journal per id, however often the switch's step runs; a VStream read reaching a journal of
// the tables it reads hands out the transactions before it and nothing after (a reversed switch
// makes the shard take writes again: those are met through the journal back), with its position
// just before the journal, so a reader resuming there meets it again; a journal of other tables
// (a MoveTables of tables the reader does not read) is passed over; the resharding streamer
// passes over every journal; the plain binlog read shows it.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contract/envelope.ts";
import type { BinlogChunk, BoundQuery, QueryResult, Target } from "../../contract/tablet-rpc.ts";
import type { StreamUnit } from "../../contract/stream-rpc.ts";
import type { ShardJournal, ShardRead, ShardReadRequest } from "../../contract/vstream.ts";

const asEnv = <T>(x: unknown): Envelope<T> => x as Envelope<T>;
const ok = <T>(x: unknown): T => {
  const e = asEnv<T>(x);
  if (!e.ok) throw new Error(`${e.error.code}: ${e.error.message}`);
  return e.value;
};

let n = 0;
async function tablet() {
  const shard = `j${n++}`;
  const stub = env.TABLET.get(env.TABLET.idFromName(`jt/${shard}`));
  ok(
    await stub.sync({ keyspace: "jt", shard, keyRange: "-", serving: true, version: 1 }, [
      { index: 1, sql: "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)" },
      { index: 2, sql: "CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)" },
    ]),
  );
  const target: Target = { keyspace: "jt", shard, version: 1 };
  const exec = async (sql: string) => ok<QueryResult[]>(await stub.execute(target, [{ sql, params: [], kind: "write" } satisfies BoundQuery]));
  const uid = ok<{ uid: string }>(await stub.status()).uid;
  const read = async (seq: number, tables: string[] | null = null) =>
    ok<ShardRead>(await stub.vstreamRead({ tables, uid, seq, copy: null, waitMs: 0 } satisfies ShardReadRequest));
  // Past the schema's DDL (each DDL is a read of its own).
  const base = (await read(-1)).seq;
  return { stub, exec, read, uid, base };
}

const journal = (tables: string[] | null): ShardJournal => ({
  workflow: "w",
  keyspace: tables === null ? "jt" : "other",
  tables,
  sources: ["-"],
  targets: [{ shard: "-80", tablet: "jt/-80", uid: "abc", seq: 7 }],
});

const values = (r: ShardRead) => r.transactions.flatMap((t) => t.changes.map((c) => ("ddl" in c ? c.ddl : String(c.after?.[1]))));

describe("journals", () => {
  it("are written once per id, and a read stops at one, before it, handing out nothing after", async () => {
    const t = await tablet();
    await t.exec("INSERT INTO a (id, v) VALUES (1, 'one')");
    const first = ok<{ seq: number }>(await t.stub.appendJournal("w/forward/x", journal(null)));
    const again = ok<{ seq: number }>(await t.stub.appendJournal("w/forward/x", journal(null)));
    expect(again.seq).toBe(first.seq);
    // After a reverse the shard takes writes again.
    await t.exec("INSERT INTO a (id, v) VALUES (2, 'two')");
    const r = await t.read(t.base);
    expect(values(r)).toEqual(["one"]);
    expect(r.journal).toEqual(journal(null));
    expect(r.seq).toBeLessThan(first.seq);
    // Resumed at that position, the reader meets the journal again, and nothing else.
    const r2 = await t.read(r.seq);
    expect(values(r2)).toEqual([]);
    expect(r2.journal?.workflow).toBe("w");
    expect(r2.seq).toBe(r.seq);
    // Past it (a reader that came back through the journal of the reverse), the later writes.
    const r3 = await t.read(first.seq);
    expect(values(r3)).toEqual(["two"]);
    expect(r3.journal).toBeUndefined();
    // The plain binlog read shows one journal, as its own transaction.
    const chunk = ok<BinlogChunk>(await t.stub.readBinlog(null, 100));
    const kinds = chunk.events.map((e) => e.kind);
    expect(kinds.filter((k) => k === "journal")).toHaveLength(1);
    expect(kinds.slice(kinds.indexOf("journal"), kinds.indexOf("journal") + 2)).toEqual(["journal", "commit"]);
    expect(JSON.parse(chunk.events.find((e) => e.kind === "journal")?.sql ?? "null")).toEqual(journal(null));
    // The resharding streamer passes over it: the later write comes, nothing else.
    const unit = ok<StreamUnit>(await t.stub.streamUnit({ keyRange: "-", tables: [{ table: "a", kind: "reference" }] }, { seq: t.base, copy: null }));
    expect(unit.items.map((i) => ("ddl" in i ? i.ddl : String(i.after?.[1])))).toEqual(["one", "two"]);
  });

  it("a journal of tables the reader does not read is passed over; one of a table it reads stops it", async () => {
    const t = await tablet();
    await t.exec("INSERT INTO a (id, v) VALUES (1, 'a1')");
    await t.exec("INSERT INTO b (id, v) VALUES (1, 'b1')");
    ok(await t.stub.appendJournal("mv/forward/x", journal(["B"])));
    await t.exec("INSERT INTO a (id, v) VALUES (2, 'a2')");
    const onlyA = await t.read(t.base, ["a"]);
    expect(values(onlyA)).toEqual(["a1", "a2"]);
    expect(onlyA.journal).toBeUndefined();
    const both = await t.read(t.base, null);
    expect(values(both)).toEqual(["a1", "b1"]);
    expect(both.journal?.tables).toEqual(["B"]);
    const onlyB = await t.read(t.base, ["b"]);
    expect(values(onlyB)).toEqual(["b1"]);
    expect(onlyB.journal?.keyspace).toBe("other");
  });

  it("needs an id", async () => {
    const t = await tablet();
    const r = asEnv(await t.stub.appendJournal("", journal(null)));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe("INVALID_ARGUMENT");
  });
});
