// Queue subscriptions over capnweb: `subscription(req)` creates and deletes them (admin only, the
// body of POST /v1/subscriptions), `subscriptions(req?)` shows them (any user); bad requests are
// catalogued errors that record nothing.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { GateRpc } from "../../gate/rpc.ts";
import { keyspace } from "./subscription-harness.ts";

function gates(): { user: GateRpc; admin: GateRpc; none: GateRpc; ready: Promise<void> } {
  const e = { ...env, GATE_TOKEN: "u", ADMIN_TOKEN: "a" } as Env;
  const user = new GateRpc(e, "none");
  const admin = new GateRpc(e, "none");
  const ready = Promise.all([user.authenticate("u"), admin.authenticate("a")]).then(() => undefined);
  return { user, admin, none: new GateRpc(e, "none"), ready };
}

describe("queue subscriptions over capnweb", () => {
  it("an admin creates and deletes one, a user only sees it, and bad requests change nothing", async () => {
    const KS = "subrpc";
    await keyspace(KS);
    const { user, admin, none, ready } = gates();
    await ready;
    const spec = { action: "create", name: "rpc1", keyspace: KS, binding: "SUBSCRIPTION_QUEUE" } as const;
    await expect(none.subscriptions()).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    await expect(user.subscription(spec)).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    for (const bad of [
      { ...spec, action: "rename" },
      { ...spec, binding: "NO_SUCH_BINDING" },
      { ...spec, bogus: 1 },
      { action: "delete", name: "rpc1", extra: true },
      "rpc1",
      null,
    ]) {
      await expect(admin.subscription(bad)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    await expect(admin.subscription(spec, 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect((await user.subscriptions()).subscriptions.some((s) => s.name === "rpc1")).toBe(false);

    const made = await admin.subscription(spec);
    expect(made).toMatchObject({ name: "rpc1", keyspace: KS, binding: "SUBSCRIPTION_QUEUE" });
    await expect(admin.subscription(spec)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    const shown = await user.subscriptions({ name: "rpc1" });
    expect(shown.subscriptions).toHaveLength(1);
    expect(shown.subscriptions[0]).toMatchObject({ name: "rpc1", keyspace: KS });
    await expect(user.subscriptions({ name: 5 })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(user.subscriptions({ nmae: "rpc1" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });

    await expect(user.subscription({ action: "delete", name: "rpc1" })).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    expect(await admin.subscription({ action: "delete", name: "rpc1" })).toMatchObject({ deleted: { name: "rpc1" } });
    await expect(user.subscriptions({ name: "rpc1" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(admin.subscription({ action: "delete", name: "rpc1" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  }, 60_000);
});
