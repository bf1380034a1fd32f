// @ts-check
// vtctl's workflow commands: reshard and movetables (create, show, switchtraffic, reversetraffic,
// complete, cancel) and vdiff, over the gate's /v1/workflows. On a terminal `reshard create` follows the
// copy with a progress bar (rows copied / estimated, lag, phase) until the streams have caught up;
// `--json` prints the server's answers instead.

import { json } from "./command-kit.mjs";
import { list, record } from "./format.mjs";

/**
 * @typedef {{ server: string, token: string | undefined, json: boolean }} Context
 * @typedef {{ out: (text: string) => void, tty?: boolean, sleep?: (ms: number) => Promise<void> }} Output
 * @typedef {(ctx: Context, method: "GET" | "POST", path: string, body?: unknown) => Promise<unknown>} Call
 * @typedef {{ positionals: string[], flags: Map<string, string>, json: boolean, help: boolean }} Args
 */

export const RESHARD_VERBS = ["create", "show", "switchtraffic", "reversetraffic", "complete", "cancel", "stop", "start"];
export const WORKFLOW_FLAGS = ["keyspace", "workflow", "source-shards", "target-shards", "on-ddl", "auto-switch", "tablet-types"];
export const MOVETABLES_FLAGS = ["source", "target", "keyspace", "workflow", "tables", "on-ddl", "auto-switch", "tablet-types"];

