// The read-cache port, its version rule, and cachedRead(): what the gateway calls for cacheable GETs.
import { EdgewiseError } from "../../../shared/errors/index.ts";

/*
 * What is cached, and why it is safe:
 * - GET /v1/inventory/{sku} (key `inventory:{sku}`) and GET /v1/orders/{orderId} (key `order:{orderId}`), each with
 *   the version of the aggregate it was read from.
 * - Every change to a sku publishes StockChanged with the new version, and every order event carries the order's
 *   version; the cache consumer (`cache/reads`) turns each into `advance(key, version)`, which raises the key's
 *   floor and drops anything older. A load that raced with a change (read v1, event v2 arrives, then fill v1) is
 *   refused because v1 is below the floor.
 * - A pending order changes without events (each StockReserved bumps its version, and only OrderConfirmed or
 *   OrderRejected is published), so no advance would ever evict it: the gateway caches an order only when its
 *   status is not `pending` (pass `cacheable: (order) => order.status !== "pending"`). Confirmed orders still
 *   change once more (cancel), and that publishes OrderCancelled.
 * - An advance that fails (Redis down or slow) is remembered by the Redis cache that tried it and applied as soon as
 *   Redis answers again (before that node's next read or fill of the key, and by a retry every cooldown), so the
 *   value it should have dropped is not served once Redis is back; the queue retries the event besides.
 * - Entries live `ttlSeconds` (default 60 s) at most, which bounds staleness when an advance is lost or late.
 * - Redis outlives a node's restore from backup: its entries and floors are then newer than the restored actors, so
 *   the node's first start after a restore deletes its prefix's keys (deploy/read-cache-restored.ts).
 * - Redis failing never fails a read: `cachedRead` falls through to `load` and does not fill; the cache counts the
 *   failure in `stats().errors`.
 */

export interface CachedEntry {
  version: number;
  value: unknown;
}

export interface ReadCacheStats {
  hits: number;
  misses: number;
  /** Operations that failed or were skipped because the store was failing (reads then fall through to load). */
  errors: number;
}

/**
 * A key's floor only grows. `fill` stores only when `version >= floor` and `version >` the stored version (and
 * raises the floor to `version`); `advance(key, v)` raises the floor to v and drops a stored value older than v.
 * Values must be JSON; `get` returns a fresh copy. Implementations: memory, Redis (REST or TCP, same Lua).
 */
export interface ReadCache {
  get(key: string): Promise<CachedEntry | undefined>;
  fill(key: string, version: number, value: unknown, ttlSeconds: number): Promise<void>;
  advance(key: string, version: number): Promise<void>;
  stats(): ReadCacheStats;
}

export const defaultTtlSeconds = 60;
/** How long a floor outlives its last advance or fill: far longer than any load takes. */
export const defaultFloorTtlSeconds = 3600;

export const inventoryCacheKey = (sku: string) => `inventory:${sku}`;
export const orderCacheKey = (orderId: string) => `order:${orderId}`;

export class CacheCounters {
  hits = 0;
  misses = 0;
  errors = 0;
  snapshot(): ReadCacheStats {
    return { hits: this.hits, misses: this.misses, errors: this.errors };
  }
}

/** Versions are non-negative safe integers (an aggregate's change counter). */
export function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new EdgewiseError(
      "internal",
      `read cache: version must be a non-negative safe integer, got ${version}`,
    );
  }
}

export function checkTtl(ttlSeconds: number): void {
  if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) {
    throw new EdgewiseError("internal", `read cache: ttlSeconds must be positive, got ${ttlSeconds}`);
  }
}

export interface CachedReadOptions<T> {
  /** Default 60. */
  ttlSeconds?: number;
  /** Whether this value may be stored; default: always. Orders: `(order) => order.status !== "pending"`. */
  cacheable?: (value: T) => boolean;
}

export interface CachedReadResult<T> {
  version: number;
  value: T;
  /** Served from the cache. */
  hit: boolean;
}

/**
 * Get, else load and fill. `load` reads the source of truth (the actor) and returns the value with its version;
 * what it throws (e.g. `not_found`) propagates and nothing is cached. A cache that throws is bypassed: the read is
 * loaded, and no fill is attempted while the cache is failing.
 */
export async function cachedRead<T>(
  cache: ReadCache,
  key: string,
  load: () => Promise<{ version: number; value: T }>,
  options: CachedReadOptions<T> = {},
): Promise<CachedReadResult<T>> {
  let reachable = true;
  try {
    const entry = await cache.get(key);
    if (entry) return { version: entry.version, value: entry.value as T, hit: true };
  } catch {
    reachable = false;
  }
  const loaded = await load();
  if (reachable && (options.cacheable?.(loaded.value) ?? true)) {
    try {
      await cache.fill(key, loaded.version, loaded.value, options.ttlSeconds ?? defaultTtlSeconds);
    } catch {
      // Counted by the cache; the read is served all the same.
    }
  }
  return { version: loaded.version, value: loaded.value, hit: false };
}
