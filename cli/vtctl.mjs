#!/usr/bin/env node
// @ts-check
// vtctl: the admin command line of vitess-do (⚑ vtctl in DESIGN.md). Plain ESM JavaScript with
// no dependencies beyond Node built-ins, so it runs on Node >= 20 without a build step. It talks
// to the gate's HTTP API (/v1/...) with fetch.

import { realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { record, renderResult, renderTopology } from "./format.mjs";
import { MOVETABLES_FLAGS, moveTablesCommand, reshardCommand, vdiffCommand, WORKFLOW_FLAGS } from "./workflows.mjs";
import { VSTREAM_FLAGS, vstreamCommand } from "./vstream.mjs";
import { SUBSCRIPTION_FLAGS, subscriptionCommand } from "./subscriptions.mjs";
import { json, positionals, required } from "./command-kit.mjs";
import { KEYSPACE_FLAGS, keyspaceCommand } from "./keyspaces.mjs";

const DEFAULT_SERVER = "http://127.0.0.1:8787";

const USAGE = `vtctl: the admin command line of vitess-do

Usage: vtctl <command> [flags]

Commands:
  sql "<statement>" [--keyspace K] [--params '<json array|object>']
                                       run one SQL statement and print its rows
  topology                             keyspaces, shards (keyRange, serving, rowCount, bytes),
                                       serving graph version, workflows
  keyspace create K --shards 4         create keyspace K with 4 equal shards
  keyspace create K --shards -80,80-   ... or with these key ranges
  keyspace retention K [--seconds N] [--bytes N] [--hold-seconds N|default]
                                       show keyspace K's binlog retention, or set its time
                                       window (seconds) and size budget (bytes) per tablet, and
                                       how long a reader that stopped advancing keeps its hold
  vschema apply K --file vschema.json  set keyspace K's vschema
  vschema show K                       print keyspace K's vschema

  reshard create --keyspace K --workflow W --source-shards -80 --target-shards -40,40-80
                 [--on-ddl ignore|stop|exec] [--auto-switch]
                                       start moving shard -80's rows onto -40 and 40-80 (copy,
                                       then follow its changes); on a terminal, follow the copy
  reshard show|switchtraffic|reversetraffic|complete|cancel --keyspace K --workflow W
                                       progress; move writes and reads to the targets (a pause of
                                       milliseconds); move them back; retire the sources; give up
  reshard switchtraffic|reversetraffic ... --tablet-types replica,rdonly
                                       move only the reads (primary: only the writes)
  reshard stop|start --keyspace K --workflow W
                                       stop the streams where they stand; let them go on
  movetables create --source K1 --target K2 --workflow W --tables t1,t2
                 [--on-ddl ignore|stop|exec] [--auto-switch]
                                       start moving tables t1, t2 from keyspace K1 into K2
  movetables show|switchtraffic|reversetraffic|complete|cancel --target K2 --workflow W
                                       as reshard; complete drops the tables from K1
  vdiff --keyspace K --workflow W      compare the sources' rows with the targets'

  vstream --keyspace K [--tables t1,t2] [--from now|start|<token>] [--limit N]
                                       print the keyspace's changes as JSON lines, resumable
                                       with --from and a COMMIT's token

  subscription create --keyspace K --name N --binding B [--tables t1,t2] [--from now|start|<token>]
                                       publish the keyspace's changes to the Worker's Queue
                                       producer binding B (from now, start, or a VStream token)
  subscription update --name N --tables t1,t2|'*'
                                       publish these tables ('*': every table) from the next
                                       round on; the chains go on, the consumer changes nothing
  subscription show [--name N]         subscriptions with lag, messages sent, last error
  subscription delete --name N         stop publishing and release the binlog it held

Global flags (anywhere on the line):
  --server URL   the gate (default: $VTCTL_SERVER, else ${DEFAULT_SERVER})
  --token T      bearer token (default: $VTCTL_TOKEN)
  --json         print the server's JSON instead of tables
  -h, --help     print this text

Values print as: NULL, numbers (64-bit integers exactly), text, BLOBs as x'hex'.
Exit status: 0 on success, 1 on an error, printed on stderr as <CODE>: <message>.
`;

/** Flags that take a value (`--flag value` or `--flag=value`); the value may start with "-". */
const VALUE_FLAGS = new Set([
  "server",
  "token",
  "keyspace",
  "params",
  "shards",
  "file",
  // for the commands that are not yet available
  "workflow",
  "source",
  "target",
  "tables",
  "from",
  "source-shards",
  "target-shards",
  "on-ddl",
  "tablet-types",
  "limit",
  "heartbeat-ms",
  "seconds",
  "bytes",
  "hold-seconds",
  "name",
  "binding",
]);
const BOOLEAN_FLAGS = new Set(["json", "help", "auto-switch"]);

/** An error with a catalogue code (the server's, or INVALID_ARGUMENT / INTERNAL for local ones). */
class CliError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ position?: number, statementIndex?: number }} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.code = code;
    this.position = extra.position;
    this.statementIndex = extra.statementIndex;
  }
}

