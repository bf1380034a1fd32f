// @ts-check
// vtctl's queue subscription commands over the gate's /v1/subscriptions: create (from now, start or
// a token, onto a Queue producer binding of the Worker), update (its tables, in place), show (each
// with its publisher's lag, messages and last error) and delete (stops the publisher and releases
// its binlog holds).

import { json, required } from "./command-kit.mjs";
import { formatValue, list, record, renderTable } from "./format.mjs";

/**
 * @typedef {{ server: string, token: string | undefined, json: boolean }} Context
 * @typedef {{ out: (text: string) => void }} Output
 * @typedef {(ctx: Context, method: "GET" | "POST", path: string, body?: unknown) => Promise<unknown>} Call
 * @typedef {{ positionals: string[], flags: Map<string, string>, json: boolean, help: boolean }} Args
 * @typedef {(code: string, message: string) => Error} Fail
 */

export const SUBSCRIPTION_FLAGS = ["keyspace", "name", "binding", "tables", "from"];

const USAGE = {
  create: "subscription create --keyspace K --name N --binding B [--tables t1,t2] [--from now|start|<token>]",
  update: "subscription update --name N --tables t1,t2|'*'",
  show: "subscription show [--name N] [--json]",
  delete: "subscription delete --name N",
};

/** @param {unknown} v */
function lag(v) {
  return typeof v === "number" ? `${v} ms` : "-";
}

/**
 * One line per subscription: name, keyspace, tables, binding, running, published, messages, lag, last error.
 * @param {unknown[]} subs
 */
export function renderSubscriptions(subs) {
  const rows = subs.map(record).map((s) => {
    const st = record(s.status);
    const err = record(st.lastError);
    return [
      s.name,
      s.keyspace,
      s.tables === null || s.tables === undefined ? "(all)" : list(s.tables).join(","),
      s.binding,
      s.status === null || s.status === undefined ? "?" : st.running ? (st.copying ? "copying" : "yes") : "no",
      st.published ?? null,
      st.messages ?? null,
      lag(st.lagMs),
      typeof err.code === "string" ? `${err.code}: ${formatValue(err.message)}` : "",
    ];
  });
  if (rows.length === 0) return "no subscriptions\n";
  return renderTable(["name", "keyspace", "tables", "binding", "running", "published", "messages", "lag", "last error"], rows);
}

/**
 * @param {string} tables
 * @param {Fail} fail
 */
function tableList(tables, fail) {
  const names = tables
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  if (names.length === 0) throw fail("INVALID_ARGUMENT", "--tables needs at least one table name, e.g. --tables users,orders");
  return names;
}

/**
 * @param {Context} ctx
 * @param {Args} args
 * @param {Output} io
 * @param {Call} call
 * @param {Fail} fail
 */
export async function subscriptionCommand(ctx, args, io, call, fail) {
  const verb = args.positionals[1];
  if (verb !== "create" && verb !== "update" && verb !== "show" && verb !== "delete") {
    throw fail("INVALID_ARGUMENT", `usage: vtctl ${USAGE.create} | vtctl ${USAGE.update} | vtctl ${USAGE.show} | vtctl ${USAGE.delete}`);
  }
  const usage = USAGE[verb];
  if (args.positionals.length > 2) throw fail("INVALID_ARGUMENT", `usage: vtctl ${usage}`);
  const allowed = verb === "create" ? SUBSCRIPTION_FLAGS : verb === "update" ? ["name", "tables"] : ["name"];
  for (const flag of args.flags.keys()) {
    if (SUBSCRIPTION_FLAGS.includes(flag) && !allowed.includes(flag)) throw fail("INVALID_ARGUMENT", `--${flag} does not apply to vtctl subscription ${verb}`);
  }
  if (verb === "create") {
    /** @type {Record<string, unknown>} */
    const body = {
      action: "create",
      keyspace: required(args, "keyspace", usage, fail),
      name: required(args, "name", usage, fail),
      binding: required(args, "binding", usage, fail),
    };
    const tables = args.flags.get("tables");
    if (tables !== undefined) body.tables = tableList(tables, fail);
    const from = args.flags.get("from");
    if (from !== undefined) {
      if (from === "") throw fail("INVALID_ARGUMENT", "--from needs now or a resume token");
      body.from = from;
    }
    const res = await call(ctx, "POST", "/v1/subscriptions", body);
    if (ctx.json) return io.out(json(res));
    const r = record(res);
    const token = record(r.status).token;
    io.out(`created subscription ${r.name} of keyspace ${r.keyspace} onto ${r.binding}${typeof token === "string" ? `, from ${token}` : ""}\n`);
    return;
  }
  if (verb === "update") {
    const name = required(args, "name", usage, fail);
    const tables = required(args, "tables", usage, fail);
    const res = await call(ctx, "POST", "/v1/subscriptions", { action: "update", name, tables: tables.trim() === "*" ? null : tableList(tables, fail) });
    if (ctx.json) return io.out(json(res));
    const r = record(res);
    const now = r.tables === null || r.tables === undefined ? "every table" : list(r.tables).join(",");
    io.out(`updated subscription ${name}: it publishes ${now} from its next round on\n`);
    return;
  }
  if (verb === "show") {
    const name = args.flags.get("name");
    const res = await call(ctx, "GET", `/v1/subscriptions${name !== undefined ? `?name=${encodeURIComponent(name)}` : ""}`);
    io.out(ctx.json ? json(res) : renderSubscriptions(list(record(res).subscriptions)));
    return;
  }
  const name = required(args, "name", usage, fail);
  const res = await call(ctx, "POST", "/v1/subscriptions", { action: "delete", name });
  if (ctx.json) return io.out(json(res));
  const r = record(res);
  io.out(
    r.stopped === true
      ? `deleted subscription ${name}: its publisher stopped and released its binlog holds\n`
      : `deleted subscription ${name}: its publisher did not answer; it stops by itself within seconds\n`,
  );
}
