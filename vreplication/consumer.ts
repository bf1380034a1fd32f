// The vreplication queue's consumer: it hands each stream part to its target tablet, which takes
// a part only in its turn (tablet/stream-target.ts). Parts are offered in stream order within a
// batch, so a batch delivered in order is taken whole; a part that is not its turn yet is
// delivered again after a short delay, a duplicate is acknowledged and dropped. Each message is
// acknowledged on its own, so one target that does not answer never makes the others repeat.

import { unwrap } from "../contract/envelope.ts";
import type { StreamPart } from "../contract/stream-rpc.ts";
import type { RpcNamespace, TabletRpc } from "../contract/tablet-rpc.ts";

/** Seconds before a part that came before its turn is offered again. */
const EARLY_DELAY_S = 1;

export type VReplMessage = StreamPart;

function byTurn(a: Message<StreamPart>, b: Message<StreamPart>): number {
  const x = a.body;
  const y = b.body;
  return x.stream < y.stream ? -1 : x.stream > y.stream ? 1 : x.epoch - y.epoch || x.step - y.step;
}

function isPart(body: unknown): body is StreamPart {
  const b = body as Partial<StreamPart> | null;
  return (
    typeof b === "object" &&
    b !== null &&
    typeof b.target === "string" &&
    typeof b.stream === "string" &&
    typeof b.step === "number" &&
    b.bytes instanceof Uint8Array
  );
}

export async function consumeVReplication<Id>(batch: MessageBatch<unknown>, tablets: RpcNamespace<TabletRpc, Id>): Promise<void> {
  const byTarget = new Map<string, Message<StreamPart>[]>();
  for (const m of batch.messages) {
    if (!isPart(m.body)) {
      // Nothing can ever apply it: not a stream part of this version.
      console.warn(`vreplication: dropping a message that is not a stream part: ${JSON.stringify(m.body)?.slice(0, 200)}`);
      m.ack();
      continue;
    }
    const list = byTarget.get(m.body.target) ?? [];
    list.push(m as Message<StreamPart>);
    byTarget.set(m.body.target, list);
  }
  await Promise.all(
    [...byTarget].map(async ([target, messages]) => {
      messages.sort(byTurn);
      try {
        const outcomes = unwrap(await tablets.get(tablets.idFromName(target)).applyStreamParts(messages.map((m) => m.body)));
        messages.forEach((m, i) => {
          if (outcomes[i] === "early") m.retry({ delaySeconds: EARLY_DELAY_S });
          else m.ack();
        });
      } catch (e) {
        console.warn(`vreplication: target ${target} did not take ${messages.length} parts (${e instanceof Error ? e.message : String(e)}); retrying`);
        for (const m of messages) m.retry({ delaySeconds: EARLY_DELAY_S });
      }
    }),
  );
}