/**
 * @typedef {{ positionals: string[], flags: Map<string, string>, json: boolean, help: boolean }} Args
 * @typedef {{ server: string, token: string | undefined, json: boolean }} Context
 * @typedef {{ out: (text: string) => void, tty?: boolean }} Output
 */

/**
 * @param {string[]} argv
 * @returns {Args}
 */
export function parseArgs(argv) {
  /** @type {Args} */
  const args = { positionals: [], flags: new Map(), json: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      args.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      args.help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      args.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (BOOLEAN_FLAGS.has(name)) {
      if (eq >= 0) throw new CliError("INVALID_ARGUMENT", `--${name} takes no value`);
      if (name === "json") args.json = true;
      else if (name === "help") args.help = true;
      else args.flags.set(name, "true");
    } else if (VALUE_FLAGS.has(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new CliError("INVALID_ARGUMENT", `--${name} needs a value`);
      args.flags.set(name, value);
    } else {
      throw new CliError("INVALID_ARGUMENT", `unknown flag --${name} (see vtctl --help)`);
    }
  }
  return args;
}

// ---- HTTP ----

/** @param {unknown} e */
function reason(e) {
  if (!(e instanceof Error)) return String(e);
  const cause = /** @type {{ cause?: unknown }} */ (e).cause;
  // Node's fetch says "fetch failed"; ECONNREFUSED and friends are in the cause.
  if (cause instanceof Error && cause.message && cause.message !== e.message) return `${e.message}: ${cause.message}`;
  return e.message;
}

/**
 * Sends one request to the gate and returns its JSON; a non-2xx answer becomes a CliError
 * carrying the server's code.
 * @param {Context} ctx
 * @param {"GET" | "POST"} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<unknown>}
 */
async function call(ctx, method, path, body) {
  const url = ctx.server + path;
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (ctx.token) headers["authorization"] = `Bearer ${ctx.token}`;
  /** @type {Response} */
  let res;
  let text;
  try {
    res = await fetch(url, body === undefined ? { method, headers } : { method, headers, body: JSON.stringify(body) });
    text = await res.text();
  } catch (e) {
    throw new CliError(
      "INTERNAL",
      `cannot reach the server at ${ctx.server} (${reason(e)}); is it running (npm run dev)? Set it with --server or VTCTL_SERVER`,
    );
  }
  /** @type {unknown} */
  let json;
  try {
    json = text === "" ? null : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = record(record(json).error);
    if (typeof err.code === "string") {
      /** @type {{ position?: number, statementIndex?: number }} */
      const extra = {};
      if (typeof err.position === "number") extra.position = err.position;
      if (typeof err.statementIndex === "number") extra.statementIndex = err.statementIndex;
      throw new CliError(err.code, typeof err.message === "string" ? err.message : `${res.status} ${res.statusText}`, extra);
    }
    throw new CliError("INTERNAL", `${method} ${url} answered ${res.status} ${res.statusText}${text ? `: ${text.trim().slice(0, 200)}` : ""}`);
  }
  if (json === undefined) throw new CliError("INTERNAL", `${method} ${url} answered with something that is not JSON: ${text.slice(0, 200)}`);
  return json;
}

/** @param {unknown} v */

// ---- commands ----

/**
 * @param {Context} ctx
 * @param {Args} args
 * @param {Output} io
 */
async function sqlCommand(ctx, args, io) {
  const usage = `sql "<statement>" [--keyspace K] [--params '<json array|object>']`;
  if (args.positionals.length > 2) throw new CliError("INVALID_ARGUMENT", `quote the statement as one argument: vtctl ${usage}`);
  const [sql] = positionals(args, 1, usage, fail);
  /** @type {Record<string, unknown>} */
  const body = { sql };
  const keyspace = args.flags.get("keyspace");
  if (keyspace !== undefined) body.keyspace = keyspace;
  const params = args.flags.get("params");
  if (params !== undefined) {
    try {
      body.params = JSON.parse(params);
    } catch (e) {
      throw new CliError("INVALID_ARGUMENT", `--params is not JSON: ${reason(e)}`);
    }
    if (typeof body.params !== "object" || body.params === null) {
      throw new CliError("INVALID_ARGUMENT", `--params must be a JSON array (positional) or object (named), e.g. '[1, "a", {"int": "9007199254740993"}]'`);
    }
  }
  const rs = await call(ctx, "POST", "/v1/sql", body);
  io.out(ctx.json ? json(rs) : renderResult(rs));
}

/** @param {Context} ctx @param {Args} args @param {Output} io */
async function topologyCommand(ctx, args, io) {
  positionals(args, 0, "topology", fail);
  const topo = await call(ctx, "GET", "/v1/topology");
  io.out(ctx.json ? json(topo) : renderTopology(topo));
}

/** @param {Context} ctx @param {Args} args @param {Output} io */
async function vschemaCommand(ctx, args, io) {
  const verb = args.positionals[1];
  if (verb === "apply") {
    const usage = "vschema apply K --file vschema.json";
    const [, keyspace = ""] = positionals(args, 2, usage, fail);
    const file = required(args, "file", usage, fail);
    let text;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new CliError("INVALID_ARGUMENT", `cannot read ${file}: ${reason(e)}`);
    }
    let vschema;
    try {
      vschema = JSON.parse(text);
    } catch (e) {
      throw new CliError("INVALID_ARGUMENT", `${file} is not JSON: ${reason(e)}`);
    }
    const res = await call(ctx, "POST", "/v1/vschema", { keyspace, vschema });
    io.out(ctx.json ? json(res) : `applied vschema to keyspace ${keyspace}\n`);
  } else if (verb === "show") {
    const [, keyspace = ""] = positionals(args, 2, "vschema show K", fail);
    const res = await call(ctx, "GET", `/v1/vschema?keyspace=${encodeURIComponent(keyspace)}`);
    io.out(json(ctx.json ? res : (record(res).vschema ?? null)));
  } else {
    throw new CliError("INVALID_ARGUMENT", "usage: vtctl vschema apply K --file vschema.json | vtctl vschema show K");
  }
}

