// The Queue a subscription publishes to: a Queue producer binding of the Worker's env, named by the
// subscription. Checked at create (a refusal changes nothing) and again by the publisher on each
// round (a binding removed by a later deploy shows as the subscription's last error).

import { VtError } from "../contract/errors.ts";
import type { QueueSender } from "./subscription-publish.ts";

/** Bindings of the system itself, never a subscription's: the vreplication queue's consumer drops what is not a stream part. */
const SYSTEM_BINDINGS: ReadonlySet<string> = new Set(["VREPL_QUEUE"]);

/** The Queue producer `binding` of `env`, or INVALID_ARGUMENT naming why not. */
export function queueProducer(env: Env, binding: unknown): QueueSender {
  if (typeof binding !== "string" || binding === "")
    throw new VtError("INVALID_ARGUMENT", 'subscription: "binding" must name a Queue producer binding', { field: "binding" });
  if (SYSTEM_BINDINGS.has(binding)) {
    throw new VtError(
      "INVALID_ARGUMENT",
      `subscription: ${binding} is the system's own queue; bind a queue of your own ([[queues.producers]] in wrangler.toml)`,
      {
        field: "binding",
      },
    );
  }
  const b: unknown = Object.hasOwn(env, binding) ? (env as unknown as Record<string, unknown>)[binding] : undefined;
  if (b === undefined) {
    throw new VtError("INVALID_ARGUMENT", `subscription: the Worker has no binding ${binding}; add it as [[queues.producers]] in wrangler.toml`, {
      field: "binding",
    });
  }
  const q = b as Partial<Queue>;
  // A Queue producer is an object with send and sendBatch (a var is a string, a Durable Object namespace has neither).
  if (typeof b !== "object" || b === null || typeof q.send !== "function" || typeof q.sendBatch !== "function") {
    throw new VtError("INVALID_ARGUMENT", `subscription: the binding ${binding} is not a Queue producer`, { field: "binding" });
  }
  return { sendBatch: (messages) => (q.sendBatch as Queue["sendBatch"]).call(b, [...messages]) };
}
