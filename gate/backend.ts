// The Durable Objects behind one gate request, reached only through the contract's RPC
// interfaces. Every call shares the request's one deadline (`QUERY_TIMEOUT_MS`, deadline.ts), so
// the request answers TIMEOUT rather than waiting on a Durable Object that does not answer.

import { unwrap, type Envelope } from "../contract/envelope.ts";
import { toVtError, VtError } from "../contract/errors.ts";
import type { KeyspaceGraph, ServingGraph } from "../contract/serving-graph.ts";
import { tabletRpc, type BoundQuery, type QueryResult } from "../contract/tablet-rpc.ts";
import { catalogRpc, topologyRpc, type TopologyRpc } from "../contract/topology-rpc.ts";
import { own } from "../topology/own.ts";
import { type Buffering, bufferPauseMs, bufferSize, bufferWindowMs, cutoverBuffer } from "./buffer.ts";
import type { CallInfo, Deadline } from "./deadline.ts";
import { LostCall, writeFault } from "./failpoints.ts";
import { graphCache } from "./graph-cache.ts";
import { RETRIES, type Retry } from "./retry.ts";

/** How long a held request waits on the Topology for the flip before it tries again all the same. */
const FLIP_WAIT_MS = 250;
/** Past the Topology's own bound, when the gate stops waiting for its answer. */
const FLIP_WAIT_SLACK_MS = 100;
/** Time the wait leaves for the retry itself. */
const FLIP_WAIT_MARGIN_MS = 20;

export class Backend {
  readonly #env: Env;
  readonly #deadline: Deadline;
  /** How this request's retry loops hold it through a cutover (`BUFFER_WINDOW_MS`, `BUFFER_SIZE`). */
  readonly buffering: Buffering;

  constructor(env: Env, deadline: Deadline) {
    this.#env = env;
    this.#deadline = deadline;
    this.buffering = { windowMs: bufferWindowMs(env.BUFFER_WINDOW_MS), size: bufferSize(env.BUFFER_SIZE), buffer: cutoverBuffer, now: Date.now };
  }

