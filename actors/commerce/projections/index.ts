// The commerce read side: orders projection and search, activity log, and the versioned read cache.
export { ActivityLog, ListActivityQuery, type RecordResult, subjectsOf } from "./activity-log.ts";
export { pruneSetting } from "./activity-table.ts";
export {
  activityPruner,
  securityEventPruner,
  securityEventRetentionMs,
  securityEventTypes,
} from "./security-retention.ts";
export { cacheAdvanceOf, ReadCacheConsumer } from "./cache-consumer.ts";
export type { OrderEvent } from "./order-events.ts";
export { type OrderLineView, type OrderView, mergeOrder } from "./order-merge.ts";
export { OrdersProjector, type ProjectionReply } from "./orders-projector.ts";
export { ListOrdersQuery } from "./orders-query.ts";
export type { Page } from "./page-limit.ts";
export {
  type CachedEntry,
  type CachedReadOptions,
  type CachedReadResult,
  cachedRead,
  defaultTtlSeconds,
  inventoryCacheKey,
  orderCacheKey,
  type ReadCache,
  type ReadCacheStats,
} from "./read-cache.ts";
export { MemoryReadCache, type MemoryReadCacheOptions } from "./read-cache-memory.ts";
export {
  RedisReadCache,
  type RedisReadCacheOptions,
  retriesPerRequest,
  type ScriptRedis,
} from "./read-cache-redis.ts";
