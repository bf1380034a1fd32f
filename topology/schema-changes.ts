// The Topology's two-phase schema changes: a DDL (and a vschema change that could re-route rows)
// is first tried by every shard under a write fence (prepare); only when all succeeded is it
// recorded in the schema history (the single source of truth) and applied everywhere; otherwise
// it is aborted and leaves no trace. The change is recorded as pending (pending.ts) before any
// shard is asked, so a Topology that stops anywhere resolves it later, from its alarm or its next
// change to the keyspace. The Topology runs these in its change queue.

import { errorBody, VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { DdlEntry, PreparedChange, TableInfo, TabletRpc, TabletStatus } from "../contract/tablet-rpc.ts";
import type { DdlRequest } from "../contract/topology-rpc.ts";
import type { VSchema } from "../contract/vschema.ts";
import type { WorkflowRecord } from "../contract/workflow-record.ts";
import { crashPoint } from "./failpoints.ts";
import { setOwn } from "./own.ts";
import type { PendingChanges } from "./pending.ts";
import { unsupportedError } from "./refusals.ts";
import { checkDdlDuringWorkflow } from "./reshard-plan.ts";
import type { ShardOutcome, TabletSync } from "./tablet-sync.ts";
import type { TopologyStore } from "./topology-store.ts";
import { validateVSchema } from "./vschema.ts";
import { carryOver, checkVSchemaColumns, reroutedTables } from "./vschema-checks.ts";

/** When the alarm looks again at a change it could not resolve. */
export const RESOLVE_RETRY_MS = 2_000;

function randomToken(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export interface SchemaChangeDeps {
  readonly store: TopologyStore;
  readonly pending: PendingChanges;
  readonly tablets: TabletSync;
  readonly tablet: (name: string) => TabletRpc;
  /** The keyspace's open workflows (a DDL of the user is refused while one runs). */
  readonly openWorkflows: (keyspace: string) => readonly WorkflowRecord[];
  /** Refuses a vschema change an open workflow cannot follow (workflow-steps.ts). */
  readonly checkVSchemaChange: (ks: KeyspaceGraph, next: VSchema) => void;
  readonly transaction: (fn: () => void) => void;
  readonly setAlarm: (at: number) => Promise<void>;
}

export class SchemaChanges {
  readonly #d: SchemaChangeDeps;

  constructor(deps: SchemaChangeDeps) {
    this.#d = deps;
  }

  /**
   * Finishes the keyspace's pending change as far as its tablets let it: an undecided one is
   * aborted, a decided one applied; fences are released. Answers the shards that still failed
   * (then the alarm tries again).
   */
  async resolve(keyspace: string): Promise<ShardOutcome<TabletStatus>[]> {
    const { pending, store, tablets } = this.#d;
    const p = pending.get(keyspace);
    if (!p) return [];
    const ks = store.keyspace(keyspace);
    if (!ks) {
      pending.delete(keyspace);
      return [];
    }
    if (p.phase === "prepare") pending.setPhase(keyspace, "release");
    const out = await tablets.syncAll(ks);
    const failed = out.filter((o) => o.error || (p.phase === "apply" && p.index !== null && (o.value?.schemaIndex ?? 0) < p.index));
    if (failed.length === 0) pending.delete(keyspace);
    else await this.#d.setAlarm(Date.now() + RESOLVE_RETRY_MS);
    return failed;
  }

  /** Resolves the keyspace's pending change or answers NOT_SERVING saying what it waits for. */
  async settle(keyspace: string): Promise<void> {
    const p = this.#d.pending.get(keyspace);
    if (!p) return;
    const failed = await this.resolve(keyspace);
    const first = failed[0];
    if (!first) return;
    const what = p.phase === "apply" ? `schema entry ${p.index ?? "?"} is still being applied` : "an aborted change is still being undone";
    throw new VtError(
      "NOT_SERVING",
      `keyspace ${keyspace}: ${what} on shard ${first.shard} (${first.error?.message ?? "behind"}); it is retried automatically, retry later`,
      {
        shard: first.shard,
      },
    );
  }

  /** Re-drives every unresolved change (the Topology's alarm, in its change queue). */
  async resolveAll(): Promise<void> {
    for (const keyspace of this.#d.pending.keyspaces()) {
      try {
        await this.resolve(keyspace);
      } catch {
        await this.#d.setAlarm(Date.now() + RESOLVE_RETRY_MS);
      }
    }
  }

  /**
   * Replaces a keyspace's vschema. Vindex columns must exist in the tables that exist
   * (INVALID_ARGUMENT); a change of where a table's rows live (vindex column, vindex, kind) is
   * allowed only while the table is empty on every shard, checked under a write fence so no row
   * lands by the old placement after the check.
   */
  async applyVSchema(keyspace: string, input: unknown): Promise<void> {
    const { store, pending, tablets } = this.#d;
    if (!store.keyspace(keyspace)) throw new VtError("INVALID_ARGUMENT", `no keyspace "${keyspace}"`);
    const given = validateVSchema(input);
    await this.settle(keyspace);
    const ks = store.keyspace(keyspace);
    if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${keyspace}"`);
    if (!given.sharded && ks.shards.length > 1) {
      throw new VtError("INVALID_ARGUMENT", `keyspace "${keyspace}" has ${ks.shards.length} shards, so its vschema must be sharded`);
    }
    const { vschema, auto } = given.sharded ? carryOver(ks.vschema, given, ks.tables, store.autoTables(keyspace)) : { vschema: given, auto: [] };
    checkVSchemaColumns(vschema, ks.tables);
    this.#d.checkVSchemaChange(ks, vschema);
    const moved = ks.shards.length > 1 ? reroutedTables(ks.vschema, vschema, ks.tables) : [];
    const commit = (): void => {
      store.setVSchema(keyspace, vschema, auto);
      store.bump(keyspace);
    };
    if (moved.length === 0) {
      this.#d.transaction(commit);
      const updated = store.keyspace(keyspace);
      if (updated) await tablets.syncTablets(updated);
      return;
    }
    const token = await this.#begin(keyspace, "vschema", null, null);
    const prepared = await this.#prepare(ks, token, null);
    const holding = moved.filter((t) => prepared.some((p) => p.nonEmpty.some((n) => n.toLowerCase() === t.toLowerCase())));
    if (holding.length > 0) {
      await this.#abort(keyspace);
      throw unsupportedError(
        "VD2101",
        `vschema change of ${holding.join(", ")}: the new vindexes would place rows elsewhere, and the table holds rows (they would stay where the old vindexes put them); move rows with Reshard or MoveTables, or change the vschema while the table is empty`,
        { tables: holding },
      );
    }
    this.#d.transaction(() => {
      commit();
      pending.setPhase(keyspace, "release");
    });
    crashPoint("decided");
    await this.resolve(keyspace);
  }

  /**
   * One DDL statement on every shard of the keyspace, or on none (TopologyRpc.applyDdl);
   * `limited`: refused while a workflow of the keyspace is open (its own DDL is not).
   */
  async ddl(req: DdlRequest, limited: boolean): Promise<void> {
    const { store, pending } = this.#d;
    if (!store.keyspace(req.keyspace)) throw new VtError("INVALID_ARGUMENT", `no keyspace "${req.keyspace}"`);
    const request = req.requestId ?? null;
    if (request !== null && pending.decided(req.keyspace, request)) {
      await this.resolve(req.keyspace);
      return;
    }
    await this.settle(req.keyspace);
    const ks = store.keyspace(req.keyspace);
    if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${req.keyspace}"`);
    if (ks.shards.length === 0) throw new VtError("INTERNAL", `keyspace "${req.keyspace}" has no shards`);
    if (limited) checkDdlDuringWorkflow(req.sql, this.#d.openWorkflows(ks.name));
    const entry: DdlEntry = { index: ks.schemaIndex + 1, sql: req.sql };
    const token = await this.#begin(ks.name, "ddl", entry.index, request);
    const prepared = await this.#prepare(ks, token, entry);
    const tables = prepared[0]?.tables ?? [];
    const { vschema, auto } = this.#vschemaAfter(ks, req, tables);
    try {
      checkVSchemaColumns(vschema, Object.fromEntries(tables.map((t) => [t.name.toLowerCase(), t])));
    } catch (e) {
      await this.#abort(ks.name);
      throw e;
    }
    this.#d.transaction(() => {
      store.appendDdl(ks.name, entry);
      if (request !== null) pending.recordRequest(ks.name, request, entry.index);
      store.setTables(ks.name, tables);
      store.setVSchema(ks.name, vschema, auto);
      pending.setPhase(ks.name, "apply");
      store.bump(ks.name);
    });
    crashPoint("decided");
    await this.resolve(ks.name);
    crashPoint("applied");
  }

  /** Records a change as pending (before any tablet hears of it) and arms the alarm that finishes it. */
  async #begin(keyspace: string, kind: "ddl" | "vschema", index: number | null, request: string | null): Promise<string> {
    const token = randomToken();
    this.#d.pending.insert({ keyspace, token, kind, phase: "prepare", index, request });
    await this.#d.setAlarm(Date.now() + RESOLVE_RETRY_MS);
    crashPoint("recorded");
    return token;
  }

  /** Phase one on every shard; on any failure the change is aborted and the failure thrown. */
  async #prepare(ks: KeyspaceGraph, token: string, entry: DdlEntry | null): Promise<PreparedChange[]> {
    const { store, tablets } = this.#d;
    const ddl = store.ddl(ks.name);
    const out = await tablets.fanOut(tablets.members(ks), "prepare", (s) => this.#d.tablet(s.tablet).prepareChange(tablets.config(ks, s), ddl, token, entry));
    crashPoint("prepared");
    const failed = out.filter((o) => o.error);
    // A refusal by the shard's data beats a shard that did not answer: it is the reason to report.
    const first = failed.find((o) => o.error && !o.error.retryable) ?? failed[0];
    if (first?.error) {
      await this.#abort(ks.name);
      const { code, message, retryable: _r, ...fields } = errorBody(first.error);
      const what = entry ? "the DDL" : "the vschema change";
      throw new VtError(code, `${what} was refused by shard ${first.shard} and applied on no shard: ${message}`, {
        ...fields,
        shard: first.shard,
        applied: false,
      });
    }
    return out.flatMap((o) => (o.value ? [o.value] : []));
  }

  async #abort(keyspace: string): Promise<void> {
    this.#d.pending.setPhase(keyspace, "release");
    await this.resolve(keyspace);
  }

  /** The keyspace's vschema and auto-added tables after a DDL that leaves `tables`. */
  #vschemaAfter(ks: KeyspaceGraph, req: DdlRequest, tables: readonly TableInfo[]): { vschema: VSchema; auto: string[] } {
    let auto = this.#d.store.autoTables(ks.name);
    const vschema: VSchema = structuredClone(ks.vschema);
    if (req.addTable && tables.some((t) => t.name.toLowerCase() === req.addTable?.name.toLowerCase())) {
      setOwn(vschema.tables, req.addTable.name, req.addTable.entry);
      auto.push(req.addTable.name);
    }
    if (req.dropTable !== undefined) {
      const drop = req.dropTable.toLowerCase();
      for (const name of auto.filter((n) => n.toLowerCase() === drop)) delete vschema.tables[name];
      auto = auto.filter((n) => n.toLowerCase() !== drop);
    }
    return { vschema, auto };
  }
}
