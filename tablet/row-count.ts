// The row count of TabletStatus: the rows of the user tables, counted with count(*) once per
// instance, then kept current from the binlog's inserts and deletes since the last count. A DDL
// since then, a stream's applied units (they are not in the binlog: StreamTarget applyUnit) or a
// purge or retire (reset) make the next read count in full again. The gate's system lookup tables
// (_vtl_…) hold no user rows and are not counted.

import { lastSeq, listUserTables, quoteIdent } from "./binlog.ts";

export class RowCounter {
  #counted: { seq: number; rows: number; units: number } | null = null;

  /** The row count now; `units` is how many stream units the tablet applied so far. */
  read(sql: SqlStorage, units: number): number {
    const now = lastSeq(sql);
    const c = this.#counted !== null && this.#counted.units === units ? this.#counted : null;
    if (c !== null) {
      let n = c.rows;
      let recount = false;
      for (const r of sql.exec<{ kind: string; n: number }>(
        "SELECT kind, count(*) AS n FROM _vt_binlog WHERE seq > ? AND seq <= ? AND kind IN ('insert', 'delete', 'ddl') AND (tbl IS NULL OR tbl NOT LIKE '\\_vtl\\_%' ESCAPE '\\') GROUP BY kind",
        c.seq,
        now,
      )) {
        if (r.kind === "ddl") recount = true;
        else n += r.kind === "insert" ? r.n : -r.n;
      }
      if (!recount) {
        this.#counted = { seq: now, rows: n, units };
        return n;
      }
    }
    let rows = 0;
    for (const t of listUserTables(sql)) {
      if (t.toLowerCase().startsWith("_vtl_")) continue;
      rows += sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${quoteIdent(t)}`).one().n;
    }
    this.#counted = { seq: now, rows, units };
    return rows;
  }

  /** The next read counts in full (after a purge or a retire). */
  reset(): void {
    this.#counted = null;
  }
}
