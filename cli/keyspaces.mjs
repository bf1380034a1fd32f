// @ts-check
// vtctl's keyspace commands over the gate's HTTP API: create (with a number of equal shards or
// explicit key ranges) and retention (the binlog retention setting: show it, or set its window,
// byte budget and hold age).

import { json, positionals, required } from "./command-kit.mjs";
import { list, record } from "./format.mjs";

/**
 * @typedef {{ server: string, token: string | undefined, json: boolean }} Context
 * @typedef {{ out: (text: string) => void }} Output
 * @typedef {(ctx: Context, method: "GET" | "POST", path: string, body?: unknown) => Promise<unknown>} Call
 * @typedef {import("./command-kit.mjs").Args} Args
 * @typedef {import("./command-kit.mjs").Fail} Fail
 */

export const KEYSPACE_FLAGS = ["shards", "seconds", "bytes", "hold-seconds"];

/** @param {number} n */
function humanSeconds(n) {
  for (const [unit, s] of /** @type {const} */ ([
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
  ]))
    if (n >= s && n % s === 0) return `${n / s}${unit}`;
  return `${n}s`;
}

/** @param {number} n */
function humanBytes(n) {
  for (const [unit, b] of /** @type {const} */ ([
    ["TiB", 1024 ** 4],
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
  ])) {
    if (n >= b && n % b === 0) return `${n / b} ${unit}`;
  }
  return `${n} B`;
}

/** `keyspace retention K [--seconds N] [--bytes N] [--hold-seconds N|default]`: shows the setting without flags, sets it with them. */
/** @param {Context} ctx @param {Args} args @param {Output} io @param {Call} call @param {Fail} fail */
async function retentionCommand(ctx, args, io, call, fail) {
  const usage = "keyspace retention K [--seconds N] [--bytes N] [--hold-seconds N|default]";
  const [, keyspace = ""] = positionals(args, 2, usage, fail);
  if (args.flags.has("shards")) throw fail("INVALID_ARGUMENT", `--shards does not apply to vtctl keyspace retention: vtctl ${usage}`);
  /** @type {Record<string, unknown>} */
  const change = {};
  for (const { flag, field } of [
    { flag: "seconds", field: "retentionSeconds" },
    { flag: "bytes", field: "retentionBytes" },
    { flag: "hold-seconds", field: "holdSeconds" },
  ]) {
    const v = args.flags.get(flag);
    if (v === undefined) continue;
    if (flag === "hold-seconds" && v === "default") {
      change[field] = null;
      continue;
    }
    if (!/^\d+$/.test(v)) throw fail("INVALID_ARGUMENT", `--${flag} must be a whole number, not ${JSON.stringify(v)}`);
    change[field] = Number(v);
  }
  const res =
    Object.keys(change).length === 0
      ? await call(ctx, "GET", `/v1/retention?keyspace=${encodeURIComponent(keyspace)}`)
      : await call(ctx, "POST", "/v1/retention", { keyspace, ...change });
  if (ctx.json) return io.out(json(res));
  const r = record(res);
  const seconds = Number(r.retentionSeconds);
  const bytes = Number(r.retentionBytes);
  const hold = typeof r.holdSeconds === "number" ? `; a reader's hold kept ${humanSeconds(r.holdSeconds)} (${r.holdSeconds} s) after it stops advancing` : "";
  io.out(
    `keyspace ${keyspace}: binlog kept ${humanSeconds(seconds)} (${seconds} s) and up to ${humanBytes(bytes)} (${bytes} bytes) per tablet${r.isDefault === true ? " (the default)" : ""}${hold}\n`,
  );
}

/** @param {Context} ctx @param {Args} args @param {Output} io @param {Call} call @param {Fail} fail */
export async function keyspaceCommand(ctx, args, io, call, fail) {
  if (args.positionals[1] === "retention") return retentionCommand(ctx, args, io, call, fail);
  const usage = "keyspace create K --shards 4 | --shards -80,80- | keyspace retention K [--seconds N] [--bytes N] [--hold-seconds N|default]";
  if (args.positionals[1] !== "create") throw fail("INVALID_ARGUMENT", `usage: vtctl ${usage}`);
  for (const flag of ["seconds", "bytes", "hold-seconds"]) {
    if (args.flags.has(flag)) throw fail("INVALID_ARGUMENT", `--${flag} does not apply to vtctl keyspace create (set it with vtctl keyspace retention)`);
  }
  const [, name] = positionals(args, 2, usage, fail);
  const spec = required(args, "shards", usage, fail);
  /** @type {number | string[]} */
  let shards;
  if (/^\d+$/.test(spec)) {
    shards = Number(spec);
    if (shards < 1) throw fail("INVALID_ARGUMENT", "--shards must be at least 1");
  } else {
    shards = spec.split(",").map((s) => s.trim());
    const bad = shards.find((s) => !/^[0-9a-fA-F]*-[0-9a-fA-F]*$/.test(s));
    if (bad !== undefined) {
      throw fail("INVALID_ARGUMENT", `--shards: ${JSON.stringify(bad)} is not a key range like -80, 40-80 or 80- (or give a number of shards)`);
    }
  }
  const topo = await call(ctx, "POST", "/v1/keyspaces", { name, shards });
  if (ctx.json) return io.out(json(topo));
  const ks = list(record(topo).keyspaces)
    .map(record)
    .find((k) => k.name === name);
  const names = list(ks?.shards)
    .map((s) => String(record(s).name))
    .join(", ");
  io.out(`created keyspace ${name}${names ? ` with shards ${names}` : ""}\n`);
}
