// The gate's workflow calls (`POST /v1/workflows`, `GET /v1/workflows`, capnweb `workflow`): the
// request is checked here, carried out by the Topology, and a created Reshard gets its Workflow
// runner (workflows/reshard.ts), which waits for the copy, runs VDiff and switches when asked to.

import { VtError } from "../contract/errors.ts";
import { toJsonValue } from "../contract/sql-values.ts";
import { unsupportedError } from "../topology/refusals.ts";
import type { OnDdl } from "../contract/stream-rpc.ts";
import { TABLET_TYPES, type TabletType, type VDiffReport, type WorkflowAction, type WorkflowRequest, type WorkflowView } from "../contract/workflow-rpc.ts";
import { Backend } from "./backend.ts";
import { Deadline } from "./deadline.ts";

/** A workflow action waits on many tablets (a copy's start, a switch's drain, a VDiff chunk): it gets this long. */
const WORKFLOW_DEADLINE_MS = 60_000;

export function workflowExecutor(env: Env): Backend {
  return new Backend(env, new Deadline(WORKFLOW_DEADLINE_MS));
}

const ACTIONS: readonly WorkflowAction[] = ["create", "show", "vdiff", "switchtraffic", "reversetraffic", "complete", "cancel", "stop", "start"];
const ON_DDL: readonly OnDdl[] = ["ignore", "stop", "exec"];
/** Workflow names: as keyspace names (they appear in stream ids and Workflow instance ids). */
const NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

function own(o: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

function shardList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === "string")) {
    throw new VtError("INVALID_ARGUMENT", `"${what}" must be a non-empty list of key ranges such as ["-40", "40-80"]`);
  }
  return v as string[];
}

/** Vitess's `--tablet-types`: a list (or comma-separated text) of primary, replica, rdonly. */
function tabletTypes(v: unknown): TabletType[] {
  const list = typeof v === "string" ? v.split(",").map((t) => t.trim()) : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === "string" && TABLET_TYPES.includes(t as TabletType))) {
    throw new VtError("INVALID_ARGUMENT", `"tabletTypes" must be a non-empty list of ${TABLET_TYPES.join(", ")} (primary: writes; replica, rdonly: reads)`);
  }
  return [...new Set(list as TabletType[])];
}

