// The Topology's queue subscriptions (contract/subscription-rpc.ts): their table, and the checks a
// create or an update passes before anything is written. Each refusal is a catalogued error and
// writes nothing.
// The publisher Durable Object runs the subscription; this record is what it checks it against.

import { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import { BINDING_IN_PLACE, SUBSCRIPTION_NAME, type SubscriptionChange, type SubscriptionRecord, type SubscriptionSpec } from "../contract/subscription-rpc.ts";
import { decodeToken } from "../contract/vstream.ts";

export const SUBSCRIPTION_SCHEMA = `
CREATE TABLE IF NOT EXISTS _vt_topo_subscriptions (
  name TEXT PRIMARY KEY,          -- unique (SUBSCRIPTION_NAME); the publisher Durable Object's name
  id TEXT NOT NULL,               -- random, per create: a name created again is another subscription
  keyspace TEXT NOT NULL,
  tables TEXT,                    -- JSON lower-cased table names, or NULL: every table
  binding TEXT NOT NULL,          -- the Queue producer binding the publisher sends to
  token TEXT NOT NULL,            -- the VStream token it starts at
  created_at INTEGER NOT NULL,    -- unix ms
  revision INTEGER NOT NULL DEFAULT 1 -- 1 at create, one more per update of its tables
);
`;

/** At most this many subscriptions: each is a publisher polling every shard of its keyspace. */
export const MAX_SUBSCRIPTIONS = 100;
const MAX_TABLES = 100;

type Row = { name: string; id: string; keyspace: string; tables: string | null; binding: string; token: string; created_at: number; revision: number };

function toRecord(r: Row): SubscriptionRecord {
  return {
    name: r.name,
    id: r.id,
    keyspace: r.keyspace,
    tables: r.tables === null ? null : (JSON.parse(r.tables) as string[]),
    binding: r.binding,
    token: r.token,
    createdAt: r.created_at,
    revision: r.revision,
  };
}

function randomId(): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** What a create is checked against. */
export interface SubscriptionWorld {
  keyspace(name: string): KeyspaceGraph | undefined;
  /** Every tablet of `keyspace` that still has its binlog (TopologyRpc.keyspaceTablets). */
  known(keyspace: string): Promise<readonly string[]>;
}

/** The tables of a create or an update: null (every table), or 1 to MAX_TABLES names of `ks`, lower-cased, sorted. */
function checkTables(raw: unknown, ks: KeyspaceGraph): string[] | null {
  if (raw === null) return null;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_TABLES || !raw.every((t) => typeof t === "string" && t !== "")) {
    throw new VtError("INVALID_ARGUMENT", `subscription: "tables" must be a list of 1 to ${MAX_TABLES} table names, or absent for every table`, {
      field: "tables",
    });
  }
  const tables = [...new Set((raw as string[]).map((t) => t.toLowerCase()))].sort();
  for (const t of tables) {
    if (t.startsWith("_vt") || !Object.hasOwn(ks.tables, t)) {
      throw new VtError("UNKNOWN_TABLE", `subscription: no table ${t} in keyspace ${ks.name}`, { table: t });
    }
  }
  return tables;
}

function checkBinding(binding: unknown): string {
  if (typeof binding !== "string" || !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(binding)) {
    throw new VtError("INVALID_ARGUMENT", `subscription: "binding" must name a Queue producer binding of the Worker, not ${JSON.stringify(binding)}`, {
      field: "binding",
    });
  }
  return binding;
}

/**
 * Checks an update (any shape): an existing name and its new tables. The binding does not change
 * in place (a consumer of another queue would need the chains to start again): a new subscription
 * onto it from this one's token does that.
 */
export function checkSubscriptionChange(
  change: unknown,
  world: Pick<SubscriptionWorld, "keyspace">,
  current: (name: string) => SubscriptionRecord | null,
): SubscriptionChange {
  const c = (typeof change === "object" && change !== null ? change : {}) as Record<string, unknown>;
  if (Object.hasOwn(c, "binding")) {
    throw new VtError("INVALID_ARGUMENT", BINDING_IN_PLACE, { field: "binding" });
  }
  const extra = Object.keys(c).filter((k) => k !== "name" && k !== "tables");
  if (extra.length > 0) throw new VtError("INVALID_ARGUMENT", `subscription: unknown field "${extra[0]}"`);
  const rec = typeof c["name"] === "string" ? current(c["name"]) : null;
  if (rec === null) throw new VtError("INVALID_ARGUMENT", `subscription: no subscription ${JSON.stringify(c["name"])}`, { field: "name" });
  if (!Object.hasOwn(c, "tables")) throw new VtError("INVALID_ARGUMENT", 'subscription: an update names "tables" (null for every table)', { field: "tables" });
  const ks = world.keyspace(rec.keyspace);
  if (ks === undefined) throw new VtError("INVALID_ARGUMENT", `subscription: no keyspace ${JSON.stringify(rec.keyspace)}`, { field: "keyspace" });
  return { name: rec.name, tables: checkTables(c["tables"], ks) };
}

