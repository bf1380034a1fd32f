// @ts-check
// What vtctl's command modules share: the checks of a command line's positionals and required
// flags, and the JSON they print with --json.

/**
 * @typedef {{ positionals: string[], flags: Map<string, string>, json: boolean, help: boolean }} Args
 * @typedef {(code: string, message: string) => Error} Fail
 */

/** @param {unknown} v */
export const json = (v) => `${JSON.stringify(v, null, 2)}\n`;

/**
 * The `count` positionals after the command's first word (none empty), or the usage as INVALID_ARGUMENT.
 * @param {Args} args
 * @param {number} count
 * @param {string} usage
 * @param {Fail} fail
 */
export function positionals(args, count, usage, fail) {
  const rest = args.positionals.slice(1);
  if (rest.length !== count || rest.some((p) => p === "")) throw fail("INVALID_ARGUMENT", `usage: vtctl ${usage}`);
  return rest;
}

/**
 * The value of flag `--name`, which the command needs.
 * @param {Args} args
 * @param {string} name
 * @param {string} usage
 * @param {Fail} fail
 */
export function required(args, name, usage, fail) {
  const v = args.flags.get(name);
  if (v === undefined || v === "") throw fail("INVALID_ARGUMENT", `--${name} is required: vtctl ${usage}`);
  return v;
}
