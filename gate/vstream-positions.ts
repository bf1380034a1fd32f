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
// the former go (or, reading another MoveTables' tables too, go on without these) and the latter
// read the tables again past the marker. A second MoveTables into shards the stream reads already
// widens those positions: each stops at the arrival marker its tablet wrote before taking the new
// tables' writes, the source shards at the journal, and once both stand there it reads them too.

import { VtError } from "../contract/errors.ts";
import { encodeToken, type ShardJournal, type ShardPosition, type ShardReadRequest, type VEvent } from "../contract/vstream.ts";
import { unsupportedError } from "../topology/refusals.ts";

interface Pending {
  readonly pos: ShardPosition;
  /** Keys of the old shards whose journals it waits for. */
  readonly needs: ReadonlySet<string>;
  /** A MoveTables': the tables that moved (the old positions stay, past the journal, without them); null: a Reshard's. */
  readonly moved: readonly string[] | null;
  /** The workflow whose journal named it. */
  readonly workflow: string;
}

/** Why a position stands still: a journal moving writes away, a reverse's journal, a rejoin or an arrival marker. */
interface Held {
  readonly seq: number;
  readonly why: "move" | "reverse" | "rejoin" | "arrival";
  readonly workflow: string;
}

interface Widening {
  /** The MoveTables whose arrival marker the position must stand at. */
  readonly workflow: string;
  /** The tables the position reads too once widened (from its arrival marker on). */
  readonly tables: readonly string[];
  /** Keys of the old shards whose journals it waits for. */
  readonly needs: ReadonlySet<string>;
}