/** A workflow request from a JSON body (or query string), checked field by field. */
export function decodeWorkflowRequest(body: Record<string, unknown>): WorkflowRequest {
  const known = new Set([
    "action",
    "keyspace",
    "workflow",
    "kind",
    "sourceShards",
    "targetShards",
    "sourceKeyspace",
    "tables",
    "onDdl",
    "autoSwitch",
    "tabletTypes",
  ]);
  for (const k of Object.keys(body)) if (!known.has(k)) throw new VtError("INVALID_ARGUMENT", `unknown field "${k}" in a workflow request`);
  const action = own(body, "action");
  if (typeof action !== "string" || !ACTIONS.includes(action as WorkflowAction)) {
    throw new VtError("INVALID_ARGUMENT", `"action" must be one of ${ACTIONS.join(", ")}`);
  }
  const keyspace = own(body, "keyspace");
  const workflow = own(body, "workflow");
  if (typeof keyspace !== "string" || keyspace === "") throw new VtError("INVALID_ARGUMENT", '"keyspace" must be a keyspace name');
  if (typeof workflow !== "string" || !NAME.test(workflow)) {
    throw new VtError("INVALID_ARGUMENT", '"workflow" must start with a letter and hold only letters, digits and _ (at most 63)');
  }
  if (action !== "create") {
    for (const k of ["kind", "sourceShards", "targetShards", "sourceKeyspace", "tables", "onDdl", "autoSwitch"]) {
      if (own(body, k) !== undefined) throw new VtError("INVALID_ARGUMENT", `"${k}" applies only to action "create"`);
    }
    const types = own(body, "tabletTypes");
    if (types === undefined) return { action: action as WorkflowAction, keyspace, workflow };
    if (action !== "switchtraffic" && action !== "reversetraffic") {
      throw new VtError("INVALID_ARGUMENT", '"tabletTypes" applies only to actions "switchtraffic" and "reversetraffic"');
    }
    return { action, keyspace, workflow, tabletTypes: tabletTypes(types) };
  }
  const kind = own(body, "kind") ?? "reshard";
  if (kind !== "reshard" && kind !== "movetables") {
    throw unsupportedError("VD1109", `workflow kind ${JSON.stringify(kind)}: only "reshard" and "movetables" exist`);
  }
  const onDdl = own(body, "onDdl") ?? "ignore";
  if (typeof onDdl !== "string" || !ON_DDL.includes(onDdl as OnDdl)) throw new VtError("INVALID_ARGUMENT", `"onDdl" must be one of ${ON_DDL.join(", ")}`);
  const autoSwitch = own(body, "autoSwitch") ?? false;
  if (typeof autoSwitch !== "boolean") throw new VtError("INVALID_ARGUMENT", '"autoSwitch" must be true or false');
  if (kind === "movetables") {
    for (const k of ["sourceShards", "targetShards"]) {
      if (own(body, k) !== undefined) throw new VtError("INVALID_ARGUMENT", `"${k}" applies only to kind "reshard"`);
    }
    const sourceKeyspace = own(body, "sourceKeyspace");
    const tables = own(body, "tables");
    if (typeof sourceKeyspace !== "string" || sourceKeyspace === "") throw new VtError("INVALID_ARGUMENT", '"sourceKeyspace" must be a keyspace name');
    if (!Array.isArray(tables) || tables.length === 0 || !tables.every((t) => typeof t === "string" && t !== "")) {
      throw new VtError("INVALID_ARGUMENT", '"tables" must be a non-empty list of table names such as ["customer", "corder"]');
    }
    return { action: "create", keyspace, workflow, kind, sourceKeyspace, tables: tables as string[], onDdl: onDdl as OnDdl, autoSwitch };
  }
  for (const k of ["sourceKeyspace", "tables"]) {
    if (own(body, k) !== undefined) throw new VtError("INVALID_ARGUMENT", `"${k}" applies only to kind "movetables"`);
  }
  return {
    action: "create",
    keyspace,
    workflow,
    kind: "reshard",
    sourceShards: shardList(own(body, "sourceShards"), "sourceShards"),
    targetShards: shardList(own(body, "targetShards"), "targetShards"),
    onDdl: onDdl as OnDdl,
    autoSwitch,
  };
}

/** A view or report as JSON (VDiff sample keys may hold 64-bit integers and BLOBs). */
export function encodeWorkflowAnswer(v: WorkflowView | VDiffReport): unknown {
  const report = (r: VDiffReport) => ({
    ...r,
    tables: r.tables.map((t) => ({ ...t, samples: t.samples.map((s) => ({ ...s, key: s.key.map(toJsonValue) })) })),
  });
  if ("match" in v) return report(v);
  return v.vdiff ? { ...v, vdiff: report(v.vdiff) } : v;
}

export async function runWorkflowRequest(backend: Backend, env: Env, req: WorkflowRequest): Promise<WorkflowView | VDiffReport> {
  const answer = await backend.topology(req.action !== "show", (t) => t.workflow(req));
  // This isolate plans with the graph the action made at once (others learn it from the tablets' refusals).
  if (req.action !== "show" && req.action !== "vdiff") await backend.graph(true);
  if (req.action === "create" && "streams" in answer) {
    // The runner only waits, compares and (with autoSwitch) switches; the streams move without it.
    try {
      await env.RESHARD_WORKFLOW.create({
        id: `${req.keyspace}-${req.workflow}-${Date.now().toString(36)}`,
        params: { keyspace: req.keyspace, workflow: req.workflow },
      });
    } catch (e) {
      console.warn(
        `workflow ${req.keyspace}.${req.workflow}: its runner did not start (${e instanceof Error ? e.message : String(e)}); switch with vtctl reshard switchtraffic`,
      );
    }
  }
  return answer;
}
