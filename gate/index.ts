// The Worker: HTTP and capnweb endpoints of the gate, the vreplication queue consumer, and the
// Durable Object / Workflow classes wrangler.toml binds.

import { newWorkersRpcResponse } from "capnweb";
import { accessFor, bearer } from "./auth.ts";
import { errorResponse, handleHttp } from "./http.ts";
import { GateRpc } from "./rpc.ts";
import { consumeVReplication, type VReplMessage } from "../vreplication/consumer.ts";

export { Tablet } from "../tablet/tablet.ts";
export { Topology } from "../topology/topology-do.ts";
export { ReshardWorkflow } from "../workflows/reshard.ts";

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname === "/rpc") {
      try {
        return await newWorkersRpcResponse(req, new GateRpc(env, accessFor(env, bearer(req))));
      } catch (e) {
        return errorResponse(e);
      }
    }
    return handleHttp(req, env);
  },
  async queue(batch, env) {
    await consumeVReplication(batch, env);
  },
} satisfies ExportedHandler<Env, VReplMessage>;
