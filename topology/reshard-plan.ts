// What a Reshard request may ask, checked before anything changes: the sources are adjacent
// serving shards of a sharded keyspace that no other open workflow holds, and the targets
// cover exactly the sources' key range, without overlap or gap. Pure: the Topology records
// the plan and makes the target tablets.

import { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph, ShardGraph } from "../contract/serving-graph.ts";
import type { OnDdl } from "../contract/stream-rpc.ts";
import type { WorkflowRecord } from "../contract/workflow-record.ts";
import { compareKeys, formatKeyRange, keyRangeEqual, parseKeyRange, type KeyRange } from "./keyrange.ts";
import { checkStreamable } from "./placements.ts";
import { tokenize } from "./sql-lexer.ts";
import { unsupportedError } from "./refusals.ts";

/** Workflow names: as keyspace names (they appear in stream ids and Workflow instance ids). */
const WORKFLOW_NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
const ON_DDL: readonly OnDdl[] = ["ignore", "stop", "exec"];

export interface ReshardPlan {
  /** Serving shards of the keyspace, in key order. */
  readonly sources: readonly ShardGraph[];
  /** Names (normalised key ranges) in key order. */
  readonly targets: readonly string[];
  readonly onDdl: OnDdl;
  readonly autoSwitch: boolean;
}

export function checkWorkflowName(name: unknown): string {
  if (typeof name !== "string" || !WORKFLOW_NAME.test(name) || name.toLowerCase().startsWith("_vt")) {
    throw new VtError("INVALID_ARGUMENT", `workflow name ${JSON.stringify(name)} must start with a letter and hold only letters, digits and _ (at most 63)`);
  }
  return name;
}

export function readOptions(options: unknown): { onDdl: OnDdl; autoSwitch: boolean } {
  if (options === undefined || options === null) return { onDdl: "ignore", autoSwitch: false };
  if (typeof options !== "object" || Array.isArray(options)) throw new VtError("INVALID_ARGUMENT", "workflow options must be an object {onDdl?, autoSwitch?}");
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== "onDdl" && k !== "autoSwitch") throw new VtError("INVALID_ARGUMENT", `unknown workflow option "${k}"`);
  const onDdl = o["onDdl"] ?? "ignore";
  const autoSwitch = o["autoSwitch"] ?? false;
  if (typeof onDdl !== "string" || !ON_DDL.includes(onDdl as OnDdl)) throw new VtError("INVALID_ARGUMENT", `onDdl must be one of ${ON_DDL.join(", ")}`);
  if (typeof autoSwitch !== "boolean") throw new VtError("INVALID_ARGUMENT", "autoSwitch must be true or false");
  return { onDdl: onDdl as OnDdl, autoSwitch };
}

interface Named {
  readonly name: string;
  readonly kr: KeyRange;
}

/** A list of key ranges, normalised and sorted by start; duplicates refused. */
function ranges(v: unknown, what: string): Named[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === "string")) {
    throw new VtError("INVALID_ARGUMENT", `${what} must be a non-empty list of key ranges such as ["-40", "40-80"]`);
  }
  const out: Named[] = [];
  for (const spec of v as string[]) {
    const kr = parseKeyRange(spec);
    if (out.some((o) => keyRangeEqual(o.kr, kr))) throw new VtError("INVALID_ARGUMENT", `${what}: ${spec} is given twice`, { shard: spec });
    out.push({ name: formatKeyRange(kr), kr });
  }
  return out.sort((a, b) => compareKeys(a.kr.start, b.kr.start));
}

/** <0, 0, >0 as `end` (an empty end: +infinity) is below, at or above `start`. */
function endVsStart(end: Uint8Array, start: Uint8Array): number {
  return end.length === 0 ? 1 : compareKeys(end, start);
}

function sameEnd(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === 0 || b.length === 0 ? a.length === b.length : compareKeys(a, b) === 0;
}

/** The request's shards as names, for comparing a retry with what was recorded (null: unreadable). */
function names(v: unknown): string[] | null {
  try {
    return ranges(v, "shards").map((r) => r.name);
  } catch {
    return null;
  }
}

/** Whether a create request asks for exactly what `w` recorded (a retry answers the record). */
export function sameReshard(w: WorkflowRecord, sources: unknown, targets: unknown, options: unknown): boolean {
  let opts: { onDdl: OnDdl; autoSwitch: boolean };
  try {
    opts = readOptions(options);
  } catch {
    return false;
  }
  const same = (a: string[] | null, b: readonly string[]) =>
    a !== null && a.length === b.length && a.every((n, i) => keyRangeEqual(parseKeyRange(n), parseKeyRange(b[i] ?? "")));
  return (
    w.kind === "reshard" &&
    same(
      names(sources),
      w.sources.map((s) => s.shard),
    ) &&
    same(
      names(targets),
      w.targets.map((s) => s.shard),
    ) &&
    opts.onDdl === w.onDdl &&
    opts.autoSwitch === w.autoSwitch
  );
}

