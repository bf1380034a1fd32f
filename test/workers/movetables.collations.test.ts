// Differential: PRIMARY KEY collations against the copy. The invariant: a table is refused
// (UNSUPPORTED VD2707, naming it and its key column) exactly when SQLite itself shows two of its
// rows whose keys are distinct yet equal as the key column compares them (the oracle: a self-join
// on the column); every table not refused arrives on the target with exactly the source's rows,
// none skipped or repeated. For one refused table the raw stream shows the skip the refusal
// prevents.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { unwrap } from "../../contract/envelope.ts";
import type { StreamPos } from "../../contract/stream-rpc.ts";
import { api, sql } from "./helpers.ts";
import { caughtUp, moveWorkflow, tabletOf, topology } from "./movetables-harness.ts";

/** [table, CREATE TABLE body]; the key column is `k` (with `b` in the two-column key). */
const SCHEMAS: [string, string][] = [
  ["plain", "k TEXT PRIMARY KEY, v TEXT"],
  ["nocase", "k TEXT COLLATE NOCASE PRIMARY KEY, v TEXT"],
  ["rtrim", "k TEXT COLLATE RTRIM PRIMARY KEY, v TEXT"],
  ["colafter", "k TEXT PRIMARY KEY COLLATE NOCASE, v TEXT"],
  ["binary_col_nocase_key", "k TEXT, v TEXT, PRIMARY KEY (k COLLATE NOCASE)"],
  ["nocase_col_binary_key", "k TEXT COLLATE NOCASE, v TEXT, PRIMARY KEY (k COLLATE BINARY)"],
  ["nocase_col_rtrim_key", "k TEXT COLLATE NOCASE, v TEXT, PRIMARY KEY (k COLLATE RTRIM)"],
  ["spelled", "k TEXT COLLATE nocase, v TEXT, PRIMARY KEY (k COLLATE NoCase)"],
  ["last_wins", "k TEXT COLLATE NOCASE COLLATE BINARY PRIMARY KEY, v TEXT"],
  ["two_cols", "k TEXT COLLATE NOCASE, b INTEGER, v TEXT, PRIMARY KEY (k COLLATE BINARY, b)"],
  ["two_cols_same", "k TEXT COLLATE NOCASE, b INTEGER, v TEXT, PRIMARY KEY (b, k)"],
  ["quoted", '"K" TEXT COLLATE NOCASE, v TEXT, PRIMARY KEY ("k" COLLATE BINARY)'],
  ["in_check", "k TEXT CHECK (k COLLATE NOCASE <> 'zzz') PRIMARY KEY, v TEXT"],
  ["rowid_alias", "k INTEGER COLLATE NOCASE, v TEXT, PRIMARY KEY (k COLLATE BINARY)"],
];
const WITHOUT_ROWID: [string, string][] = [
  ["wr_rtrim", "k TEXT COLLATE RTRIM, v TEXT, PRIMARY KEY (k)"],
  ["wr_nocase_binary", "k TEXT COLLATE NOCASE, v TEXT, PRIMARY KEY (k COLLATE BINARY)"],
];

/** Keys in groups that NOCASE or RTRIM take as equal: each is inserted where the table's own key lets it. */
function keys(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 60; i++) {
    const w = `k${String(i).padStart(2, "0")}x`;
    out.push(w, w.toUpperCase(), `${w} `, `${w[0]?.toUpperCase()}${w.slice(1)}`);
  }
  return out;
}

const SRC = "mc1";
const DST = "mc2";

async function onTablet<T>(tablet: string, fn: (q: SqlStorage) => T): Promise<T> {
  return runInDurableObject(env.TABLET.get(env.TABLET.idFromName(tablet)), (_i, state) => fn(state.storage.sql));
}

/** The table's rows as exact text (hex of the key, so collations play no part), sorted. */
const rowsOf = (q: SqlStorage, table: string) =>
  q
    .exec<{ r: string }>(`SELECT hex(k) || ':' || quote(v) ${table.startsWith("two") ? "|| ':' || b" : ""} AS r FROM ${table}`)
    .toArray()
    .map((x) => x.r)
    .sort();

