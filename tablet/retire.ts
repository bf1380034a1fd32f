// Retiring a tablet: a workflow moved its shard to other tablets (Complete), or cancelled the
// shard it was to become (Cancel). Everything it holds goes: user tables, views, its binlog,
// config and streams, so it keeps no rows and serves nothing.

import { quoteIdent } from "./binlog.ts";

/** Drops every view and table of the database, the tablet's own included (run in one transaction). */
export function dropEverything(sql: SqlStorage): void {
  // Parents may go before their children: foreign keys are checked at commit, when none is left.
  sql.exec("PRAGMA defer_foreign_keys = ON");
  const objects = sql
    .exec<{ type: string; name: string }>(
      `SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name <> '__miniflare_do_name'
       ORDER BY coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%', type = 'table', name`,
    )
    .toArray();
  // A virtual table drops its shadow tables with it, hence IF EXISTS.
  for (const o of objects) sql.exec(`DROP ${o.type === "view" ? "VIEW" : "TABLE"} IF EXISTS ${quoteIdent(o.name)}`);
}
