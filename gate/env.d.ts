// Secrets are not in wrangler.toml, so `wrangler types` does not see them.
interface Env {
  /** When set, every request needs `Authorization: Bearer <GATE_TOKEN>`. */
  GATE_TOKEN?: string;
  /** When set, admin operations (keyspaces, vschema) need it. */
  ADMIN_TOKEN?: string;
}