/** Checks `spec` (as it came over RPC: any shape) and answers it cleaned, or throws. */
export async function checkSubscriptionSpec(spec: unknown, world: SubscriptionWorld): Promise<SubscriptionSpec> {
  const s = (typeof spec === "object" && spec !== null ? spec : {}) as Record<string, unknown>;
  const name = s["name"];
  if (typeof name !== "string" || !SUBSCRIPTION_NAME.test(name)) {
    throw new VtError(
      "INVALID_ARGUMENT",
      `subscription: the name must be 1 to 64 letters, digits, _ or -, starting with a letter or digit, not ${JSON.stringify(name)}`,
      {
        field: "name",
      },
    );
  }
  const keyspace = s["keyspace"];
  if (typeof keyspace !== "string") throw new VtError("INVALID_ARGUMENT", 'subscription: "keyspace" must be a keyspace name', { field: "keyspace" });
  const ks = world.keyspace(keyspace);
  if (ks === undefined) throw new VtError("INVALID_ARGUMENT", `subscription: no keyspace ${JSON.stringify(keyspace)}`, { field: "keyspace" });
  const tables = checkTables(s["tables"] ?? null, ks);
  const binding = checkBinding(s["binding"]);
  const token = s["token"];
  if (typeof token !== "string") throw new VtError("INVALID_ARGUMENT", 'subscription: "token" must be a resume token', { field: "from" });
  const g = decodeToken(token);
  if (g.keyspace !== keyspace)
    throw new VtError("INVALID_ARGUMENT", `subscription: the token is of keyspace ${g.keyspace}, not ${keyspace}`, { field: "from" });
  for (const k of new Set(g.shards.map((p) => p.keyspace ?? keyspace))) {
    const known = new Set(await world.known(k));
    const gone = g.shards.find((p) => (p.keyspace ?? keyspace) === k && !known.has(p.tablet));
    if (gone !== undefined) {
      throw new VtError(
        "INVALID_ARGUMENT",
        `subscription: the token is too old: it names tablet ${gone.tablet}, which keyspace ${k} no longer has; start from "now"`,
        {
          field: "from",
        },
      );
    }
  }
  return { name, keyspace, tables, binding, token };
}

export class SubscriptionStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    this.#sql.exec(SUBSCRIPTION_SCHEMA);
    const columns = this.#sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('_vt_topo_subscriptions')").toArray();
    if (!columns.some((c) => c.name === "revision")) this.#sql.exec("ALTER TABLE _vt_topo_subscriptions ADD COLUMN revision INTEGER NOT NULL DEFAULT 1");
  }

  get(name: string): SubscriptionRecord | null {
    const r = this.#sql.exec<Row>("SELECT * FROM _vt_topo_subscriptions WHERE name = ?", name).toArray()[0];
    return r === undefined ? null : toRecord(r);
  }

  list(): SubscriptionRecord[] {
    return this.#sql.exec<Row>("SELECT * FROM _vt_topo_subscriptions ORDER BY name").toArray().map(toRecord);
  }

  /** Stores a checked spec under a new id; a name in use, or one too many, is refused. */
  create(spec: SubscriptionSpec, now: number): SubscriptionRecord {
    if (this.get(spec.name) !== null) {
      throw new VtError("INVALID_ARGUMENT", `subscription: ${spec.name} exists already (delete it first to start it again)`, { field: "name" });
    }
    const n = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM _vt_topo_subscriptions").one().n;
    if (n >= MAX_SUBSCRIPTIONS) throw new VtError("INVALID_ARGUMENT", `subscription: at most ${MAX_SUBSCRIPTIONS} subscriptions; delete one first`);
    const rec: SubscriptionRecord = { ...spec, id: randomId(), createdAt: now, revision: 1 };
    this.#sql.exec(
      "INSERT INTO _vt_topo_subscriptions (name, id, keyspace, tables, binding, token, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      rec.name,
      rec.id,
      rec.keyspace,
      rec.tables === null ? null : JSON.stringify(rec.tables),
      rec.binding,
      rec.token,
      rec.createdAt,
    );
    return rec;
  }

  /** Applies a checked change: the new tables, one revision more. */
  update(change: SubscriptionChange): SubscriptionRecord {
    const rec = this.get(change.name);
    if (rec === null) throw new VtError("INVALID_ARGUMENT", `subscription: no subscription ${JSON.stringify(change.name)}`, { field: "name" });
    this.#sql.exec(
      "UPDATE _vt_topo_subscriptions SET tables = ?, revision = revision + 1 WHERE name = ?",
      change.tables === null ? null : JSON.stringify(change.tables),
      rec.name,
    );
    return this.get(rec.name) as SubscriptionRecord;
  }

  delete(name: unknown): SubscriptionRecord {
    const rec = typeof name === "string" ? this.get(name) : null;
    if (rec === null) throw new VtError("INVALID_ARGUMENT", `subscription: no subscription ${JSON.stringify(name)}`, { field: "name" });
    this.#sql.exec("DELETE FROM _vt_topo_subscriptions WHERE name = ?", rec.name);
    return rec;
  }
}
