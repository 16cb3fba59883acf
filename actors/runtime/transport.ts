// The transport port: hands committed outbox messages to the queue. QStash in production.
import type { Envelope } from "../../shared/envelope/index.ts";

export interface Transport {
  /**
   * Sends messages in order. Resolves once the queue has durably accepted all of them;
   * rejects otherwise, and the relay retries the whole batch (receivers deduplicate by id).
   */
  send(envelopes: Envelope[]): Promise<void>;
  /**
   * After a failed send: if the queue is known to be unavailable (its breaker is open), how long until a send is
   * let through again. The relay retries then rather than backing off further, so it drains soon after the queue
   * is back, and the breaker still keeps the load off a queue that is down.
   */
  availableInMs?(): number | undefined;
  /**
   * After a failed send: how long the queue asked to wait, when it refused for a rate limit and said until when
   * (QStash's 429 and its reset). The relay sends nothing more from that pass and retries no sooner (its longest
   * backoff at most); undefined for any other failure.
   */
  retryAfterMs?(error: unknown): number | undefined;
  /**
   * While the queue's last answer to a send was such a refusal and its reset is still ahead: that reset, in ms since
   * the epoch (/readyz shows it). Undefined otherwise, and once a send is taken.
   */
  rateLimitedUntil?(): number | undefined;
}
