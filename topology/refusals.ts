// Stable ids for refusals (as Vitess's VT12001 …): every UNSUPPORTED error carries one as `id`,
// so clients and tests branch on `code` plus `id`, never on message text. Ids are a contract:
// add new ones, never renumber or reuse one. The text says what is refused; the message at the
// throw site names the statement's own parts.

import { VtError } from "../contract/errors.ts";

export const REFUSALS = {
  VD1000: "WITH RECURSIVE", // cte.ts
  VD1001: "… in WITH", // cte.ts
  VD1002: "a CTE named like a table of the keyspace (…)", // cte.ts
  VD1003: "CTE …: a compound SELECT in a CTE", // cte.ts
  VD1004: "CTE …: … (a CTE may only filter and project rows across shards)", // cte.ts
  VD1005: "CTE … reading another CTE", // cte.ts
  VD1006: "CTE …: a join of tables that are not co-located", // cte.ts
  VD1007: "CTE … with two columns named … (name them with AS or a column list)", // cte.ts
  VD1008: "a subquery reading a CTE", // select.ts
  VD1009: "a subquery in FROM", // select.ts
  VD1010: "a window function not partitioned by a vindex column across shards", // select.ts
  VD1011: "window functions with aggregates or GROUP BY over several shards", // select.ts
  VD1012: "SELECT DISTINCT with aggregates", // select.ts
  VD1013: "SELECT DISTINCT ordered by a term that is not selected", // select-merge-sort.ts, gate-join.ts
  VD1014: "* with aggregates", // select-aggregate.ts, gate-join-aggregate.ts
  VD1015: "…() over several shards", // select-aggregate.ts
  VD1016: "FILTER on aggregates", // select-aggregate.ts, gate-join-aggregate.ts
  VD1017: "…(DISTINCT …)", // select-aggregate.ts, gate-join-aggregate.ts
  VD1018: "DISTINCT aggregates over different expressions", // select-aggregate.ts
  VD1019: "group_concat with a separator other than a string literal", // select-aggregate.ts, gate-join-aggregate.ts
  VD1020: "an expression around an aggregate", // select-aggregate.ts
  VD1021: "a selected column that is not in GROUP BY (…)", // select-aggregate.ts, gate-join-aggregate.ts
  VD1022: "HAVING on … (only aggregates, grouped expressions, literals and placeholders)", // select-aggregate.ts
  VD1023: "ORDER BY an expression that is not selected, with aggregates", // select-aggregate.ts
  VD1024: "a compound operator other than UNION [ALL], INTERSECT, EXCEPT", // select.ts
  VD1025: "a … inside a compound SELECT", // select.ts
  VD1026: "WITH in a compound SELECT", // select.ts
  VD1027: "… over a table with declared collations in a compound SELECT", // select.ts
  VD1028: "ORDER BY of a compound SELECT other than by position or result column name", // select.ts
  VD1029: "HAVING comparing a grouped column with a value its affinity would convert (or a placeholder)", // having.ts
  VD1030: "HAVING … …", // having.ts
  VD1031: "this HAVING expression (…)…", // having.ts
  VD1032: "subqueries in INSERT (other than INSERT … SELECT)", // planner/insert.ts
  VD1033: "ON CONFLICT DO UPDATE into … (owning lookups or keyspace-wide unique keys) with several ON CONFLICT clauses / OR … / a partial target", // upsert.ts
  VD1034: "INSERT into …: its vindex column … has a non-BINARY collation, so equal values could land on different shards", // planner/insert.ts
  VD1035: "this VALUES form", // planner/insert.ts
  VD1036: "an expression as the value of …, which has lookup vindex … (use a literal or a placeholder)", // planner/insert.ts
  VD1037: "an expression as the vindex value of … (use a literal or a placeholder)", // planner/insert.ts
  VD1038: "an expression as the vindex value of … (use a literal, a placeholder, NULL, or leave it out for the sequence)", // planner/insert.ts
  VD1039: "ON CONFLICT DO UPDATE of the vindex column … (it would move the row)", // planner/insert.ts
  VD1040: "INSERT into reference table …: a column DEFAULT that differs per shard (time or randomness); give the value explicitly and drop the DEFAULT", // reference-write.ts
  VD1041: "a subquery in a write to reference table …", // reference-write.ts
  VD1042: "…() in a write to reference table … (each shard's copy would get a different value)", // reference-write.ts
  VD1043: "UPDATE of several tables", // dml.ts
  VD1044: "UPDATE … FROM", // dml.ts
  VD1045: "DELETE from several tables", // dml.ts
  VD1046: "UPDATE of the vindex column … (it would move the row to another shard)", // dml.ts
  VD1048: "… with ORDER BY / LIMIT", // dml.ts
  VD1050: 'schema "…": only the keyspace\'s own tables can be named', // ast.ts
  VD1051: "a … in place of a table", // ast.ts
  VD1052: "collation …", // ast.ts
  VD1053: "LIMIT / OFFSET expressions other than numbers and placeholders", // ast.ts
  VD1054: "… (only JOIN, INNER JOIN, CROSS JOIN, LEFT JOIN and commas)", // join.ts
  VD1055: "parenthesized joins", // join.ts
  VD1056: "parenthesized joins and subqueries in FROM", // join.ts
  VD1057: "this USING form", // join.ts
  VD1058: "join specification …", // join.ts
  VD1059: "window functions over …", // gate-join.ts
  VD1060: "a condition naming something other than a table column (a result alias?), with …: …", // gate-join.ts
  VD1061: "a LEFT JOIN condition on the left table alone, with …", // gate-join.ts
  VD1062: "a condition on the right side of a LEFT JOIN, with …", // gate-join.ts
  VD1063: "a WHERE condition on the right side of a LEFT JOIN, with …", // gate-join.ts
  VD1064: "a condition across … other than column = column (…)", // gate-join.ts
  VD1065: "a join with no column = column condition between … (a cross join across shards)", // gate-join.ts
  VD1066: "joining on a column that is not declared (rowid), with …", // gate-join.ts
  VD1067: "joining … with …: their affinities differ, so SQLite would convert values while comparing (…)", // gate-join.ts
  VD1068: "joining on a column with a non-BINARY collation, with …", // gate-join.ts
  VD1069: "SELECT * with USING, with … (name the columns)", // gate-join.ts
  VD1070: "this select item (…) with …", // gate-join.ts
  VD1071: "an expression over columns of … (…)", // gate-join.ts
  VD1072: "an expression over the right side of a LEFT JOIN, with … (select the column itself)", // gate-join.ts
  VD1073: "ORDER BY an expression over several …", // gate-join.ts
  VD1074: "ORDER BY an expression over the right side of a LEFT JOIN, with …", // gate-join.ts
  VD1075: "… other than a plain column, over …", // gate-join-aggregate.ts
  VD1076: "…() over …", // gate-join-aggregate.ts
  VD1077: "…(*)", // gate-join-aggregate.ts
  VD1078: "…() with several arguments", // gate-join-aggregate.ts
  VD1079: "an expression around an aggregate, over …", // gate-join-aggregate.ts
  VD1080: "HAVING on … (only aggregates, grouped columns, literals and placeholders), over …", // gate-join-aggregate.ts
  VD1081: "ORDER BY an expression that is not selected, with aggregates over …", // gate-join-aggregate.ts
  VD1082: "…: SQLite's catalogs are per shard; use GET /v1/topology", // plan.ts
  VD1083: "…(): PRAGMA functions", // plan.ts
  VD1084: "a statement kind the gate does not run (PRAGMA, BEGIN/COMMIT, ATTACH, VACUUM, …)", // plan.ts
  VD1085: "WITH before INSERT / UPDATE / DELETE is not supported across shards yet", // plan.ts
  VD1086: "a correlated subquery (…)", // subqueries.ts
  VD1087: "…: the subquery must select exactly one column", // subqueries.ts
  VD1088: "a subquery whose column affinity would convert the value it is compared with", // subqueries.ts
  VD1089: "a subquery in this position", // subqueries.ts
  VD1090: "CREATE … TABLE in a sharded keyspace", // ddl.ts
  VD1091: "CREATE TABLE … AS SELECT in a sharded keyspace", // ddl.ts
  VD1092: "ALTER TABLE … RENAME TO in a sharded keyspace (the vschema names the table)", // ddl.ts
  VD1093: "renaming the vindex column … of …", // ddl.ts
  VD1094: "dropping the vindex column … of …", // ddl.ts
  VD1095: "… in a sharded keyspace", // ddl.ts
  VD1096: "…(DISTINCT …) over text or blob values across shards", // aggregate.ts
  VD1097: "… over a text or blob value, across tables joined at the gate,", // join.ts
  VD1098: "group_concat over a REAL or blob value, across tables joined at the gate,", // join.ts
  VD1099: "a transaction whose statements reach several shards (or run DDL) is not supported yet; each statement must target the same single shard", // executor.ts
  VD1100: "a transaction across shards (… and …)", // executor.ts
  VD1101: "an INSERT into …, which owns lookup vindexes, inside a transactional batch is not supported yet (its lookup rows live in another table)", // executor.ts
  VD1102: "an INSERT that takes ids from a sequence inside a transactional batch is not supported yet; give the ids (or insert outside the transaction)", // executor.ts
  VD1103: "… (refused by the Durable Object SQLite)", // sqlite-errors.ts
  VD1104: "RETURNING an integer beyond ±2^53 cannot be returned exactly yet; read it back with SELECT", // tablet.ts
  VD1105: "vschema ….pinned: pinned tables are not supported", // vschema.ts
  VD1106: "vschema ….columns: multi-column vindexes are not supported yet", // vschema.ts
  VD1107: "vschema …: a secondary vindex must be a lookup vindex (lookup_unique or lookup)", // vschema.ts
  VD1108: "vindex …: params.…", // vindex.ts
  VD1109: 'workflow kind …: only "reshard" and "movetables" exist', // workflows.ts
  VD1110: "the SDK's interactive transaction() (use batch(statements, { transaction: true }))", // client/vitess-client.ts
  VD2000: "text that the gate's parser and SQLite would read differently (`#`, TCL-style `$a(…)`, non-ASCII spaces, …)", // agreement.ts
  VD2001: "parentheses nested more than 100 deep", // agreement.ts
  VD2002: "a syntax tree more than 1100 levels deep", // agreement.ts
  VD2003: "a statement nesting too deeply for the gate's parser or planner (CASE, subqueries, calls)", // parse.ts
  VD2004: "SQLite's catalogs, PRAGMA functions and dbstat (… is per shard; use GET /v1/topology)", // system-names guard
  VD2005: "a number ending with a point (`1.`): the gate's parser cannot read it; write `1.0`", // parse.ts
  VD2101: "vschema change of …: the new vindexes would place rows elsewhere, and the table holds rows; move rows with Reshard or MoveTables", // topology-do.ts
  VD2102: "the foreign key … → …: the parent row may live on another shard (or its actions could diverge shards or move child rows)", // foreign-keys.ts, foreign-key-actions.ts
  VD2103: "virtual table …: writes to a virtual table (fts5, rtree, …) cannot be recorded in the binlog", // schema-change.ts
  VD2104: "CREATE VIRTUAL TABLE (fts5, rtree, …): its writes cannot be recorded in the binlog", // ddl.ts
  VD2105: "UPDATE (or ON CONFLICT DO UPDATE) of a reference table's column that a sharded table's foreign key references", // foreign-key-actions.ts
  VD2300: "a SELECT reading to its end a recursive CTE that never stops adding rows (add a WHERE or a LIMIT to its recursive SELECT)", // endless.ts
  VD2400: "a value of … (a keyspace-wide unique column) that its affinity would convert / a REAL stored as text / an integer a REAL column would round", // unique-key.ts
  VD2401: "writes to …: its unique key (…) has no keyspace-wide index (the table predates its vschema)", // planner/insert.ts
  VD2402: "CREATE UNIQUE INDEX on a sharded table without its vindex column", // ddl.ts
  VD2403: "an expression as the value of a column in a keyspace-wide unique key", // planner/insert.ts
  VD2404: "INSERT without (or with a NULL) INTEGER PRIMARY KEY on a table sharded by another column whose auto_increment fills another column", // dml.ts, insert-lookups.ts
  VD2405: "INSERT leaving out a column with a DEFAULT that is in a keyspace-wide unique key", // planner/insert.ts
  VD2408: "a keyspace-wide unique key declaring its own ON CONFLICT resolution", // planner/insert.ts
  VD2409: "renaming a column in a keyspace-wide unique key", // ddl.ts
  VD2410: "ON CONFLICT DO UPDATE SET of a column in a keyspace-wide unique key or with a lookup vindex (other than c = excluded.c on the target)", // upsert.ts
  VD2411: "ON CONFLICT DO UPDATE / ON CONFLICT (…) DO NOTHING on a column unique only through a lookup_unique vindex (declare it UNIQUE)", // upsert.ts
  VD2412: "ON CONFLICT DO UPDATE without a target whose row conflicts with several different rows, or whose rows share a unique value", // insert-upsert.ts
  VD2414: "UPDATE giving one row a unique value another row of the same UPDATE gives up (SQLite's answer depends on its row order)", // owned-update.ts
  VD2415: "UPDATE OR … / a row value assigned to columns that lookups cover", // lookup-update.ts
  VD2413: "ON CONFLICT DO UPDATE with an expression (or no value) for a column of a unique key holding the vindex column", // upsert.ts
  VD2500: "a statement reading both the schema catalog (…) and …: the catalog holds the keyspace's schema only; read the two in separate statements", // catalog.ts
  VD2601: "the implicit rowid of … in a sharded keyspace (each shard numbers its own rows; declare an INTEGER PRIMARY KEY)", // rowid.ts
  VD2602: "a REAL literal as the value of TEXT column …, which has a vindex (SQLite stores the REAL's text; write it as a string)", // planner/insert.ts
  VD2603: "INSERT … SELECT: a number that may be a REAL as the value of TEXT column …, which places the row (CAST it AS TEXT in the SELECT)", // insert-select.ts
  VD2604: "INSERT into … without its vindex column … (it decides the shard; a NOT NULL column SQLite fails is CONSTRAINT with this id)", // planner/insert.ts
  VD2605:
    "INSERT into …: a NULL vindex value (the row would have no shard; for a NOT NULL column, SQLite's CONSTRAINT with this id, or the row skipped under OR IGNORE)", // insert.ts
  VD2606:
    "INSERT into …: a vindex value the vindex cannot place as SQLite stores it (a REAL for an integer vindex, non-canonical integer text, an integer a REAL column would round)", // insert.ts
  VD2607: "INSERT into … without VALUES or SELECT (DEFAULT VALUES; a NOT NULL vindex column SQLite fails is CONSTRAINT with this id)", // planner/insert.ts
  VD2700: "resharding table …: it has no PRIMARY KEY (rows are streamed and applied by their key)", // placements.ts
  VD2701: "resharding table …: a row has NULL in its PRIMARY KEY, so the key cannot name it on the target", // streamer.ts
  VD2702: "vschema change of … while workflow … is open: it would move rows the workflow is moving", // workflow-steps.ts
  VD2703: "this DDL while workflow … moves keyspace …'s rows: only CREATE/DROP INDEX and ALTER TABLE … ADD COLUMN run meanwhile", // reshard-plan.ts
  VD2704:
    "moving table … into sharded keyspace …: a UNIQUE key, a lookup vindex, or a PRIMARY KEY without its vindex column (its keyspace-wide lookup rows would not be moved)", // movetables-plan.ts
  VD2705: "moving table …: it references table …, which does not move with it (move both)", // movetables-plan.ts
  VD2706: "a statement naming tables served by different keyspaces while a MoveTables moves some of them", // routing-rules.ts
  VD2707: "resharding table …: its PRIMARY KEY column … compares with a collation other than its key's, so two distinct keys can compare equal", // placements.ts
  VD2720: "switchtraffic / reversetraffic of a MoveTables for some tablet types only (its reads follow its writes)", // topology-do.ts
  VD2800: "vstream of a table without a PRIMARY KEY (events name each row by its key)", // tablet/vstreamer.ts
  VD2801: "a vstream reading a shard that no longer serves and wrote no journal saying where its writes went", // gate/vstream.ts
  VD2802:
    "a vstream following a MoveTables' journal into shards it reads already that it can neither take back as a reverse nor widen (a switch from before arrival markers, a side still copying, into the stream's own keyspace, or a new MoveTables moving the tables back; the error carries the tokens to go on)", // gate/vstream-positions.ts
} as const satisfies Readonly<Record<string, string>>;

/** Ids no longer thrown, what they refused, and since when not: never to be given to another refusal. */
export const RETIRED_REFUSALS = {
  VD2810: 'a queue subscription from a vstream\'s initial copy (since 2026-12: a subscription from "start" publishes the copy)',
} as const satisfies Readonly<Record<string, string>>;

export type RefusalId = keyof typeof REFUSALS;

/** An UNSUPPORTED error with its catalogue id. */
export function unsupportedError(id: RefusalId, message: string, extra?: Readonly<Record<string, unknown>>): VtError {
  return new VtError("UNSUPPORTED", message, { ...extra, id });
}
