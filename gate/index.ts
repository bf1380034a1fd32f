// The Worker: HTTP and capnweb endpoints of the gate, the vreplication queue consumer (and the demo
// subscription queue's, gate/subscriptions.ts), and the
// Durable Object / Workflow classes wrangler.toml binds.

import { handleHttp } from "./http.ts";
import { consumeVReplication } from "../vreplication/consumer.ts";
import { consumeDemoQueue, DEMO_QUEUE } from "./subscriptions.ts";

export { Tablet } from "../tablet/tablet.ts";
export { Topology } from "../topology/topology-do.ts";
export { Catalog } from "../topology/catalog-do.ts";
export { ReshardWorkflow } from "../workflows/reshard.ts";
export { SubscriptionPublisher } from "./subscription-publisher.ts";
export { SubscriptionInbox } from "./subscription-inbox.ts";

export default {
  async fetch(req, env) {
    return handleHttp(req, env);
  },
  async queue(batch, env) {
    if (batch.queue === DEMO_QUEUE) await consumeDemoQueue(batch, env);
    else await consumeVReplication(batch, env.TABLET);
  },
} satisfies ExportedHandler<Env, unknown>;
