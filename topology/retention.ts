// A keyspace's binlog retention setting in the Topology: stored with the keyspace
// (topology-store.ts), DEFAULT_RETENTION until set, validated before anything changes, and
// pushed to every tablet of the keyspace in its TabletConfig (their alarms purge under it).

import { changePolicy, DEFAULT_RETENTION, holdAgeSeconds, type RetentionPolicy } from "../contract/binlog-retention.ts";
import { VtError } from "../contract/errors.ts";
import type { KeyspaceGraph } from "../contract/serving-graph.ts";
import type { KeyspaceRetention } from "../contract/topology-rpc.ts";
import type { TopologyStore } from "./topology-store.ts";

export interface RetentionHost {
  readonly store: TopologyStore;
  transaction(fn: () => void): void;
  /** Pushes the keyspace's configs (and so the setting) to its tablets; the first failure is thrown. */
  sync(ks: KeyspaceGraph): Promise<unknown>;
}

export class RetentionSettings {
  readonly #host: RetentionHost;

  constructor(host: RetentionHost) {
    this.#host = host;
  }

  /** The setting of `keyspace` (DEFAULT_RETENTION when never set). */
  policy(keyspace: string): RetentionPolicy {
    return this.#host.store.retention(keyspace) ?? DEFAULT_RETENTION;
  }

  #answer(keyspace: string): KeyspaceRetention {
    const set = this.#host.store.retention(keyspace);
    const p = set ?? DEFAULT_RETENTION;
    // holdSeconds is answered as it applies (its default follows retentionSeconds until it is set).
    return { keyspace, retentionSeconds: p.retentionSeconds, retentionBytes: p.retentionBytes, holdSeconds: holdAgeSeconds(p), isDefault: set === null };
  }

  /**
   * Shows the setting (`change` undefined) or changes it: `change` names retentionSeconds,
   * retentionBytes, holdSeconds (null: its default) or several; anything invalid is refused before anything is stored. The new
   * setting is stored, then sent to the keyspace's tablets; a tablet that did not answer gets it
   * with its next sync (the error says so, and a retry sends it again).
   */
  async run(keyspace: unknown, change: unknown): Promise<KeyspaceRetention> {
    const ks = typeof keyspace === "string" ? this.#host.store.keyspace(keyspace) : undefined;
    if (!ks) throw new VtError("INVALID_ARGUMENT", `no keyspace "${String(keyspace)}"`, { keyspace: String(keyspace) });
    if (change === undefined) return this.#answer(ks.name);
    const next = changePolicy(this.policy(ks.name), change);
    this.#host.transaction(() => this.#host.store.setRetention(ks.name, next));
    await this.#host.sync(ks);
    return this.#answer(ks.name);
  }
}