describe("movetables: PRIMARY KEY collations and the copy", () => {
  it("refuses exactly the tables with keys equal as their column compares them; copies every other row exactly once", async () => {
    expect((await api("POST", "/v1/keyspaces", { name: SRC, shards: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/keyspaces", { name: DST, shards: 1 })).status).toBe(200);
    const all: [string, string][] = [
      ...SCHEMAS.map(([t, b]): [string, string] => [t, `CREATE TABLE ${t} (${b})`]),
      ...WITHOUT_ROWID.map(([t, b]): [string, string] => [t, `CREATE TABLE ${t} (${b}) WITHOUT ROWID`]),
    ];
    for (const [, ddl] of all) expect((await api("POST", "/v1/sql", { keyspace: SRC, sql: ddl })).status, ddl).toBe(200);
    const t0 = await topology();
    const srcTablet = tabletOf(t0, SRC, "-");
    // Every key each table's own key lets in (a duplicate under it is skipped), written on the tablet.
    await onTablet(srcTablet, (q) => {
      for (const [t] of all) {
        const twoCols = t.startsWith("two");
        keys().forEach((k, i) => {
          const key = t === "rowid_alias" ? i : k;
          q.exec(`INSERT INTO ${t} (k, v${twoCols ? ", b" : ""}) VALUES (?, ?${twoCols ? ", 1" : ""}) ON CONFLICT DO NOTHING`, key, `v${i}`);
        });
      }
    });

    const wf = (name: string) => moveWorkflow({ source: SRC, target: DST }, name);
    const accepted: string[] = [];
    for (const [t] of all) {
      // The oracle: rows whose keys are distinct but equal as the key column compares them.
      const ties = await onTablet(srcTablet, (q) => {
        const on = t.startsWith("two") ? "a.k = b.k AND a.b = b.b" : "a.k = b.k";
        const n = q.exec<{ n: number }>(`SELECT count(*) AS n FROM ${t}`).one().n;
        return q.exec<{ n: number }>(`SELECT count(*) AS n FROM ${t} a JOIN ${t} b ON ${on}`).one().n - n;
      });
      const r = await wf(`probe_${t}`).call({ action: "create", kind: "movetables", sourceKeyspace: SRC, tables: [t] });
      if (ties > 0) {
        expect(r.body["error"], t).toMatchObject({ code: "UNSUPPORTED", id: "VD2707", table: t });
        expect(String((r.body["error"] as { column: string }).column).toLowerCase(), t).toBe("k");
      } else {
        expect(r.status, `${t}: ${JSON.stringify(r.body)}`).toBe(200);
        expect((await wf(`probe_${t}`).call({ action: "cancel" })).status).toBe(200);
        accepted.push(t);
      }
    }
    expect(accepted.sort()).toEqual(
      ["plain", "nocase", "rtrim", "colafter", "binary_col_nocase_key", "spelled", "last_wins", "two_cols_same", "in_check", "rowid_alias", "wr_rtrim"].sort(),
    );

    // The accepted tables move together; each arrives with exactly the source's rows.
    const mv = wf("all");
    const c = await mv.call({ action: "create", kind: "movetables", sourceKeyspace: SRC, tables: accepted });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    await mv.until("copied", caughtUp);
    const dstTablet = tabletOf(await topology(), DST, "-");
    for (const t of accepted) {
      const want = await onTablet(srcTablet, (q) => rowsOf(q, t));
      const got = await onTablet(dstTablet, (q) => rowsOf(q, t));
      expect(want.length, t).toBeGreaterThan(60);
      expect(got, t).toEqual(want);
    }
    expect((await mv.call({ action: "cancel" })).status).toBe(200);

    // What the refusal prevents: the raw copy of a refused table, in pages of 7 rows, skips keys.
    const src = env.TABLET.get(env.TABLET.idFromName(srcTablet));
    const head = Number(
      unwrap(await src.status())
        .position.split(":")
        .at(-1),
    );
    let pos: StreamPos = { seq: head, copy: { table: 0, after: null } };
    let copied = 0;
    for (let n = 0; pos.copy !== null && n < 1000; n++) {
      const u = unwrap(await src.streamUnit({ keyRange: "-", tables: [{ table: "nocase_col_binary_key", kind: "reference" }] }, pos, { maxRows: 7 }));
      copied += u.rows.length;
      pos = u.to;
    }
    const total = (await sql("SELECT count(*) FROM nocase_col_binary_key", undefined, SRC)).rows[0]?.[0];
    expect(total).toBe(240);
    expect(copied).toBeLessThan(240);
  }, 90_000);
});
