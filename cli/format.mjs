// @ts-check
// How vtctl shows results on a terminal: MySQL-client style tables, values in the ⚑ HTTP JSON
// encoding decoded for reading ({"int"} as its decimal, {"base64"} as x'hex').

/**
 * One value as the table shows it: {"int"} as its decimal, {"base64"} as x'hex'.
 * @param {unknown} v
 * @returns {string}
 */
export function formatValue(v) {
  if (v === null || v === undefined) return "NULL";
  if (typeof v === "object" && !Array.isArray(v)) {
    const o = /** @type {Record<string, unknown>} */ (v);
    if (typeof o.int === "string") return o.int;
    if (typeof o.base64 === "string") return `x'${Buffer.from(o.base64, "base64").toString("hex")}'`;
    if (typeof o.real === "string") return o.real;
    return JSON.stringify(v);
  }
  if (typeof v === "string") {
    // Keep one row on one line: control characters are shown escaped.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
    return v.replace(/[\x00-\x1f\x7f]/g, (c) =>
      c === "\n" ? "\\n" : c === "\t" ? "\\t" : c === "\r" ? "\\r" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
    );
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** @param {unknown} v */
function isNumeric(v) {
  return typeof v === "number" || (typeof v === "object" && v !== null && "int" in v);
}

/**
 * A MySQL-client style box table.
 * @param {string[]} header
 * @param {unknown[][]} rows
 * @returns {string}
 */
export function renderTable(header, rows) {
  const cells = rows.map((row) => header.map((_, i) => formatValue(row[i])));
  const right = header.map((_, i) => rows.length > 0 && rows.every((row) => row[i] === null || row[i] === undefined || isNumeric(row[i])));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+`;
  /** @param {string[]} r @param {boolean} align */
  const fmt = (r, align) => `| ${r.map((c, i) => (align && right[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(" | ")} |`;
  return `${[line, fmt(header, false), line, ...cells.map((r) => fmt(r, true)), ...(cells.length > 0 ? [line] : [])].join("\n")}\n`;
}

/**
 * A reply field read defensively (replies come from the network): the object, or an empty one.
 * @param {unknown} v
 * @returns {Record<string, unknown>}
 */
export function record(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? /** @type {Record<string, unknown>} */ (v) : {};
}

/**
 * @param {unknown} v
 * @returns {unknown[]}
 */
export function list(v) {
  return Array.isArray(v) ? v : [];
}

/**
 * A `POST /v1/sql` reply: a table and "N rows", or for a write "rowsAffected: N, lastInsertRowid: X".
 * @param {unknown} reply
 */
export function renderResult(reply) {
  const rs = record(reply);
  const columns = list(rs.columns).map(String);
  const rows = list(rs.rows).map(list);
  const affected = typeof rs.rowsAffected === "number" ? rs.rowsAffected : 0;
  if (columns.length === 0) {
    const id = rs.lastInsertRowid === undefined || rs.lastInsertRowid === null ? "" : `, lastInsertRowid: ${formatValue(rs.lastInsertRowid)}`;
    return `rowsAffected: ${affected}${id}\n`;
  }
  // One multi-line text cell (VEXPLAIN's plan) reads better as it is than inside a table.
  const only = rows.length === 1 && columns.length === 1 ? rows[0]?.[0] : undefined;
  if (typeof only === "string" && only.includes("\n")) return `${only}\n`;
  const note = affected > 0 ? ` (rowsAffected: ${affected})` : "";
  return `${renderTable(columns, rows)}${rows.length} ${rows.length === 1 ? "row" : "rows"}${note}\n`;
}

/**
 * One workflow record of /v1/topology on a line: what moves where, and how far it got.
 * @param {Record<string, unknown>} w
 */
function workflowLine(w) {
  const shards = (/** @type {unknown} */ v) =>
    list(v)
      .map((s) => String(record(s).shard))
      .join(",");
  const what =
    w.kind === "movetables"
      ? `tables ${list(w.tables).map(String).join(", ")} from keyspace ${String(w.sourceKeyspace)}`
      : `shards ${shards(w.sources)} → ${shards(w.targets)}`;
  const reads = typeof w.reads === "string" ? `, reads pinned to the ${w.reads}` : "";
  const live = record(w.live);
  const phases = [...new Set(list(live.streams).map((s) => String(record(s).phase)))].join("/");
  const progress = typeof live.rowsCopied === "number" ? `; ${live.rowsCopied} rows copied, lag ${String(live.lagMs)} ms, ${phases || "no streams"}` : "";
  return `  ${String(w.keyspace)}.${String(w.name)} (${String(w.kind)}): ${String(w.state)}, ${what}${reads}${progress}`;
}

/**
 * A `GET /v1/topology` reply: one table row per shard, then each keyspace's tables and the workflows.
 * @param {unknown} reply
 */
export function renderTopology(reply) {
  const topo = record(reply);
  const keyspaces = list(topo.keyspaces).map(record);
  let out = `serving graph version ${formatValue(topo.version ?? "?")}\n`;
  if (keyspaces.length === 0) return `${out}no keyspaces\n`;
  /** @type {unknown[][]} */
  const rows = [];
  for (const ks of keyspaces) {
    for (const s of list(ks.shards).map(record)) {
      const kr = typeof s.keyRange === "string" ? s.keyRange : `${record(s.keyRange).start ?? ""}-${record(s.keyRange).end ?? ""}`;
      rows.push([ks.name, ks.sharded ? "yes" : "no", s.name, kr, s.serving ? "yes" : "no", s.rowCount, s.bytes]);
    }
  }
  out += renderTable(["keyspace", "sharded", "shard", "keyRange", "serving", "rowCount", "bytes"], rows);
  for (const ks of keyspaces) {
    const tables = list(ks.tables).map(String);
    out += `${formatValue(ks.name)} tables: ${tables.length > 0 ? tables.join(", ") : "(none)"}\n`;
  }
  for (const ks of keyspaces) {
    const reads = list(ks.readShards).map((s) => String(record(s).name));
    if (reads.length > 0) out += `${formatValue(ks.name)} reads served by: ${reads.join(", ")} (a workflow switched reads apart from writes)\n`;
  }
  const workflows = list(topo.workflows).map(record);
  out += workflows.length === 0 ? "workflows: none\n" : `workflows:\n${workflows.map(workflowLine).join("\n")}\n`;
  const subs = list(topo.subscriptions).map(record);
  for (const s of subs) {
    const err = record(s.lastError);
    const lag = typeof s.lagMs === "number" ? `lag ${s.lagMs} ms` : "lag ?";
    out += `subscription ${formatValue(s.name)} (${formatValue(s.keyspace)} → ${formatValue(s.binding)}): ${lag}, ${formatValue(s.published ?? "?")} transactions published${typeof err.code === "string" ? `, last error ${err.code}: ${formatValue(err.message)}` : ""}\n`;
  }
  return out;
}
