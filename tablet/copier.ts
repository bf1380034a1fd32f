// The copy phase of a stream, behind one seam. The row copier is what runs everywhere: the
// target's pump reads the source's rows in PRIMARY KEY pages (tablet/streamer.ts), each page at
// the binlog position it is consistent with. Where the runtime can restore another object's
// snapshot (Cloudflare documents a storage snapshot for "split a subset of data into its own
// object"; local workerd has none), a snapshot copier would instead restore the source's whole
// database into the target at a position S, delete the rows outside the target's key range, and
// start the stream at {seq: S, copy: null}: the copy becomes one restore instead of many pages.
// Only the row copier exists; `copierFor` is where the other would be chosen.

import type { StreamPos, StreamSpec } from "../contract/stream-rpc.ts";

export interface Copier {
  readonly name: "rows" | "snapshot";
  /** Where the stream starts once this copier has done what it does before the pump runs. */
  begin(spec: StreamSpec): StreamPos;
}

/** Copies through the stream's own units: nothing to do before the pump, which starts at the copy cursor. */
export const rowCopier: Copier = {
  name: "rows",
  begin: (spec) => spec.start,
};

/**
 * The copier for a stream on this runtime. A snapshot copier needs an API to restore another
 * object's snapshot here, which no runtime this code runs on offers yet: the row copier it is.
 */
export function copierFor(_storage: DurableObjectStorage): Copier {
  return rowCopier;
}
