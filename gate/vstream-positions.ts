// Where a VStream stands on every shard it reads, and how journals move it (gate/vstream.ts reads
// the shards). A position is keyed `<keyspace>/<shard>`: after a MoveTables the stream may read
// shards of two keyspaces, a position there reading only the tables that moved (`only`) and the
// old one no longer reading them (`skip`).
//
// A journal moves a position: a Reshard's to the new shards (the old position goes), a MoveTables'
// to the target keyspace's shards for the moved tables (the old position stays, past the journal,
// for the others). A new shard starts only once every old shard it takes writes from has reached
// its journal, so no change of a row can overtake an older one of the same row; an old shard
// waiting there is not read meanwhile. A reversed MoveTables brings the tables back: the positions
// reading them in the target keyspace stop at its journals, the source shards at the rejoin
// markers their tablets wrote before taking those tables' writes again, and once all stand there
// the former go and the latter read the tables again past the marker.

import { VtError } from "../contract/errors.ts";
import { encodeToken, type ShardJournal, type ShardPosition, type ShardReadRequest, type VEvent } from "../contract/vstream.ts";
import { unsupportedError } from "../topology/refusals.ts";

interface Pending {
  readonly pos: ShardPosition;
  /** Keys of the old shards whose journals it waits for. */
  readonly needs: ReadonlySet<string>;
  /** A MoveTables': the tables that moved (the old positions stay, past the journal, without them); null: a Reshard's. */
  readonly moved: readonly string[] | null;
}

export class StreamPositions {
  readonly #keyspace: string;
  readonly #tables: readonly string[] | null;
  readonly #at = new Map<string, ShardPosition>();
  /** Old shards standing at a journal (key → the journal's commit seq), not read until it is followed. */
  readonly #journaled = new Map<string, number>();
  readonly #pending = new Map<string, Pending>();

  constructor(keyspace: string, tables: readonly string[] | null, start: readonly ShardPosition[]) {
    this.#keyspace = keyspace;
    this.#tables = tables;
    for (const p of start) this.#at.set(this.key(p), p);
  }

  key(p: Pick<ShardPosition, "shard" | "keyspace">): string {
    return `${p.keyspace ?? this.#keyspace}/${p.shard}`;
  }

