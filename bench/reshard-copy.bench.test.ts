// What a Reshard's copy phase moves per second, against a plain copy of the same rows between two
// Durable Objects. Subject: `reshard create` splitting shard - into -80,80- (two streams, each
// reading every source row in PRIMARY KEY pages of COPY_UNIT_BYTES and keeping its half; each
// target pulls its pages from the source over RPC and applies each with its position), timed
// from the create request (so target tablets made, schema copied and streams started are in it)
// until the last stream recorded its copy phase done (StreamState.copiedAt, the target's clock;
// local workerd shares one clock). Not until a poll sees it: every local object runs on one
// thread, so the VDiff the workflow's runner starts the moment the copy is done would delay a
// poll by hundreds of ms and time a VDiff the copy did not do. Each workflow is cancelled once
// timed, so no round's VDiff runs during a later round. Baseline: a fresh Durable Object
// that reads the same source tablet's rows in pages of the same size (Tablet.execute over RPC,
// keyset pagination by id) and inserts each page into a plain table in one transaction, nothing
// else. Both land the same rows once; rows/s = source rows / elapsed. Rounds alternate which side
// runs first, each reshard on a keyspace of its own (same rows, fresh tablets).

import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../contract/envelope.ts";
import type { ServingGraph } from "../contract/serving-graph.ts";
import type { StreamState } from "../contract/stream-rpc.ts";
import type { QueryResult, Target } from "../contract/tablet-rpc.ts";
import { COPY_UNIT_BYTES } from "../tablet/stream-copy.ts";
import { quotedLength } from "../tablet/stream-page.ts";
import { emit, median } from "./measure.ts";
import { keyspaceWithRows, show, sleep, TABLE, workflow } from "./reshard-fixture.ts";

const ROWS = 30_000;
const ROUNDS = 3;

function unwrap<T>(e: Envelope<T>): T {
  if (!e.ok) throw new Error(`${e.error.code}: ${e.error.message}`);
  return e.value;
}

async function sourceTarget(keyspace: string): Promise<Target> {
  const g = unwrap((await env.TOPOLOGY.get(env.TOPOLOGY.idFromName("global")).graph()) as Envelope<ServingGraph>);
  const ks = g.keyspaces[keyspace];
  if (!ks) throw new Error(`no keyspace ${keyspace}`);
  return { keyspace, shard: "-", version: ks.version };
}

const tablet = (name: string) => env.TABLET.get(env.TABLET.idFromName(name));

/** Rows per copy page: what COPY_UNIT_BYTES holds of this table's rows, counted as the streamer counts them. */
async function pageRows(keyspace: string): Promise<number> {
  const avg = await runInDurableObject(tablet(`${keyspace}/-`), (_i, state) => {
    let bytes = 0;
    let n = 0;
    for (const row of state.storage.sql.exec(`SELECT id, name, score, data FROM ${TABLE}`).raw()) {
      for (const v of row) bytes += quotedLength(v instanceof ArrayBuffer ? new Uint8Array(v) : (v as string | number | null));
      n += 1;
    }
    return bytes / n;
  });
  return Math.ceil(COPY_UNIT_BYTES / avg);
}

/** The baseline: a fresh object pulls the source's rows page by page and inserts them; answers ms. */
async function plainCopy(keyspace: string, into: string, page: number): Promise<number> {
  const target = await sourceTarget(keyspace);
  return runInDurableObject(tablet(into), async (_i, state) => {
    state.storage.sql.exec(`CREATE TABLE plain_copy (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, data BLOB)`);
    const source = tablet(`${keyspace}/-`);
    const t0 = performance.now();
    let after = 0;
    for (;;) {
      const [r] = unwrap(
        (await source.execute(target, [
          { sql: `SELECT id, name, score, data FROM ${TABLE} WHERE id > ? ORDER BY id LIMIT ${page}`, params: [after], kind: "read" },
        ])) as Envelope<QueryResult[]>,
      );
      const rows = r?.rows ?? [];
      if (rows.length === 0) break;
      state.storage.transactionSync(() => {
        for (const row of rows) state.storage.sql.exec("INSERT INTO plain_copy (id, name, score, data) VALUES (?, ?, ?, ?)", ...(row as SqlStorageValue[]));
      });
      await state.storage.sync();
      after = Number(rows.at(-1)?.[0]);
    }
    const ms = performance.now() - t0;
    const n = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM plain_copy").one().n;
    if (n !== ROWS) throw new Error(`plain copy landed ${n} rows of ${ROWS}`);
    return ms;
  });
}

