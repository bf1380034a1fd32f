// The gate's side of queue subscriptions: create, show and delete as the admin HTTP routes ask them,
// the subscriptions with their lag in GET /v1/topology, and the demo queue's consumer. The gate
// checks what needs its env (the binding is a Queue producer) and resolves `from: "now"` or
// `"start"` to a token (every serving shard's binlog head, read now; "start" with the initial copy
// still to come), the Topology checks and records the rest
// (topology/subscriptions.ts), and the publisher Durable Object of the subscription's name runs it.

import { unwrap } from "../contract/envelope.ts";
import { toVtError, VtError } from "../contract/errors.ts";
import {
  BINDING_IN_PLACE,
  byName,
  type InboxMessage,
  type SubscriptionRecord,
  type SubscriptionStatus,
  type SubscriptionSummary,
} from "../contract/subscription-rpc.ts";
import { topologyRpc } from "../contract/topology-rpc.ts";
import { encodeToken } from "../contract/vstream.ts";
import { queueProducer } from "./subscription-binding.ts";
import { checkVStream, vstreamTablets } from "./vstream-http.ts";
import { decodeVStreamRequest } from "./vstream-request.ts";
import { resolveStart } from "./vstream.ts";

/** The demo queue the gate consumes itself (wrangler.toml), into the inbox of the same name. */
export const DEMO_QUEUE = "vitess-do-changes";

/** A subscription as the admin routes answer it: its record and its publisher's status (null when that did not answer). */
export interface SubscriptionView extends SubscriptionRecord {
  readonly status: SubscriptionStatus | null;
}

const publisher = (env: Env, name: string) => byName(env.SUBSCRIPTION_PUBLISHER, name);

/**
 * The publisher's status, starting it when it is not running (a create whose start was lost, a
 * publisher reset before its first alarm): any look at a subscription puts it back on its way.
 */
async function statusOf(env: Env, rec: SubscriptionRecord): Promise<SubscriptionStatus | null> {
  try {
    return unwrap(await publisher(env, rec.name).ensure(rec));
  } catch {
    return null;
  }
}

const CREATE_FIELDS = ["action", "name", "keyspace", "tables", "binding", "from"];

export async function createSubscription(env: Env, body: Readonly<Record<string, unknown>>): Promise<SubscriptionView> {
  for (const k of Object.keys(body)) {
    if (!CREATE_FIELDS.includes(k)) throw new VtError("INVALID_ARGUMENT", `subscription: unknown field "${k}"`);
  }
  const get = (k: string): unknown => (Object.hasOwn(body, k) ? body[k] : undefined);
  queueProducer(env, get("binding"));
  const from = get("from") ?? "now";
  const keyspace = get("keyspace") ?? (env.DEFAULT_KEYSPACE || "main");
  const tables = get("tables");
  const vreq = decodeVStreamRequest({ keyspace, from, ...(tables !== undefined ? { tables } : {}) }, env.DEFAULT_KEYSPACE || "main");
  await checkVStream(env, vreq);
  const resolved = await resolveStart(vreq, vstreamTablets(env));
  if (resolved.from === "now" || resolved.from === "start") throw new VtError("INTERNAL", "subscription: the start was not resolved");
  const rec = unwrap(
    await topologyRpc(env.TOPOLOGY).createSubscription({
      name: get("name") as string,
      keyspace: vreq.keyspace,
      tables: vreq.tables ?? null,
      binding: get("binding") as string,
      token: encodeToken(resolved.from),
    }),
  );
  return { ...rec, status: await statusOf(env, rec) };
}

const UPDATE_FIELDS = ["action", "name", "tables", "binding"];

/**
 * Changes a subscription's tables in place (`tables`: a list, or null for every table): the
 * publisher's next round reads with them and its chains go on, so a consumer's reader needs
 * nothing new. Added tables publish their changes from then on (not their rows as they stand);
 * removed ones stop. Refused while the initial copy is still going out (the copy walks the tables
 * in order), and for `binding` (BINDING_IN_PLACE).
 */