export class StreamPositions {
  readonly #keyspace: string;
  readonly #tables: readonly string[] | null;
  readonly #at = new Map<string, ShardPosition>();
  /** Positions standing at a journal or marker (key → its commit seq, what it is and whose), not read until it is followed. */
  readonly #journaled = new Map<string, Held>();
  readonly #pending = new Map<string, Pending>();
  /** Positions already read that a MoveTables' journal brings more tables to: they read them too once at their arrival markers. */
  readonly #widening = new Map<string, Widening>();

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
      this.#hold(key, journalSeq, "rejoin", j.workflow);
      return this.#rejoined(j.tables ?? []);
    }
    if (j.arrival === true) return this.#arrival(key, j, journalSeq);
    const ks = p.keyspace ?? this.#keyspace;
    let carry: Pick<ShardPosition, "keyspace" | "only" | "skip">;
    let moved: string[] | null = null;
    const needs = new Set(j.sources.map((s) => `${ks}/${s}`));
    this.#checkLayout(key, j);
    if (j.tables === null) {
      carry = { ...(p.keyspace !== undefined ? { keyspace: p.keyspace } : {}), ...(p.only ? { only: p.only } : {}), ...(p.skip ? { skip: p.skip } : {}) };
    } else {
      moved = j.tables.map((t) => t.toLowerCase()).filter((t) => readsTable(p, t, this.#tables));
      // Into shards the stream reads already: a MoveTables reversed while followed comes back
      // through the rejoin markers of those shards; a second MoveTables into shards read for a
      // first one's tables widens those positions (#canWiden); anything else is not followed.
      if (j.keyspace === ks || j.targets.some((t) => this.#at.has(`${j.keyspace}/${t.shard}`))) {
        if (this.#isReverse(key, j, moved)) {
          this.#hold(key, journalSeq, "reverse", j.workflow);
          return this.#rejoined(moved);
        }
        if (j.keyspace === ks || !this.#canWiden(key, j, moved)) throw this.#movedTablesError(key, j, moved);
        const tables = moved;
        for (const t of j.targets) {
          const tk = `${j.keyspace}/${t.shard}`;
          const there = this.#at.get(tk);
          // Reading them there already: widened before this stream's token was taken.
          if (there === undefined || tables.every((m) => there.only?.includes(m)) || this.#widening.has(tk)) continue;
          this.#widening.set(tk, { workflow: j.workflow, tables, needs });
        }
      }
      carry = { ...(j.keyspace !== this.#keyspace ? { keyspace: j.keyspace } : {}), only: moved };
      // A position reading only tables that moved moves entirely, as a Reshard's.
      if (p.only?.every((t) => moved?.includes(t))) moved = null;
    }
    this.#hold(key, journalSeq, "move", j.workflow);
    for (const t of j.targets) {
      const tk = `${j.keyspace}/${t.shard}`;
      if (!this.#pending.has(tk) && !this.#at.has(tk)) {
        this.#pending.set(tk, { pos: { shard: t.shard, tablet: t.tablet, uid: t.uid, seq: t.seq, copy: null, ...carry }, needs, moved, workflow: j.workflow });
      }
    }
    const event = this.#start();
    // Nothing waits for this shard (everything it fed was started before this stream's token): it goes on.
    if (this.#journaled.get(key)?.why === "move" && !this.#needed(key)) this.#release(key, moved);
    return event;
  }

  /**
   * Journals this stream cannot follow without losing or stalling something, refused (VD2802)
   * rather than guessed at: a shard its journal names that the stream reads already, or waits to
   * start, for another workflow's journal (a Reshard's new shard the stream took up for a
   * MoveTables, a MoveTables' target a Reshard or another MoveTables named first), and a
   * MoveTables into a keyspace the stream reads in another shard layout (it lags behind a Reshard
   * of that keyspace).
   */
  #checkLayout(key: string, j: ShardJournal): void {
    const names = new Set(j.targets.map((t) => `${j.keyspace}/${t.shard}`));
    const clash = (why: string) => {
      throw unsupportedError(
        "VD2802",
        `vstream: the journal of ${j.workflow} on shard ${this.label(key)} names shards of keyspace ${j.keyspace} that this stream ${why}; start again from a new token (or "now") for the tables that moved`,
        { shard: this.label(key), keyspace: j.keyspace, resume: this.token() },
      );
    };
    for (const tk of names) {
      const waiting = this.#pending.get(tk);
      if (waiting !== undefined && waiting.workflow !== j.workflow) clash("waits to start for another journal");
      if (j.tables === null && this.#at.has(tk)) clash("reads already");
    }
    if (j.tables !== null && j.keyspace !== (this.#at.get(key)?.keyspace ?? this.#keyspace)) {
      // (Shards it waits to start for a Reshard of that keyspace it already follows do not count.)
      const other = [...this.#at.keys()].some((k) => k.startsWith(`${j.keyspace}/`) && !names.has(k));
      if (other) clash("reads in another shard layout (a Reshard of it it has not followed yet)");
    }
  }

  #hold(key: string, seq: number, why: Held["why"], workflow: string): void {
    this.#journaled.set(key, { seq, why, workflow });
  }

  /** Whether a new shard or a widened position still waits for old shard `key`. */
  #needed(key: string): boolean {
    return [...this.#pending.values(), ...this.#widening.values()].some((w) => w.needs.has(key));
  }

  /** Old shard `key`, standing at a MoveTables' (or a Reshard's) journal, goes on past it without `moved` (null: it goes). */
  #release(key: string, moved: readonly string[] | null): void {
    const old = this.#at.get(key);
    const end = this.#journaled.get(key)?.seq;
    this.#journaled.delete(key);
    if (!old) return;
    // A position reading only tables that moved moves entirely.
    if (moved === null || end === undefined || old.only?.every((t) => moved.includes(t))) this.#at.delete(key);
    else this.#at.set(key, { ...old, seq: end, skip: [...new Set([...(old.skip ?? []), ...moved])].sort() });
  }

  /**
   * Starts what is ready: each new shard whose old shards all stand at their journals, and each
   * position a journal widens once it also stands at its arrival marker. Answers the JOURNAL
   * event (null: nothing started).
   */
  #start(): VEvent | null {
    const done = (needs: ReadonlySet<string>) => [...needs].every((s) => this.#journaled.get(s)?.why === "move" || !this.#at.has(s));
    const arrivedFor = (tk: string) => {
      const h = this.#journaled.get(tk);
      return h?.why === "arrival" ? h.workflow : undefined;
    };
    // A widening whose position went meanwhile (moved by a Reshard's journal) is not waited for.
    for (const [tk] of this.#widening) if (!this.#at.has(tk)) this.#widening.delete(tk);
    const ready = [...this.#pending.entries()].filter(([, w]) => done(w.needs));
    const widened = [...this.#widening.entries()].filter(([tk, w]) => done(w.needs) && arrivedFor(tk) === w.workflow);
    if (ready.length === 0 && widened.length === 0) return null;
    const from = new Map<string, readonly string[] | null>();
    for (const [tk, w] of ready) {
      this.#pending.delete(tk);
      this.#at.set(tk, { ...w.pos, copy: carriedCopy([...w.needs].filter((s) => this.#at.has(s)).map((s) => this.#at.get(s)?.copy ?? null)) });
      for (const s of w.needs) from.set(s, w.moved);
    }
    for (const [tk, w] of widened) {
      const p = this.#at.get(tk);
      const marker = this.#journaled.get(tk)?.seq;
      this.#widening.delete(tk);
      this.#journaled.delete(tk);
      if (p) this.#at.set(tk, { ...p, seq: marker ?? p.seq, only: [...new Set([...(p.only ?? []), ...w.tables])].sort() });
      for (const s of w.needs) if (!from.has(s)) from.set(s, w.tables);
    }
    // An old shard goes (or, after a MoveTables, goes on past the journal without the moved tables) once no new shard waits for it.
    for (const [s, m] of from) if (!this.#needed(s)) this.#release(s, m);
    return {
      type: "JOURNAL",
      from: [...from.keys()].map((k) => this.label(k)).sort(),
      to: [...ready, ...widened].map(([tk]) => this.label(tk)).sort(),
      token: this.token(),
    };
  }

  /**
   * Position `key` stands at an arrival marker: tables a MoveTables brings to its shard from
   * keyspace `j.sourceKeyspace`. When the stream reads any of them there (its shards then meet the switch's
   * journal), it waits here for it (#start then widens it); otherwise it goes on past the marker.
   */
  #arrival(key: string, j: ShardJournal, journalSeq: number): VEvent | null {
    const p = this.#at.get(key);
    const wanted = (j.tables ?? []).map((t) => t.toLowerCase()).filter((t) => this.#tables === null || this.#tables.includes(t));
    const inSource = [...this.#at].some(
      ([k, o]) =>
        k !== key &&
        j.sourceKeyspace !== undefined &&
        (o.keyspace ?? this.#keyspace) === j.sourceKeyspace &&
        wanted.some((t) => readsTable(o, t, this.#tables)),
    );
    if (!p || (!inSource && this.#widening.get(key)?.workflow !== j.workflow)) {
      if (p) this.#at.set(key, { ...p, seq: journalSeq });
      return null;
    }
    this.#hold(key, journalSeq, "arrival", j.workflow);
    return this.#start();
  }

  /**
   * Whether a MoveTables' journal into shards the stream reads already can be followed by reading
   * the tables there too: the switch wrote arrival markers, nothing is being copied, and every such
   * position reads only other tables of that keyspace, or these already (widened before the
   * stream's token was taken), and stands at no other marker or journal.
   */
  #canWiden(key: string, j: ShardJournal, moved: readonly string[]): boolean {
    if (j.arrivals !== true || moved.length === 0 || this.#at.get(key)?.copy !== null) return false;
    return j.targets.every((t) => {
      const tk = `${j.keyspace}/${t.shard}`;
      const p = this.#at.get(tk);
      if (p === undefined) return true;
      if (moved.every((m) => p.only?.includes(m))) return true;
      if (p.only === undefined || p.copy !== null || moved.some((m) => p.only?.includes(m))) return false;
      const held = this.#journaled.get(tk);
      if (held !== undefined) return held.why === "arrival" && held.workflow === j.workflow;
      // Not at its marker yet: it must still be before it (one that went past it, when the stream
      // did not read these tables in their keyspace, cannot read their changes since).
      return t.arrival !== undefined && p.seq < t.arrival;
    });
  }

  /**
   * Whether journal `j` of position `key` (reading `moved`, in another keyspace, maybe with others) gives those
   * tables back to shards the stream reads without them: the reverse of the MoveTables it followed.
   */
  #isReverse(key: string, j: ShardJournal, moved: readonly string[]): boolean {
    // A forward MoveTables (one moving the tables back by a new workflow) writes no rejoin markers.
    if (j.forward === true) return false;
    const p = this.#at.get(key);
    if (!p?.only || moved.length === 0 || !moved.every((t) => p.only?.includes(t))) return false;
    return j.targets.every((t) => {
      const bk = `${j.keyspace}/${t.shard}`;
      const back = this.#at.get(bk);
      if (back === undefined) return false;
      if (moved.every((m) => (back.skip ?? []).includes(m))) return true;
      // Still standing at this MoveTables' own journal (some of its targets are not widened yet),
      // or still before it (resumed from a token taken then): it skips the tables once past it,
      // and then meets the reverse's rejoin marker.
      const held = this.#journaled.get(bk);
      if (held === undefined) return moved.every((m) => readsTable(back, m, this.#tables));
      return held.why === "move" && held.workflow === j.workflow && this.#needed(bk);
    });
  }

  /**
   * Tables coming back to the shards the stream reads without them (a reversed MoveTables), once
   * both sides stand still: every position reading them elsewhere at its reverse journal, every
   * position skipping them at its rejoin marker. Then the former go (or, reading another
   * MoveTables' tables too, go on without these), the latter read the tables again past the
   * marker (nothing of theirs is logged there before it), and the JOURNAL event says so; until
   * then null (the sides that arrived wait, unread).
   */
  #rejoined(tables: readonly string[]): VEvent | null {
    const t = tables.map((x) => x.toLowerCase());
    const at = (k: string, why: Held["why"]) => this.#journaled.get(k)?.why === why;
    const away = [...this.#at].filter(([, p]) => p.only?.some((x) => t.includes(x)));
    let back = [...this.#at].filter(([, p]) => (p.skip ?? []).some((x) => t.includes(x)));
    // Read nowhere else (any more): each shard back at its marker simply reads them again.
    if (away.length === 0) back = back.filter(([k]) => at(k, "rejoin"));
    if (back.length === 0) return null;
    if (!away.every(([k]) => at(k, "reverse")) || !back.every(([k]) => at(k, "rejoin"))) return null;
    // A shard still before the forward journal of these tables (it reads them yet) comes back too, later.
    if ([...this.#at].some(([, p]) => p.only === undefined && t.some((x) => readsTable(p, x, this.#tables)))) return null;
    for (const [k, p] of away) {
      const rest = (p.only ?? []).filter((x) => !t.includes(x));
      const end = this.#journaled.get(k)?.seq;
      if (rest.length > 0 && end !== undefined) this.#at.set(k, { ...p, seq: end, only: rest });
      else this.#at.delete(k);
      this.#journaled.delete(k);
    }
    for (const [k, p] of back) {
      const skip = (p.skip ?? []).filter((x) => !t.includes(x));
      const { skip: _old, ...rest } = p;
      this.#at.set(k, { ...rest, seq: this.#journaled.get(k)?.seq ?? p.seq, ...(skip.length > 0 ? { skip } : {}) });
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

/** Whether position `p` reads table `t` (lower-cased) of a stream of `tables`. */
function readsTable(p: ShardPosition, t: string, tables: readonly string[] | null): boolean {
  if ((p.skip ?? []).includes(t)) return false;
  return p.only ? p.only.includes(t) : tables === null || tables.includes(t);
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
