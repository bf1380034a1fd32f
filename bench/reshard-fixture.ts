// What the resharding benchmarks share: a keyspace with one table on one shard, the workflow
// calls through the gate's HTTP API, waiting for a workflow's streams, and a client writing
// through the gate in a loop that records when each write was sent and acknowledged. Times are
// performance.now() in this test isolate (local workerd: every Durable Object shares its clock).

import { exports } from "cloudflare:workers";

export interface StreamView {
  readonly id: string;
  readonly target: string;
  readonly phase: string;
  readonly lagMs: number;
  readonly rowsCopied: number;
}

export interface WorkflowView {
  readonly state: string;
  readonly streams: readonly StreamView[];
  readonly targets: readonly { readonly shard: string; readonly tablet: string }[];
  readonly sources: readonly { readonly shard: string; readonly tablet: string }[];
  readonly rowsCopied: number;
  readonly pauseMs?: number;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One gate HTTP call; answers the status and the parsed body. */
export async function gate<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const init: RequestInit = { method, headers: { "content-type": "application/json" } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await exports.default.fetch(new Request(`http://gate${path}`, init));
  return { status: res.status, body: (await res.json()) as T };
}

async function must<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await gate<T>(method, path, body);
  if (r.status !== 200) throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

export const sql = (keyspace: string, text: string, params: readonly unknown[] = []) =>
  must<{ rows: unknown[][] }>("POST", "/v1/sql", { keyspace, sql: text, params });

/** The benchmarks' table: an xxhash-sharded id and a row of about 170 bytes. */
export const TABLE = "bench_rows";

/** A keyspace on the shards given, holding TABLE sharded by id, with `rows` rows (ids 1…rows). */
export async function keyspaceWithRows(keyspace: string, shards: readonly string[], rows: number): Promise<void> {
  await must("POST", "/v1/keyspaces", { name: keyspace, shards });
  await sql(keyspace, `CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, data BLOB)`);
  await must("POST", "/v1/vschema", {
    keyspace,
    vschema: { sharded: true, vindexes: { xx: { type: "xxhash" } }, tables: { [TABLE]: { column_vindexes: [{ column: "id", name: "xx" }] } } },
  });
  const blob = "ab".repeat(64);
  for (let i = 1; i <= rows; i += 250) {
    const values: string[] = [];
    for (let id = i; id < i + 250 && id <= rows; id++) values.push(`(${id}, 'user-${id}-${"x".repeat(12)}', ${(id % 97) * 1.25}, x'${blob}')`);
    await sql(keyspace, `INSERT INTO ${TABLE} (id, name, score, data) VALUES ${values.join(", ")}`);
  }
}

export const workflow = (keyspace: string, name: string, body: Record<string, unknown>) =>
  must<WorkflowView>("POST", "/v1/workflows", { keyspace, workflow: name, ...body });

export const show = (keyspace: string, name: string) => must<WorkflowView>("GET", `/v1/workflows?keyspace=${keyspace}&workflow=${name}`);

/** Polls the workflow every `everyMs` until `ok`; answers the view and when it was first seen so. */
export async function until(
  keyspace: string,
  name: string,
  what: string,
  ok: (v: WorkflowView) => boolean,
  everyMs = 5,
  ms = 60_000,
): Promise<{ view: WorkflowView; at: number }> {
  const end = performance.now() + ms;
  for (;;) {
    const view = await show(keyspace, name);
    const at = performance.now();
    if (ok(view)) return { view, at };
    if (at > end) throw new Error(`${what}: still ${JSON.stringify(view)}`);
    await sleep(everyMs);
  }
}

export const copied = (v: WorkflowView) => v.streams.length > 0 && v.streams.every((s) => s.phase === "running");

/** One acknowledged write of the client: when it was sent and when its answer came. */
export interface Ack {
  readonly id: number;
  readonly sent: number;
  readonly acked: number;
}

/** One client INSERT of row `id` through the gate: its ack in `acks`, or its failure in `errors` (then false). */
async function insertRow(keyspace: string, id: number, acks: Ack[], errors: unknown[]): Promise<boolean> {
  const sent = performance.now();
  const r = await gate("POST", "/v1/sql", {
    keyspace,
    sql: `INSERT INTO ${TABLE} (id, name, score) VALUES (?, ?, ?)`,
    params: [id, `w${id}`, id * 0.5],
  });
  if (r.status !== 200) {
    errors.push(r.body);
    return false;
  }
  acks.push({ id, sent, acked: performance.now() });
  return true;
}

/**
 * A client inserting fresh ids (from `firstId`) through the gate one at a time, `pauseMs`
 * between an answer and the next write; it stops on the first failed write (kept in `errors`).
 */
export function writer(keyspace: string, firstId: number, pauseMs: number) {
  let stop = false;
  const acks: Ack[] = [];
  const errors: unknown[] = [];
  const done = (async () => {
    for (let id = firstId; !stop; id++) {
      if (!(await insertRow(keyspace, id, acks, errors))) return;
      if (pauseMs > 0) await sleep(pauseMs);
    }
  })();
  return {
    acks,
    errors,
    async stop(): Promise<void> {
      stop = true;
      await done;
    },
  };
}

/**
 * A client inserting fresh ids (from `firstId`) back to back, no pause: `count` writes, or, with
 * `during`, writes until that promise settles and `after` more. Locally a timer fires only once the
 * event loop has nothing else to run, so a client that pauses on a timer sends nothing while a
 * busy request (a switchtraffic) runs and never meets it; back to back, its writes are in flight
 * through the whole switch. It stops on the first failed write (kept in `errors`).
 */
export async function burst(
  keyspace: string,
  firstId: number,
  opts: { count: number } | { during: Promise<unknown>; after: number },
): Promise<{ acks: Ack[]; errors: unknown[] }> {
  const acks: Ack[] = [];
  const errors: unknown[] = [];
  let settled = false;
  if ("during" in opts)
    opts.during.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
  let left = "count" in opts ? opts.count : opts.after;
  for (let id = firstId; left > 0; id++) {
    if (!(await insertRow(keyspace, id, acks, errors))) break;
    if (!("during" in opts) || settled) left--;
  }
  return { acks, errors };
}