/** @param {string} spec */
function shardList(spec) {
  return spec
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** @param {unknown} w */
export function renderWorkflow(w) {
  const r = record(w);
  const lines = [`workflow ${r.keyspace}.${r.workflow} (${r.kind}): ${r.state}`];
  if (r.kind === "movetables") lines.push(`  tables: ${list(r.tables).join(", ")} from keyspace ${r.sourceKeyspace}`);
  lines.push(
    `  sources: ${list(r.sources)
      .map((s) => record(s).shard)
      .join(", ")}`,
  );
  lines.push(
    `  targets: ${list(r.targets)
      .map((s) => record(s).shard)
      .join(", ")}`,
  );
  if (typeof r.reads === "string" && typeof r.writes === "string") lines.push(`  reads served by the ${r.reads}, writes by the ${r.writes}`);
  const total = typeof r.rowsTotal === "number" ? r.rowsTotal : null;
  // A completed or cancelled workflow has no streams left to count copied rows.
  const ended = (r.state === "completed" || r.state === "cancelled") && list(r.streams).length === 0;
  if (!ended) lines.push(`  copied: ${r.rowsCopied ?? 0}${total !== null ? ` / ~${total}` : ""} rows, lag ${r.lagMs ?? 0} ms`);
  for (const s of list(r.streams).map(record)) {
    const msg = s.message ? ` (${s.message})` : "";
    lines.push(`  stream ${s.id} → ${s.target}: ${s.phase}, ${s.rowsCopied} rows copied, lag ${s.lagMs} ms${msg}`);
  }
  if (typeof r.pauseMs === "number") lines.push(`  writes paused ${r.pauseMs} ms`);
  return `${lines.join("\n")}\n`;
}

/** @param {unknown} report */
export function renderVDiff(report) {
  const r = record(report);
  const tables = list(r.tables).map(record);
  const lines = [`vdiff ${r.keyspace}.${r.workflow}: ${r.match ? "no differences" : "DIFFERENCES FOUND"}`];
  for (const t of tables) {
    lines.push(`  ${t.table}: ${t.compared} compared, ${t.missing} missing, ${t.extra} extra, ${t.mismatched} mismatched`);
    for (const s of list(t.samples).map(record)) lines.push(`    ${s.kind} key ${JSON.stringify(s.key)}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * One line of progress: a bar of rows copied against the estimate, lag and phase.
 * @param {unknown} w
 */
export function progressLine(w) {
  const r = record(w);
  const copied = typeof r.rowsCopied === "number" ? r.rowsCopied : 0;
  const total = typeof r.rowsTotal === "number" && r.rowsTotal > 0 ? r.rowsTotal : null;
  const phases = [...new Set(list(r.streams).map((s) => String(record(s).phase)))].join("/") || String(r.state);
  const width = 30;
  const done = total === null ? 0 : Math.min(width, Math.round((copied / total) * width));
  const bar = total === null ? "" : `[${"#".repeat(done)}${".".repeat(width - done)}] `;
  return `${bar}${copied}${total === null ? "" : ` / ~${total}`} rows  lag ${r.lagMs ?? 0} ms  ${phases}`;
}

/** @param {unknown} w */
function caughtUp(w) {
  const streams = list(record(w).streams).map(record);
  return streams.length > 0 && streams.every((s) => s.phase === "running" && typeof s.lagMs === "number" && s.lagMs < 1000);
}

/** @param {unknown} w */
function stuck(w) {
  return list(record(w).streams)
    .map(record)
    .some((s) => s.phase === "stopped" || s.phase === "error");
}

/**
 * @param {Context} ctx
 * @param {Args} args
 * @param {Output} io
 * @param {Call} call
 * @param {(code: string, message: string) => Error} fail
 */
export async function reshardCommand(ctx, args, io, call, fail) {
  const verb = args.positionals[1];
  const usage = `reshard ${RESHARD_VERBS.join("|")} --keyspace K --workflow W`;
  if (verb === undefined || !RESHARD_VERBS.includes(verb) || args.positionals.length > 2) throw fail("INVALID_ARGUMENT", `usage: vtctl ${usage}`);
  const keyspace = args.flags.get("keyspace");
  const workflow = args.flags.get("workflow");
  if (!keyspace || !workflow) throw fail("INVALID_ARGUMENT", `--keyspace and --workflow are required: vtctl ${usage}`);
  if (verb === "show") {
    const w = await call(ctx, "GET", `/v1/workflows?keyspace=${encodeURIComponent(keyspace)}&workflow=${encodeURIComponent(workflow)}`);
    return io.out(ctx.json ? json(w) : renderWorkflow(w));
  }
  /** @type {Record<string, unknown>} */
  const body = { action: verb, keyspace, workflow };
  if (verb === "create") {
    const src = args.flags.get("source-shards");
    const dst = args.flags.get("target-shards");
    if (!src || !dst)
      throw fail(
        "INVALID_ARGUMENT",
        "--source-shards and --target-shards are required: vtctl reshard create --keyspace K --workflow W --source-shards -80 --target-shards -40,40-80",
      );
    body.kind = "reshard";
    body.sourceShards = shardList(src);
    body.targetShards = shardList(dst);
    const onDdl = args.flags.get("on-ddl");
    if (onDdl !== undefined) body.onDdl = onDdl;
    if (args.flags.has("auto-switch")) body.autoSwitch = true;
  } else if (args.flags.has("source-shards") || args.flags.has("target-shards") || args.flags.has("on-ddl") || args.flags.has("auto-switch")) {
    throw fail("INVALID_ARGUMENT", `vtctl reshard ${verb} takes only --keyspace and --workflow${TRAFFIC.includes(verb) ? " (and --tablet-types)" : ""}`);
  }
  tabletTypes(args, verb, body, fail);
  return follow(ctx, verb, keyspace, workflow, body, io, call);
}

const TRAFFIC = ["switchtraffic", "reversetraffic"];

/**
 * `--tablet-types primary|replica|rdonly,…` of switchtraffic / reversetraffic (as Vitess's): primary
 * moves writes, replica and rdonly move reads; the gate checks the names.
 * @param {Args} args
 * @param {string} verb
 * @param {Record<string, unknown>} body
 * @param {(code: string, message: string) => Error} fail
 */
function tabletTypes(args, verb, body, fail) {
  const spec = args.flags.get("tablet-types");
  if (spec === undefined) return;
  if (!TRAFFIC.includes(verb)) throw fail("INVALID_ARGUMENT", "--tablet-types applies only to switchtraffic and reversetraffic");
  body.tabletTypes = shardList(spec);
}

/**
 * Posts a workflow action and prints its answer; on a terminal a create follows the copy.
 * @param {Context} ctx
 * @param {string} verb
 * @param {string} keyspace
 * @param {string} workflow
 * @param {Record<string, unknown>} body
 * @param {Output} io
 * @param {Call} call
 */
async function follow(ctx, verb, keyspace, workflow, body, io, call) {
  let w = await call(ctx, "POST", "/v1/workflows", body);
  if (ctx.json) return io.out(json(w));
  if (verb !== "create" || !io.tty) return io.out(renderWorkflow(w));
  // Follow the copy until the streams have caught up (or one stopped): a live line on the terminal.
  const sleep = io.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  for (;;) {
    io.out(`\r\x1b[K${progressLine(w)}`);
    if (caughtUp(w) || stuck(w)) break;
    await sleep(500);
    w = await call(ctx, "GET", `/v1/workflows?keyspace=${encodeURIComponent(keyspace)}&workflow=${encodeURIComponent(workflow)}`);
  }
  io.out(`\n${renderWorkflow(w)}`);
}

/**
 * `movetables create --source K1 --target K2 --workflow W --tables t1,t2`, and the other verbs with
 * `--target K2 --workflow W` (the workflow lives in its target keyspace; `--keyspace` says the same).
 * @param {Context} ctx
 * @param {Args} args
 * @param {Output} io
 * @param {Call} call
 * @param {(code: string, message: string) => Error} fail
 */
export async function moveTablesCommand(ctx, args, io, call, fail) {
  const verb = args.positionals[1];
  const usage = `movetables ${RESHARD_VERBS.join("|")} --target K2 --workflow W (create: --source K1 --tables t1,t2)`;
  if (verb === undefined || !RESHARD_VERBS.includes(verb) || args.positionals.length > 2) throw fail("INVALID_ARGUMENT", `usage: vtctl ${usage}`);
  const keyspace = args.flags.get("target") ?? args.flags.get("keyspace");
  const workflow = args.flags.get("workflow");
  if (!keyspace || !workflow) throw fail("INVALID_ARGUMENT", `--target and --workflow are required: vtctl ${usage}`);
  if (verb === "show") {
    const w = await call(ctx, "GET", `/v1/workflows?keyspace=${encodeURIComponent(keyspace)}&workflow=${encodeURIComponent(workflow)}`);
    return io.out(ctx.json ? json(w) : renderWorkflow(w));
  }
  /** @type {Record<string, unknown>} */
  const body = { action: verb, keyspace, workflow };
  if (verb === "create") {
    const source = args.flags.get("source");
    const tables = args.flags.get("tables");
    if (!source || !tables)
      throw fail("INVALID_ARGUMENT", "--source and --tables are required: vtctl movetables create --source K1 --target K2 --workflow W --tables t1,t2");
    body.kind = "movetables";
    body.sourceKeyspace = source;
    body.tables = shardList(tables);
    const onDdl = args.flags.get("on-ddl");
    if (onDdl !== undefined) body.onDdl = onDdl;
    if (args.flags.has("auto-switch")) body.autoSwitch = true;
  } else if (["source", "tables", "on-ddl", "auto-switch"].some((f) => args.flags.has(f))) {
    throw fail("INVALID_ARGUMENT", `vtctl movetables ${verb} takes only --target and --workflow`);
  }
  tabletTypes(args, verb, body, fail);
  return follow(ctx, verb, keyspace, workflow, body, io, call);
}

/**
 * @param {Context} ctx
 * @param {Args} args
 * @param {Output} io
 * @param {Call} call
 * @param {(code: string, message: string) => Error} fail
 */
export async function vdiffCommand(ctx, args, io, call, fail) {
  const keyspace = args.flags.get("keyspace");
  const workflow = args.flags.get("workflow");
  if (args.positionals.length > 1 || !keyspace || !workflow) throw fail("INVALID_ARGUMENT", "usage: vtctl vdiff --keyspace K --workflow W");
  // A VDiff runs in chunks: each call goes on where the last stopped, until it says it is done.
  let report = await call(ctx, "POST", "/v1/workflows", { action: "vdiff", keyspace, workflow });
  for (let i = 0; !record(report).done && i < 100_000; i++) {
    if (io.tty && !ctx.json)
      io.out(`\r\x1b[Kcomparing… ${list(record(report).tables).reduce((/** @type {number} */ n, t) => n + Number(record(t).compared ?? 0), 0)} rows`);
    report = await call(ctx, "POST", "/v1/workflows", { action: "vdiff", keyspace, workflow });
  }
  if (io.tty && !ctx.json) io.out("\r\x1b[K");
  io.out(ctx.json ? json(report) : renderVDiff(report));
}