export async function updateSubscription(env: Env, body: Readonly<Record<string, unknown>>): Promise<SubscriptionView> {
  for (const k of Object.keys(body)) {
    if (!UPDATE_FIELDS.includes(k)) throw new VtError("INVALID_ARGUMENT", `subscription: unknown field "${k}"`);
  }
  if (Object.hasOwn(body, "binding")) throw new VtError("INVALID_ARGUMENT", BINDING_IN_PLACE, { field: "binding" });
  const name = body["name"];
  if (typeof name !== "string") throw new VtError("INVALID_ARGUMENT", 'subscription: "name" must be a subscription name', { field: "name" });
  if (!Object.hasOwn(body, "tables"))
    throw new VtError("INVALID_ARGUMENT", 'subscription: an update names "tables" (null for every table)', { field: "tables" });
  const topo = topologyRpc(env.TOPOLOGY);
  const rec = unwrap(await topo.getSubscription(name));
  if (rec === null) throw new VtError("INVALID_ARGUMENT", `subscription: no subscription ${JSON.stringify(name)}`, { field: "name" });
  const tables = body["tables"];
  if (tables !== null && !Array.isArray(tables)) {
    throw new VtError("INVALID_ARGUMENT", 'subscription: "tables" must be a list of table names, or null for every table', { field: "tables" });
  }
  const vreq = decodeVStreamRequest({ keyspace: rec.keyspace, ...(tables !== null ? { tables } : {}) }, rec.keyspace);
  await checkVStream(env, vreq);
  const status = unwrap(await publisher(env, name).status());
  if (status?.copying === true) {
    throw new VtError("INVALID_ARGUMENT", `subscription: ${name} is still publishing its initial copy; change its tables once it is done (copying: false)`, {
      field: "tables",
    });
  }
  const updated = unwrap(await topo.updateSubscription({ name, tables: vreq.tables ?? null }));
  // The publisher must have it before this answers (a round in flight ends, the next reads with it).
  try {
    return { ...updated, status: unwrap(await publisher(env, name).ensure(updated)) };
  } catch (e) {
    const vt = toVtError(e);
    throw new VtError(
      vt.code,
      `subscription: ${name}'s tables changed (revision ${updated.revision ?? 1}), but its publisher did not confirm it (${vt.message}): until it does (within about 10 s), changes of the new tables may be missed; repeat the update to make sure`,
      { field: "tables" },
    );
  }
}

/** Every subscription, or the one named (INVALID_ARGUMENT when there is none). */
export async function showSubscriptions(env: Env, name?: string): Promise<SubscriptionView[]> {
  const topo = topologyRpc(env.TOPOLOGY);
  let recs: SubscriptionRecord[];
  if (name === undefined) recs = unwrap(await topo.subscriptions());
  else {
    const rec = unwrap(await topo.getSubscription(name));
    if (rec === null) throw new VtError("INVALID_ARGUMENT", `subscription: no subscription ${JSON.stringify(name)}`, { field: "name" });
    recs = [rec];
  }
  return Promise.all(recs.map(async (rec) => ({ ...rec, status: await statusOf(env, rec) })));
}

/**
 * Removes the subscription from the Topology, then stops its publisher (which releases its holds).
 * A stop that does not answer is not an error: the publisher finds its record gone within seconds
 * and stops by itself.
 */
export async function deleteSubscription(env: Env, name: unknown): Promise<{ deleted: SubscriptionRecord; stopped: boolean }> {
  if (typeof name !== "string") throw new VtError("INVALID_ARGUMENT", 'subscription: "name" must be a subscription name', { field: "name" });
  const rec = unwrap(await topologyRpc(env.TOPOLOGY).deleteSubscription(name));
  let stopped = false;
  try {
    stopped = unwrap(await publisher(env, name).stop(rec.id)).stopped;
  } catch {
    stopped = false;
  }
  return { deleted: rec, stopped };
}

/** What GET /v1/topology shows of each subscription. */
export async function subscriptionsView(env: Env): Promise<SubscriptionSummary[]> {
  const views = await showSubscriptions(env);
  return views.map((v) => ({
    name: v.name,
    keyspace: v.keyspace,
    tables: v.tables,
    binding: v.binding,
    createdAt: v.createdAt,
    running: v.status?.running ?? null,
    copying: v.status?.copying ?? null,
    lagMs: v.status?.lagMs ?? null,
    published: v.status?.published ?? null,
    messages: v.status?.messages ?? null,
    lastError: v.status?.lastError ?? null,
  }));
}

/** The demo inbox's messages after `after` (GET /v1/subscriptions/inbox). */
export async function readInbox(env: Env, after: number, limit: number): Promise<{ messages: InboxMessage[] }> {
  return unwrap(await byName(env.SUBSCRIPTION_INBOX, DEMO_QUEUE).read(after, limit));
}

/** The gate's consumer of the demo queue: keeps each batch in the inbox, then acknowledges it (a failure redelivers it). */
export async function consumeDemoQueue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const messages = batch.messages.map((m) => ({ body: typeof m.body === "string" ? m.body : JSON.stringify(m.body), attempts: m.attempts }));
  unwrap(await byName(env.SUBSCRIPTION_INBOX, batch.queue).take(messages));
  batch.ackAll();
}
