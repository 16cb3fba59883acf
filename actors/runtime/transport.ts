// The transport port: hands committed outbox messages to the queue. QStash in production.
import type { Envelope } from "../../shared/envelope/index.ts";

export interface Transport {
  /**
   * Sends messages in order. Resolves once the queue has durably accepted all of them;
   * rejects otherwise, and the relay retries the whole batch (receivers deduplicate by id).
   */
  send(envelopes: Envelope[]): Promise<void>;
}