  /** How events name a shard: its name in the stream's keyspace, `<keyspace>/<shard>` in another. */
  label(key: string): string {
    return key.startsWith(`${this.#keyspace}/`) ? key.slice(this.#keyspace.length + 1) : key;
  }

  get(key: string): ShardPosition | undefined {
    return this.#at.get(key);
  }

  /** Moves a position on (seq, copy cursor). */
  advance(key: string, to: Partial<Pick<ShardPosition, "seq" | "copy">>): void {
    const p = this.#at.get(key);
    if (p) this.#at.set(key, { ...p, ...to });
  }

  /** The positions to read now: every one not standing at a journal. */
  readable(): [string, ShardPosition][] {
    return [...this.#at].filter(([k]) => !this.#journaled.has(k));
  }

  isJournaled(key: string): boolean {
    return this.#journaled.has(key);
  }

  request(p: ShardPosition, waitMs: number): ShardReadRequest {
    return { tables: p.only ?? this.#tables, uid: p.uid, seq: p.seq, copy: p.copy, waitMs, ...(p.skip ? { skip: p.skip } : {}) };
  }

  token(): string {
    const shards = [...this.#at.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([, p]) => p);
    return encodeToken({ keyspace: this.#keyspace, shards });
  }

  /**
   * The position `key` read up to journal `j` (whose commit is at `journalSeq`): answers the
   * JOURNAL event once new shards start, or null while they wait for other old shards.
   */
  follow(key: string, j: ShardJournal, journalSeq: number): VEvent | null {
    const p = this.#at.get(key);
    if (!p) throw new VtError("INTERNAL", `vstream: a journal of shard ${key}, which the stream does not read`);
    if (j.rejoin === true) {
      this.#journaled.set(key, journalSeq);
      return this.#rejoined(j.tables ?? []);
    }
    const ks = p.keyspace ?? this.#keyspace;
    let carry: Pick<ShardPosition, "keyspace" | "only" | "skip">;
    let moved: string[] | null = null;
    if (j.tables === null) {
      carry = { ...(p.keyspace !== undefined ? { keyspace: p.keyspace } : {}), ...(p.only ? { only: p.only } : {}), ...(p.skip ? { skip: p.skip } : {}) };
    } else {
      const reads = (t: string) => !(p.skip ?? []).includes(t) && (p.only ? p.only.includes(t) : this.#tables === null || this.#tables.includes(t));
      moved = j.tables.map((t) => t.toLowerCase()).filter(reads);
      // Into shards the stream reads already: a MoveTables reversed while followed comes back
      // through the rejoin markers of those shards; anything else (two at once) is not followed.
      if (j.keyspace === ks || j.targets.some((t) => this.#at.has(`${j.keyspace}/${t.shard}`))) {
        if (this.#isReverse(key, j, moved)) {
          this.#journaled.set(key, journalSeq);
          return this.#rejoined(moved);
        }
        throw this.#movedTablesError(key, j, moved);
      }
      carry = { ...(j.keyspace !== this.#keyspace ? { keyspace: j.keyspace } : {}), only: moved };
      // A position reading only tables that moved moves entirely, as a Reshard's.
      if (p.only?.every((t) => moved?.includes(t))) moved = null;
    }
    this.#journaled.set(key, journalSeq);
    const needs = new Set(j.sources.map((s) => `${ks}/${s}`));
    for (const t of j.targets) {
      const tk = `${j.keyspace}/${t.shard}`;
      if (!this.#pending.has(tk) && !this.#at.has(tk)) {
        this.#pending.set(tk, { pos: { shard: t.shard, tablet: t.tablet, uid: t.uid, seq: t.seq, copy: null, ...carry }, needs, moved });
      }
    }
    const ready = [...this.#pending.entries()].filter(([, w]) => [...w.needs].every((s) => this.#journaled.has(s) || !this.#at.has(s)));
    if (ready.length === 0) return null;
    const from = new Map<string, readonly string[] | null>();
    for (const [tk, w] of ready) {
      this.#pending.delete(tk);
      this.#at.set(tk, { ...w.pos, copy: carriedCopy([...w.needs].filter((s) => this.#at.has(s)).map((s) => this.#at.get(s)?.copy ?? null)) });
      for (const s of w.needs) from.set(s, w.moved);
    }
    // An old shard goes (or, after a MoveTables, goes on past the journal without the moved tables) once no new shard waits for it.
    for (const [s, m] of from) {
      if ([...this.#pending.values()].some((w) => w.needs.has(s))) continue;
      const old = this.#at.get(s);
      const end = this.#journaled.get(s);
      this.#journaled.delete(s);
      if (!old) continue;
      if (m === null || end === undefined) this.#at.delete(s);
      else this.#at.set(s, { ...old, seq: end, skip: [...new Set([...(old.skip ?? []), ...m])].sort() });
    }
    return {
      type: "JOURNAL",
      from: [...from.keys()].map((k) => this.label(k)).sort(),
      to: ready.map(([tk]) => this.label(tk)).sort(),
      token: this.token(),
    };
  }

  /**
   * Whether journal `j` of position `key` (reading only `moved`, in another keyspace) gives those
   * tables back to shards the stream reads without them: the reverse of the MoveTables it followed.
   */
  #isReverse(key: string, j: ShardJournal, moved: readonly string[]): boolean {
    // A forward MoveTables (one moving the tables back by a new workflow) writes no rejoin markers.
    if (j.forward === true) return false;
    const p = this.#at.get(key);
    if (!p?.only || moved.length === 0 || !p.only.every((t) => moved.includes(t))) return false;
    return j.targets.every((t) => {
      const back = this.#at.get(`${j.keyspace}/${t.shard}`);
      return back !== undefined && moved.every((m) => (back.skip ?? []).includes(m));
    });
  }

  /**
   * Tables coming back to the shards the stream reads without them (a reversed MoveTables), once
   * both sides stand still: every position reading them elsewhere at its reverse journal, every
   * position skipping them at its rejoin marker. Then the former go, the latter read the tables
   * again past the marker (nothing of theirs is logged there before it), and the JOURNAL event
   * says so; until then null (the sides that arrived wait, unread).
   */
  #rejoined(tables: readonly string[]): VEvent | null {
    const t = tables.map((x) => x.toLowerCase());
    const away = [...this.#at].filter(([, p]) => p.only?.some((x) => t.includes(x)));
    let back = [...this.#at].filter(([, p]) => (p.skip ?? []).some((x) => t.includes(x)));
    // Read nowhere else (any more): each shard back at its marker simply reads them again.
    if (away.length === 0) back = back.filter(([k]) => this.#journaled.has(k));
    if (back.length === 0) return null;
    if (![...away, ...back].every(([k]) => this.#journaled.has(k))) return null;
    for (const [k] of away) {
      this.#at.delete(k);
      this.#journaled.delete(k);
    }
    for (const [k, p] of back) {
      const skip = (p.skip ?? []).filter((x) => !t.includes(x));
      const { skip: _old, ...rest } = p;
      this.#at.set(k, { ...rest, seq: this.#journaled.get(k) ?? p.seq, ...(skip.length > 0 ? { skip } : {}) });
      this.#journaled.delete(k);
    }
    if (away.length === 0) return null;
    return {
      type: "JOURNAL",
      from: away.map(([k]) => this.label(k)).sort(),
      to: back.map(([k]) => this.label(k)).sort(),
      token: this.token(),
    };
  }

  /**
   * A MoveTables' journal the stream cannot follow: it ends with VD2802, carrying the token of the
   * positions the moved tables start from in the keyspace they went to and this stream's own
   * token, taken just before the journal, for the tables that stayed.
   */
  #movedTablesError(key: string, j: ShardJournal, moved: readonly string[]): VtError {
    const follow = encodeToken({
      keyspace: j.keyspace,
      shards: j.targets.map((t) => ({ shard: t.shard, tablet: t.tablet, uid: t.uid, seq: t.seq, copy: null })),
    });
    return unsupportedError(
      "VD2802",
      `vstream: MoveTables ${j.workflow} moved table(s) ${moved.join(", ")} to keyspace ${j.keyspace} (shard ${this.label(key)} journaled it), whose shards this stream already reads; go on with those tables from the token in "follow" (keyspace ${j.keyspace}), and with the others from the token in "resume"`,
      { shard: this.label(key), keyspace: j.keyspace, tables: moved, follow, resume: this.token() },
    );
  }
}

/**
 * The copy cursor the new shards go on with (a stream from "start" still copying): a split's (one
 * old shard) as it stood; a merge's, when its old shards stood at different points, the start of
 * the first table any of them was still copying (tables are copied in name order), so nothing is
 * skipped, and rows one old shard had copied already may be copied again (a copy row is the row
 * as it is then: applying by primary key gives the same rows).
 */
function carriedCopy(cursors: readonly ShardPosition["copy"][]): ShardPosition["copy"] {
  const first = cursors[0] ?? null;
  if (cursors.every((c) => JSON.stringify(c) === JSON.stringify(first))) return first;
  const copying = cursors.filter((c): c is NonNullable<typeof c> => c !== null).map((c) => c.table);
  const table = copying.reduce((a, b) => (b.toLowerCase() < a.toLowerCase() ? b : a));
  return { table, after: null };
}