/** @type {Record<string, { run: (ctx: Context, args: Args, io: Output) => Promise<void>, flags: string[] }>} */
const COMMANDS = {
  sql: { run: sqlCommand, flags: ["keyspace", "params"] },
  topology: { run: topologyCommand, flags: [] },
  keyspace: { run: (ctx, args, io) => keyspaceCommand(ctx, args, io, call, fail), flags: KEYSPACE_FLAGS },
  vschema: { run: vschemaCommand, flags: ["file"] },
  reshard: { run: (ctx, args, io) => reshardCommand(ctx, args, io, call, fail), flags: WORKFLOW_FLAGS },
  movetables: { run: (ctx, args, io) => moveTablesCommand(ctx, args, io, call, fail), flags: MOVETABLES_FLAGS },
  vdiff: { run: (ctx, args, io) => vdiffCommand(ctx, args, io, call, fail), flags: ["keyspace", "workflow"] },
  vstream: { run: (ctx, args, io) => vstreamCommand(ctx, args, io, fail), flags: VSTREAM_FLAGS },
  subscription: { run: (ctx, args, io) => subscriptionCommand(ctx, args, io, call, fail), flags: SUBSCRIPTION_FLAGS },
};

/** @param {string} code @param {string} message */
const fail = (code, message) => new CliError(code, message);
const GLOBAL_FLAGS = ["server", "token"];