  /** A Topology call under the request's deadline; `writes` when it may change the topology. */
  async topology<T>(writes: boolean, call: (t: TopologyRpc) => Promise<Envelope<T>>): Promise<T> {
    const stub = topologyRpc(this.#env.TOPOLOGY);
    return unwrap(await this.#deadline.race(() => call(stub), { target: "the topology", writes }));
  }

  /**
   * Statements on one tablet under the request's deadline. A tablet answers its own errors in the
   * envelope; a write call that fails on the way instead (the tablet's Durable Object reset, maybe
   * after committing; the connection broke) may or may not have been applied: its error says
   * `applied: "unknown"` and `shard`, and nothing retries it.
   */
  async tablet(ks: KeyspaceGraph, shard: string, queries: BoundQuery[]): Promise<QueryResult[]> {
    const { name: keyspace, version } = ks;
    const tablet = ks.shards.find((s) => s.name === shard)?.tablet;
    if (tablet === undefined) throw new VtError("INTERNAL", `shard ${keyspace}/${shard} is not in the serving graph the statement was planned with`);
    const stub = tabletRpc(this.#env.TABLET, tablet);
    const writes = queries.some((q) => q.kind !== "read");
    const info: CallInfo = { target: `tablet ${keyspace}/${shard}`, writes, shard };
    const call = async () => {
      if (writes && writeFault(keyspace, shard, "before")) throw new LostCall(`the write to ${info.target} was lost`);
      const answer = await stub.execute({ keyspace, shard, version }, queries);
      if (writes && writeFault(keyspace, shard, "after")) throw new LostCall(`the answer of the write to ${info.target} was lost`);
      return answer;
    };
    let answer: Envelope<QueryResult[]>;
    try {
      answer = await this.#deadline.race(call, info);
    } catch (e) {
      // A TIMEOUT of the deadline already says applied: "unknown".
      if (!writes || e instanceof VtError) throw e;
      const vt = toVtError(e);
      throw new VtError(vt.code, `${info.target} did not answer the write (${vt.message}); it may or may not have been applied: read before retrying it`, {
        shard,
        applied: "unknown",
      });
    }
    return unwrap(answer);
  }

  /** A read of the schema catalog alone, on the keyspace's Catalog. */
  async catalog(ks: KeyspaceGraph, query: BoundQuery): Promise<QueryResult> {
    return unwrap(await catalogRpc(this.#env.CATALOG, ks.name).query(ks.name, ks.schemaIndex, query));
  }

  backoff(attempt: number): Promise<void> {
    return this.#deadline.sleep(10 * 4 ** attempt, { target: "a retry after a serving-graph change", writes: false });
  }

  /** The serving graph: the isolate's cached copy, or (with `refresh`, or when it is old) the Topology's. */
  graph(refresh = false): Promise<ServingGraph> {
    return graphCache.get(() => this.topology(false, (t) => t.graph()), refresh);
  }

  /** Keeps the graph a Topology change answered. */
  adopt(g: ServingGraph): void {
    graphCache.adopt(g);
  }

  /** A keyspace by name (none: DEFAULT_KEYSPACE); one the cached graph lacks is looked up afresh once. */
  async keyspace(name: string | undefined, refresh = false): Promise<KeyspaceGraph> {
    const ksName = name ?? (this.#env.DEFAULT_KEYSPACE || "main");
    let g = await this.graph(refresh);
    let ks = own(g.keyspaces, ksName);
    if (!ks && !refresh) {
      g = await this.graph(true);
      ks = own(g.keyspaces, ksName);
    }
    if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${ksName}"`, { keyspace: ksName });
    return ks;
  }

  /**
   * Before retrying on a fresh graph: a tablet that knew an older version missed a sync (the
   * Topology redoes it, on the first RETRIES retries only, so a held request does not flood it),
   * then back off; a request held through a cutover pauses milliseconds, and answers its refusal
   * rather than TIMEOUT when the deadline leaves no time for another try.
   */
  async afterStale(retry: Retry, attempt: number, held: number | false = false): Promise<void> {
    const known = retry.error["servingVersion"];
    const ks = retry.keyspace;
    if (ks && typeof known === "number" && known < ks.version && attempt < RETRIES) this.adopt(await this.topology(true, (t) => t.repair(ks.name)));
    // The tablet serves a newer graph than the plan's: that graph is published already (the
    // Topology commits a version before any tablet learns it), so the retry's refreshed graph
    // answers at once and waiting would only add to the pause.
    if (ks && typeof known === "number" && known > ks.version) return;
    if (!held) return this.backoff(attempt);
    const pause = bufferPauseMs(attempt);
    if (this.#deadline.remainingMs() <= pause) throw retry.error;
    if (ks && retry.awaitsFlip && (await this.#awaitFlip(ks, retry, held))) return;
    await this.#deadline.sleep(pause, { target: "a retry held through a cutover", writes: false });
  }

  /**
   * A request its shard refuses while writes switch (its shard's, or a MoveTables' table's), at
   * the very graph it planned with, waits on the Topology until the keyspace's tablets have
   * learned a change (the flip: its graph is kept for the retry; or writes taken again) rather
   * than polling on a timer, so it goes on the moment the flip is done. False when the Topology
   * could not wait (an error, or it answered at once with no change): the caller pauses on its
   * timer instead.
   */
  async #awaitFlip(ks: KeyspaceGraph, retry: Retry, windowLeftMs: number): Promise<boolean> {
    const wait = Math.min(FLIP_WAIT_MS, windowLeftMs, this.#deadline.remainingMs() - FLIP_WAIT_MARGIN_MS);
    if (wait <= 0) throw retry.error;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => {
      timer = setTimeout(() => r("late"), wait + FLIP_WAIT_SLACK_MS);
    });
    const asked = this.topology(false, (t) => t.awaitGraph(ks.name, ks.version, wait)).catch(() => "failed" as const);
    try {
      const out = await Promise.race([asked, late]);
      if (out === "failed") return false;
      if (out === "late") return true;
      if (out.graph !== null) {
        this.adopt(out.graph);
        return true;
      }
      // No new version: a push of the keyspace's config ended (or the wait ran out), so try again;
      // an answer with no wait at all (the Topology holds too many) falls back to the timer.
      return out.waited;
    } finally {
      clearTimeout(timer);
    }
  }
}
