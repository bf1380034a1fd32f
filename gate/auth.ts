// Bearer tokens (⚑): GATE_TOKEN guards every request; ADMIN_TOKEN, when set, guards admin
// operations (and is accepted wherever GATE_TOKEN is).
//
// Tokens are compared as SHA-256 digests with crypto.subtle.timingSafeEqual: both sides are
// always 32 bytes, so neither the position of the first differing byte nor the length of the
// configured token shows in the time a wrong guess takes.

import { VtError } from "../contract/errors.ts";

export type Access = "none" | "user" | "admin";

async function digest(s: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
}

/** Constant-time in the contents and lengths of both strings. */
export async function tokensEqual(presented: string, configured: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(presented), digest(configured)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** What a presented token (or none) grants. With no tokens configured, everyone is admin. */
export async function accessFor(env: Env, token: string | null): Promise<Access> {
  const gate = env.GATE_TOKEN || "";
  const admin = env.ADMIN_TOKEN || "";
  // Both comparisons always run when a token is presented, so which one matched does not show.
  const isAdmin = token !== null && admin !== "" ? tokensEqual(token, admin) : Promise.resolve(false);
  const isGate = token !== null && gate !== "" ? tokensEqual(token, gate) : Promise.resolve(false);
  const [a, g] = await Promise.all([isAdmin, isGate]);
  if (a) return "admin";
  if (gate !== "" && !g) return "none";
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