/**
 * Checks a Reshard of `ks` from `sources` to `targets` against its shards and its other open
 * workflows. Every refusal is INVALID_ARGUMENT (a table without a primary key: UNSUPPORTED
 * VD2700) and changes nothing.
 */
export function planReshard(ks: KeyspaceGraph, sources: unknown, targets: unknown, options: unknown, open: readonly WorkflowRecord[]): ReshardPlan {
  if (!ks.sharded) {
    throw new VtError("INVALID_ARGUMENT", `keyspace ${ks.name} is unsharded: apply a sharded vschema before resharding it`, { keyspace: ks.name });
  }
  const opts = readOptions(options);
  const src = ranges(sources, "source shards");
  const serving: ShardGraph[] = [];
  for (const s of src) {
    const shard = ks.shards.find((g) => g.serving && keyRangeEqual(parseKeyRange(g.name), s.kr));
    if (!shard) throw new VtError("INVALID_ARGUMENT", `source shard ${s.name} is not a serving shard of keyspace ${ks.name}`, { shard: s.name });
    serving.push(shard);
  }
  for (let i = 1; i < src.length; i++) {
    const [prev, cur] = [src[i - 1], src[i]];
    if (prev && cur && endVsStart(prev.kr.end, cur.kr.start) !== 0) {
      throw new VtError("INVALID_ARGUMENT", `source shards ${prev.name} and ${cur.name} are not adjacent: a workflow moves one contiguous key range`);
    }
  }
  const first = src[0];
  const last = src[src.length - 1];
  if (!first || !last) throw new VtError("INVALID_ARGUMENT", "no source shards");
  const dst = ranges(targets, "target shards");
  const lo = dst[0];
  const hi = dst[dst.length - 1];
  if (!lo || !hi) throw new VtError("INVALID_ARGUMENT", "no target shards");
  if (compareKeys(lo.kr.start, first.kr.start) !== 0) {
    throw new VtError("INVALID_ARGUMENT", `target shards must start where the sources start (${first.name}), not at ${lo.name}`, { shard: lo.name });
  }
  for (let i = 1; i < dst.length; i++) {
    const [prev, cur] = [dst[i - 1], dst[i]];
    if (!prev || !cur) continue;
    const c = endVsStart(prev.kr.end, cur.kr.start);
    if (c > 0) throw new VtError("INVALID_ARGUMENT", `target shards ${prev.name} and ${cur.name} overlap`, { shard: cur.name });
    if (c < 0) throw new VtError("INVALID_ARGUMENT", `gap between target shards ${prev.name} and ${cur.name}`, { shard: cur.name });
  }
  if (!sameEnd(hi.kr.end, last.kr.end)) {
    throw new VtError("INVALID_ARGUMENT", `target shards must end where the sources end (${last.name}), not at ${hi.name}`, { shard: hi.name });
  }
  if (dst.length === src.length && dst.every((d, i) => src[i] && keyRangeEqual(d.kr, src[i].kr))) {
    throw new VtError("INVALID_ARGUMENT", "the target shards are the source shards: nothing to reshard");
  }
  for (const w of open) {
    const held = [...w.sources, ...w.targets].find((h) => src.some((s) => keyRangeEqual(s.kr, parseKeyRange(h.shard))));
    if (held) {
      throw new VtError("INVALID_ARGUMENT", `shard ${held.shard} is in workflow ${w.name} (${w.state}); complete or cancel it first`, {
        shard: held.shard,
        workflow: w.name,
      });
    }
  }
  // Every table must be streamable (a PRIMARY KEY, a vindex): refused now, not when its stream starts.
  checkStreamable(ks);
  return { sources: serving, targets: dst.map((d) => d.name), onDdl: opts.onDdl, autoSwitch: opts.autoSwitch };
}

/**
 * The DDL a keyspace takes while one of its workflows is open: CREATE / DROP INDEX and ALTER
 * TABLE … ADD COLUMN, which every shard (targets included) applies under the change's write fence
 * and which leave the streams' tables and earlier row images valid. Anything else (a new, dropped
 * or renamed table or column) would leave the streams' filter or images behind: refused (VD2703).
 */
export function checkDdlDuringWorkflow(sql: string, open: readonly WorkflowRecord[]): void {
  const w = open[0];
  if (!w) return;
  const words = tokenize(sql)
    .filter((t) => t.kind !== "space" && t.kind !== "comment")
    .slice(0, 6)
    .map((t) => sql.slice(t.start, t.end).toUpperCase());
  const [a, b, c] = words;
  if (a === "CREATE" && (b === "INDEX" || (b === "UNIQUE" && c === "INDEX"))) return;
  if (a === "DROP" && b === "INDEX") return;
  if (a === "ALTER" && b === "TABLE" && words[3] === "ADD" && words[4] !== "CONSTRAINT") return;
  throw unsupportedError(
    "VD2703",
    `this DDL while workflow ${w.name} (${w.state}) moves keyspace ${w.keyspace}'s rows: only CREATE/DROP INDEX and ALTER TABLE … ADD COLUMN run meanwhile; complete or cancel the workflow first`,
    {
      keyspace: w.keyspace,
      workflow: w.name,
    },
  );
}
