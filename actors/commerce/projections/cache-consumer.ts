// The cache consumer (`cache/reads`): each StockChanged or order event advances its read-cache key to its version.
import * as v from "valibot";
import { type Envelope, parseEnvelope } from "../../../shared/envelope/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import type { MessageConsumer } from "../../runtime/consumers.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import { EventTypes, Participants, StockChanged } from "../messages.ts";
import { parseOrderEvent } from "./order-events.ts";
import { inventoryCacheKey, orderCacheKey, type ReadCache } from "./read-cache.ts";

/** The cache key and version an event moves; `message.unknown_type` / `message.invalid` otherwise. */
export function cacheAdvanceOf(envelope: Envelope, consumer = "cache"): { key: string; version: number } {
  if (envelope.type === EventTypes.StockChanged) {
    const result = v.safeParse(StockChanged, envelope.data);
    if (!result.success) throw validationError("message.invalid", "StockChanged message", result.issues);
    return { key: inventoryCacheKey(result.output.sku), version: result.output.version };
  }
  const event = parseOrderEvent(envelope, consumer);
  return { key: orderCacheKey(event.data.orderId), version: event.data.version };
}

/**
 * Subscribed to StockChanged (key `reads`) and the order events. `advance` is idempotent (the floor only
 * grows), so a redelivery changes nothing; `duplicate` is always false, as the cache cannot tell. A Redis failure
 * throws `unavailable` (503), so the queue retries; the Redis cache also applies the advance itself once Redis
 * answers (RedisReadCache), and the entry's TTL bounds how stale a read can be.
 */
export class ReadCacheConsumer implements MessageConsumer {
  readonly type = Participants.cache;

  constructor(private readonly cache: ReadCache) {}

  async receive(envelope: Envelope): Promise<TurnOutcome> {
    const { key, version } = cacheAdvanceOf(parseEnvelope(envelope), this.type);
    await this.cache.advance(key, version);
    return { duplicate: false, reply: { key, version } };
  }
}