/** When every stream on the target tablets had left the copy phase (the latest copiedAt), or null while one copies; and the rows they copied. */
async function targetsCopied(tablets: readonly string[]): Promise<{ at: number | null; rows: number }> {
  let at: number | null = 0;
  let rows = 0;
  for (const name of tablets) {
    const streams = unwrap((await tablet(name).streams()) as Envelope<StreamState[]>);
    if (streams.length === 0) at = null;
    for (const s of streams) {
      rows += s.rowsCopied;
      if (s.phase !== "running" || s.copiedAt === null) at = null;
      else if (at !== null) at = Math.max(at, s.copiedAt);
    }
  }
  return { at, rows };
}

/** The subject: a split's copy phase, from the create request until the last stream recorded its copy done; answers ms. */
async function reshardCopy(keyspace: string): Promise<number> {
  const t0 = Date.now();
  const created = await workflow(keyspace, "copy", { action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"] });
  const targets = created.targets.map((t) => t.tablet);
  const end = t0 + 60_000;
  let at: number;
  for (;;) {
    const seen = await targetsCopied(targets);
    if (seen.at !== null) {
      if (seen.rows !== ROWS) throw new Error(`reshard copied ${seen.rows} rows of ${ROWS}`);
      at = seen.at;
      break;
    }
    if (Date.now() > end) throw new Error(`copy phase: still ${JSON.stringify(await show(keyspace, "copy"))}`);
    await sleep(20);
  }
  // Its Workflow runner VDiffs the streams next: cancelled, so that this runs in no later round.
  await workflow(keyspace, "copy", { action: "cancel" });
  return at - t0;
}

describe("reshard copy phase vs a plain copy between two Durable Objects", () => {
  it("rows per second landed on the targets", { timeout: 300_000 }, async () => {
    const keyspaces = Array.from({ length: ROUNDS + 1 }, (_, r) => `bcopy${r}`);
    for (const ks of keyspaces) await keyspaceWithRows(ks, ["-"], ROWS);
    const page = await pageRows(keyspaces[0] ?? "");
    expect(page).toBeGreaterThan(100);
    // Warm-up (JIT, the gate and topology objects): one of each, not counted.
    await plainCopy(keyspaces[0] ?? "", "bcopy-plain/warm", page);
    await reshardCopy(keyspaces[0] ?? "");
    const base: number[] = [];
    const subj: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const ks = keyspaces[r + 1] ?? "";
      let plainMs = 0;
      let reshardMs = 0;
      if (r % 2 === 0) {
        plainMs = await plainCopy(ks, `bcopy-plain/${r}`, page);
        reshardMs = await reshardCopy(ks);
      } else {
        reshardMs = await reshardCopy(ks);
        plainMs = await plainCopy(ks, `bcopy-plain/${r}`, page);
      }
      base.push((ROWS * 1000) / plainMs);
      subj.push((ROWS * 1000) / reshardMs);
      ratios.push(plainMs / reshardMs);
    }
    emit({
      name: "reshard copy phase vs plain DO-to-DO copy (higher is better)",
      unit: "rows/s",
      baseline: { label: "plain paged copy", value: median(base), rounds: base },
      subject: { label: "reshard - → -80,80-", value: median(subj), rounds: subj },
      ratio: median(ratios),
      rounds: ROUNDS,
      opsPerRound: ROWS,
      minRoundMs: Math.min(...base.map((x) => (ROWS * 1000) / x), ...subj.map((x) => (ROWS * 1000) / x)),
      note: `${ROWS} rows of ~170 B, pages of ${page} rows (COPY_UNIT_BYTES ${COPY_UNIT_BYTES}, values counted about as long as their quote() literals); ratio = reshard rows/s ÷ plain rows/s; the reshard's time runs from the create request (target tablets made) to the last stream's copiedAt`,
    });
  });
});
