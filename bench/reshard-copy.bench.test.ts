// What a Reshard's copy phase moves per second, against a plain copy of the same rows between two
// Durable Objects. Subject: `reshard create` splitting shard - into -80,80- (two streams, each
// reading every source row in PRIMARY KEY pages of UNIT_BYTES and keeping its half; the parts
// travel through the vreplication queue and are applied with their position), timed from the
// create request until every stream has left the copy phase. Baseline: a fresh Durable Object
// that reads the same source tablet's rows in pages of the same size (Tablet.execute over RPC,
// keyset pagination by id) and inserts each page into a plain table in one transaction, nothing
// else. Both land the same rows once; rows/s = source rows / elapsed. Rounds alternate which side
// runs first, each reshard on a keyspace of its own (same rows, fresh tablets).

import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../contract/envelope.ts";
import type { ServingGraph } from "../contract/serving-graph.ts";
import type { QueryResult, Target } from "../contract/tablet-rpc.ts";
import { UNIT_BYTES } from "../tablet/stream-pump.ts";
import { emit, median } from "./measure.ts";
import { copied, keyspaceWithRows, TABLE, until, workflow } from "./reshard-fixture.ts";

const ROWS = 10_000;
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

/** Rows per copy page: what UNIT_BYTES of quote()d values holds of this table's rows, as the streamer counts them. */
async function pageRows(keyspace: string): Promise<number> {
  const avg = await runInDurableObject(
    tablet(`${keyspace}/-`),
    (_i, state) =>
      state.storage.sql
        .exec<{ b: number }>(`SELECT avg(length(quote(id)) + length(quote(name)) + length(quote(score)) + length(quote(data))) AS b FROM ${TABLE}`)
        .one().b,
  );
  return Math.ceil(UNIT_BYTES / avg);
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

/** The subject: a split's copy phase, from the create request until every stream runs; answers ms. */
async function reshardCopy(keyspace: string): Promise<number> {
  const t0 = performance.now();
  await workflow(keyspace, "copy", { action: "create", sourceShards: ["-"], targetShards: ["-80", "80-"] });
  const { view, at } = await until(keyspace, "copy", "copy phase", copied);
  if (view.rowsCopied !== ROWS) throw new Error(`reshard copied ${view.rowsCopied} rows of ${ROWS}`);
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
      note: `${ROWS} rows of ~170 B, pages of ${page} rows (UNIT_BYTES ${UNIT_BYTES} of quote()d values); ratio = reshard rows/s ÷ plain rows/s; the reshard's time includes create (target tablets made) and status polling every 5 ms`,
    });
  });
});
