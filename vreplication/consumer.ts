// VReplication queue consumer. Streams between shards (copy, catch-up, running replication)
// arrive with the Reshard issue; until then no producer sends anything, and a message that
// does arrive is retried rather than dropped, so nothing is lost.

export interface VReplMessage {
  readonly stream: string;
  readonly kind: string;
}

export async function consumeVReplication(batch: MessageBatch<VReplMessage>, _env: Env): Promise<void> {
  for (const m of batch.messages) {
    console.warn(`vreplication: no stream handler yet for ${JSON.stringify(m.body).slice(0, 200)}; retrying later`);
    m.retry({ delaySeconds: 60 });
  }
}
