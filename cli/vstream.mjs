// @ts-check
// `vtctl vstream --keyspace K [--tables t1,t2] [--from now|start|<token>] [--limit N]`: the
// keyspace's changes from GET /v1/vstream, printed one event per line as the server's JSON
// (values in the HTTP encoding). Resume with --from and the token of the last COMMIT printed.
// It runs until interrupted, or until --limit events other than HEARTBEAT have been printed.

/**
 * @typedef {{ server: string, token: string | undefined, json: boolean }} Context
 * @typedef {{ positionals: string[], flags: Map<string, string>, json: boolean, help: boolean }} Args
 * @typedef {{ out: (text: string) => void }} Output
 */

export const VSTREAM_FLAGS = ["keyspace", "tables", "from", "limit", "heartbeat-ms"];

/**
 * @param {Context} ctx
 * @param {Args} args
 * @param {Output} io
 * @param {(code: string, message: string) => Error} fail
 */
export async function vstreamCommand(ctx, args, io, fail) {
  if (args.positionals.length > 1) throw fail("INVALID_ARGUMENT", "usage: vtctl vstream --keyspace K [--tables t1,t2] [--from now|start|<token>] [--limit N]");
  const limitText = args.flags.get("limit");
  const limit = limitText === undefined ? Number.POSITIVE_INFINITY : Number(limitText);
  if (!(limit === Number.POSITIVE_INFINITY || (Number.isInteger(limit) && limit > 0))) throw fail("INVALID_ARGUMENT", "--limit must be a whole number above 0");
  const q = new URLSearchParams();
  /** @type {[string, string][]} */
  const names = [
    ["keyspace", "keyspace"],
    ["tables", "tables"],
    ["from", "from"],
    ["heartbeat-ms", "heartbeatMs"],
  ];
  for (const [flag, param] of names) {
    const v = args.flags.get(flag);
    if (v !== undefined) q.set(param, v);
  }
  /** @type {Record<string, string>} */
  const headers = { accept: "text/event-stream" };
  if (ctx.token) headers["authorization"] = `Bearer ${ctx.token}`;
  const abort = new AbortController();
  let res;
  try {
    res = await fetch(`${ctx.server}/v1/vstream?${q}`, { headers, signal: abort.signal });
  } catch (e) {
    throw fail("INTERNAL", `cannot reach the server at ${ctx.server} (${e instanceof Error ? e.message : String(e)}); is it running (npm run dev)?`);
  }
  if (!res.ok || !res.body) {
    const body = await res.json().catch(() => ({}));
    const err = body && typeof body === "object" && "error" in body ? /** @type {Record<string, unknown>} */ (body.error) : {};
    throw fail(typeof err.code === "string" ? err.code : "INTERNAL", typeof err.message === "string" ? err.message : `HTTP ${res.status}`);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let printed = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw fail("NOT_SERVING", "the server ended the stream; resume with --from and the last token");
      buf += decoder.decode(value, { stream: true });
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const lines = buf.slice(0, i).split("\n");
        buf = buf.slice(i + 2);
        const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
        const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
        if (data === undefined) continue;
        if (event === "ERROR") {
          const err = JSON.parse(data).error ?? {};
          throw fail(typeof err.code === "string" ? err.code : "INTERNAL", typeof err.message === "string" ? err.message : "the stream failed");
        }
        io.out(`${data}\n`);
        if (event !== "HEARTBEAT" && ++printed >= limit) return;
      }
    }
  } finally {
    abort.abort();
  }
}
