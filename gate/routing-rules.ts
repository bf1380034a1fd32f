// Routing rules (Vitess's): while a MoveTables is open, a table it moves is served by one
// keyspace, the source before the switch and the target after, whichever of the two the client
// names. The gate resolves a statement's keyspace through them before planning, so the plan is
// made (and cached) on the keyspace that serves its tables.

import type { KeyspaceGraph, ServingGraph } from "../contract/serving-graph.ts";
import { unsupportedError } from "../topology/refusals.ts";
import { namedTables } from "./planner/plan.ts";
import { parseOne } from "./sql/parse.ts";

const ROUTED = new Set(["select_stmt", "compound_select_stmt", "insert_stmt", "update_stmt", "delete_stmt"]);

/** The keyspace that serves `sql` named on `ks`: `ks` itself unless a routing rule sends its tables elsewhere. */
export function routedKeyspace(graph: ServingGraph, ks: KeyspaceGraph, sql: string): KeyspaceGraph {
  const rules = graph.routingRules;
  if (!rules) return ks;
  const prefix = `${ks.name.toLowerCase()}.`;
  if (!Object.keys(rules).some((k) => k.startsWith(prefix))) return ks;
  let stmt: ReturnType<typeof parseOne>["stmt"];
  try {
    stmt = parseOne(sql).stmt;
  } catch {
    return ks; // the planner reports it
  }
  if (!ROUTED.has(stmt.type)) return ks;
  const to = new Set(namedTables(stmt).map((t) => rules[prefix + t.toLowerCase()] ?? ks.name));
  if (to.size > 1) {
    throw unsupportedError(
      "VD2706",
      `this statement names tables served by different keyspaces (${[...to].sort().join(", ")}) while a MoveTables moves some of them; query them apart until it completes`,
      { keyspaces: [...to].sort() },
    );
  }
  const name = [...to][0];
  return name === undefined || name === ks.name ? ks : (graph.keyspaces[name] ?? ks);
}

/** The one keyspace that serves every statement of a transaction named on `ks` (VD2706 when the rules split them). */
export function routedBatch(graph: ServingGraph, ks: KeyspaceGraph, statements: readonly { readonly sql: string }[]): KeyspaceGraph {
  const routed = statements.map((st) => routedKeyspace(graph, ks, st.sql));
  const names = [...new Set(routed.map((r) => r.name))].sort();
  if (names.length > 1) {
    throw unsupportedError(
      "VD2706",
      `this transaction names tables served by different keyspaces (${names.join(", ")}) while a MoveTables moves some of them; run them apart until it completes`,
      { keyspaces: names },
    );
  }
  return routed[0] ?? ks;
}