/** @param {string | undefined} raw */
function serverUrl(raw) {
  const value = raw === undefined || raw === "" ? DEFAULT_SERVER : raw;
  let url;
  try {
    url = new URL(value);
  } catch {
    throw new CliError("INVALID_ARGUMENT", `--server ${JSON.stringify(value)} is not a URL (e.g. ${DEFAULT_SERVER})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError("INVALID_ARGUMENT", `--server must be an http(s) URL, not ${value}`);
  }
  return value.replace(/\/+$/, "");
}

/**
 * Runs one command line. Returns the exit status; prints through `io`.
 * @param {string[]} argv
 * @param {NodeJS.ProcessEnv} env
 * @param {{ out: (s: string) => void, err: (s: string) => void, tty?: boolean }} io
 * @returns {Promise<number>}
 */
export async function main(argv, env, io) {
  /** @type {Args | undefined} */
  let args;
  try {
    args = parseArgs(argv);
    const command = args.positionals[0];
    if (args.help || command === "help") {
      io.out(USAGE);
      return 0;
    }
    if (command === undefined) throw new CliError("INVALID_ARGUMENT", "no command given (see vtctl --help)");
    const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (spec === undefined) throw new CliError("INVALID_ARGUMENT", `unknown command ${JSON.stringify(command)} (see vtctl --help)`);
    for (const flag of args.flags.keys()) {
      if (!GLOBAL_FLAGS.includes(flag) && !spec.flags.includes(flag)) {
        throw new CliError("INVALID_ARGUMENT", `--${flag} does not apply to vtctl ${command} (see vtctl --help)`);
      }
    }
    const ctx = { server: serverUrl(args.flags.get("server") ?? env.VTCTL_SERVER), token: args.flags.get("token") ?? env.VTCTL_TOKEN, json: args.json };
    await spec.run(ctx, args, io);
    return 0;
  } catch (e) {
    io.err(describeError(e, args));
    return 1;
  }
}

/**
 * `<CODE>: <message>`, then for a SQL error with a position the statement with a caret under it.
 * @param {unknown} e
 * @param {Args | undefined} args
 */
function describeError(e, args) {
  if (!(e instanceof CliError)) return `INTERNAL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
  let text = `${e.code}: ${e.message}`;
  if (e.statementIndex !== undefined) text += ` (statement ${e.statementIndex})`;
  if (e.position !== undefined) {
    text += ` (position ${e.position})`;
    const sql = args?.positionals[0] === "sql" ? args.positionals[1] : undefined;
    if (sql !== undefined && !sql.includes("\n") && e.position >= 0 && e.position <= sql.length) {
      text += `\n  ${sql}\n  ${" ".repeat(e.position)}^`;
    }
  }
  return `${text}\n`;
}

/** True when this file is the program (node cli/vtctl.mjs, npx vtctl via a .bin link), not an import. */
function isMain() {
  const invokedAs = process.argv[1];
  if (invokedAs === undefined) return false;
  try {
    return realpathSync(invokedAs) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2), process.env, {
    tty: process.stdout.isTTY === true,
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`INTERNAL: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
