// Binlog retention as the Topology, the tablets and the gate share it: a keyspace's setting, its
// bounds and default, the hold id a VReplication stream keeps on its source, and the figures a
// tablet reports. The purge itself lives on the tablet (tablet/binlog-retention.ts).

import { VtError } from "./errors.ts";
import type { StreamSpec } from "./stream-rpc.ts";

/**
 * A binlog's retention window; a transaction goes when it is older than `retentionSeconds` OR the
 * binlog is over `retentionBytes`. A reader's hold not advanced for `holdSeconds` is released
 * (absent: the longer of HOLD_AGE_SECONDS and `retentionSeconds`; see holdAgeSeconds).
 */
export interface RetentionPolicy {
  readonly retentionSeconds: number;
  readonly retentionBytes: number;
  readonly holdSeconds?: number;
}

/** A hold's age limit until `holdSeconds` is set: 7 days, or the time window when that is longer. */
export const HOLD_AGE_SECONDS = 7 * 86_400;

/**
 * The shortest `holdSeconds`: a live reader refreshes its hold at most every 10 s and a publisher
 * backs off up to 30 s, so a shorter age would release the holds of readers that are moving.
 */
export const MIN_HOLD_SECONDS = 300;

/** How long a hold not advanced is kept under `policy`, in seconds. */
export function holdAgeSeconds(policy: RetentionPolicy): number {
  return policy.holdSeconds ?? Math.max(policy.retentionSeconds, HOLD_AGE_SECONDS);
}

/** The default: 7 days and 1 GiB. */
export const DEFAULT_RETENTION: RetentionPolicy = { retentionSeconds: 7 * 86_400, retentionBytes: 1024 ** 3 };

/** Bounds of a setting: at most 10 years, at most 1 TiB. */
export const MAX_RETENTION_SECONDS = 10 * 365 * 86_400;
export const MAX_RETENTION_BYTES = 1024 ** 4;

const FIELDS = ["retentionSeconds", "retentionBytes", "holdSeconds"] as const;

function checkField(o: Record<string, unknown>, name: keyof RetentionPolicy, max: number, min = 0): number {
  const v = o[name];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new VtError("INVALID_ARGUMENT", `binlog retention: ${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(v) ?? "undefined"}`);
  }
  return v;
}

/** Refuses (INVALID_ARGUMENT) anything but non-negative integers within bounds (`holdSeconds` may be absent). */
export function checkPolicy(p: unknown): RetentionPolicy {
  const o = (p ?? {}) as Record<string, unknown>;
  const base = {
    retentionSeconds: checkField(o, "retentionSeconds", MAX_RETENTION_SECONDS),
    retentionBytes: checkField(o, "retentionBytes", MAX_RETENTION_BYTES),
  };
  return o["holdSeconds"] === undefined ? base : { ...base, holdSeconds: checkField(o, "holdSeconds", MAX_RETENTION_SECONDS, MIN_HOLD_SECONDS) };
}

/**
 * A change of a setting: an object naming any of `retentionSeconds`, `retentionBytes` and
 * `holdSeconds` (nothing else; `holdSeconds: null` goes back to its default), applied over
 * `current`. Anything else is INVALID_ARGUMENT.
 */
export function changePolicy(current: RetentionPolicy, change: unknown): RetentionPolicy {
  if (typeof change !== "object" || change === null || Array.isArray(change)) {
    throw new VtError("INVALID_ARGUMENT", "binlog retention: the change must be an object with retentionSeconds, retentionBytes and/or holdSeconds");
  }
  const o = change as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !(FIELDS as readonly string[]).includes(k));
  if (extra.length > 0) throw new VtError("INVALID_ARGUMENT", `binlog retention: unknown field ${extra.map((k) => JSON.stringify(k)).join(", ")}`);
  if (!FIELDS.some((f) => Object.hasOwn(o, f))) {
    throw new VtError("INVALID_ARGUMENT", "binlog retention: name retentionSeconds, retentionBytes, holdSeconds or several");
  }
  if (Object.hasOwn(o, "holdSeconds") && o["holdSeconds"] === undefined) {
    throw new VtError("INVALID_ARGUMENT", "binlog retention: holdSeconds must be an integer, or null for its default");
  }
  const hold = Object.hasOwn(o, "holdSeconds") ? o["holdSeconds"] : current.holdSeconds;
  return checkPolicy({
    retentionSeconds: Object.hasOwn(o, "retentionSeconds") ? o["retentionSeconds"] : current.retentionSeconds,
    retentionBytes: Object.hasOwn(o, "retentionBytes") ? o["retentionBytes"] : current.retentionBytes,
    ...(hold === null || hold === undefined ? {} : { holdSeconds: hold }),
  });
}

/** The hold a VReplication stream keeps on its source: unique per target tablet and stream. */
export function streamHoldId(spec: Pick<StreamSpec, "targetTablet" | "id">): string {
  return `vreplication:${spec.targetTablet}:${spec.id}`;
}

/** A tablet's binlog as retention sees it (TabletStatus.retention, GET /v1/topology per shard). */
export interface TabletRetention {
  /** Events in the binlog, and their bytes as the size budget counts them. */
  readonly events: number;
  readonly bytes: number;
  /** The highest seq purged (0: nothing yet); reads from below it are refused. */
  readonly floor: number;
  /** Readers' holds kept on this tablet, and readers whose hold was released for age. */
  readonly holds: number;
  readonly cutoffs: number;
}
