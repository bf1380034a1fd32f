// Bearer tokens (⚑): GATE_TOKEN guards every request; ADMIN_TOKEN, when set, guards admin
// operations (and is accepted wherever GATE_TOKEN is).

import { VtError } from "../topology/errors.ts";

export type Access = "none" | "user" | "admin";

function equal(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.length !== y.length) return false;
  let d = 0;
  for (let i = 0; i < x.length; i++) d |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return d === 0;
}

/** What a presented token (or none) grants. With no tokens configured, everyone is admin. */
export function accessFor(env: Env, token: string | null): Access {
  const gate = env.GATE_TOKEN || "";
  const admin = env.ADMIN_TOKEN || "";
  if (token !== null && admin !== "" && equal(token, admin)) return "admin";
  const userOk = gate === "" || (token !== null && equal(token, gate));
  if (!userOk) return "none";
  return admin === "" ? "admin" : "user";
}

export function bearer(req: Request): string | null {
  const h = req.headers.get("authorization");
  if (!h) return null;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m?.[1]?.trim() ?? null;
}

export function requireAccess(have: Access, need: "user" | "admin"): void {
  if (have === "none") throw new VtError("UNAUTHENTICATED", "missing or wrong bearer token (Authorization: Bearer <GATE_TOKEN>)");
  if (need === "admin" && have !== "admin") throw new VtError("PERMISSION_DENIED", "this operation needs the ADMIN_TOKEN");
}
