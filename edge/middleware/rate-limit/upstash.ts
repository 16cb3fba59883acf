// upstashLimiter(): @upstash/ratelimit's fixed window over Redis (REST via @upstash/redis, or TCP via tcpRedis).
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { RateLimitDecision, RateLimiter } from "./port.ts";

/**
 * What @upstash/ratelimit calls on its Redis. Its own type says `Pick<Redis, "evalsha" | "get" | "set">`, but on a
 * NOSCRIPT reply it also calls `eval` (src/hash.ts), so an adapter without `eval` breaks on a fresh Redis.
 * `get`/`set` serve only its dynamic limits, which stay off here.
 */
export type RatelimitRedis = Pick<Redis, "evalsha" | "eval" | "get" | "set">;

/** The `Redis` class of `@upstash/redis` (or its `/cloudflare` build on Workers). */
export type UpstashRedisClass = new (config: {
  url: string;
  token: string;
  enableTelemetry?: boolean;
  retry?: { retries: number; backoff: (retryCount: number) => number };
}) => unknown;

/**
 * The limiter's REST client: no telemetry header, and one quick retry, since the SDK's default retries for
 * about 4 s against a dead endpoint and the limiter's own timeout and fallback should decide instead.
 */
export function upstashRestRedis(RedisClass: UpstashRedisClass, url: string, token: string): RatelimitRedis {
  return new RedisClass({
    url,
    token,
    enableTelemetry: false,
    retry: { retries: 1, backoff: () => 50 },
  }) as RatelimitRedis;
}

export interface UpstashLimiterOptions {
  redis: RatelimitRedis;
  /** Requests admitted per window, per identifier. */
  limit: number;
  windowMs: number;
  /** Key prefix: keys are `<prefix>:<identifier>:<window index>`, expiring with their window. */
  prefix: string;
  /**
   * How long Redis may take. Past it the library answers `success: true, reason: "timeout"` (it fails open, and
   * silently); this adapter throws instead, so `resilientLimiter`'s policy decides.
   */
  timeoutMs: number;
  /** Identifiers denied in this isolate, remembered until their window resets; 0 turns it off. Default 10,000. */
  blockedCacheSize?: number;
}

/** The library's ephemeral cache is an unbounded Map unless given one; this one forgets its oldest entry instead. */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.max) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}

/**
 * Fixed window, not the sliding one: its bound is exact and assertable — at most `limit` successes per identifier
 * per window [k·windowMs, (k+1)·windowMs) however many calls race, because one Lua INCRBY decides each — and its
 * buckets match memoryLimiter's, so the fallback reports the same `reset`. The sliding window weighs the previous
 * window by `floor((1 - elapsed) × count)`, an approximation whose admitted count depends on timing.
 *
 * The ephemeral cache is on, bounded: once an identifier is denied, this isolate denies it locally until its
 * window resets, without a Redis round trip. With a fixed window that never changes an outcome (a denied window
 * stays denied), and it spares Redis exactly the traffic an abusive client sends. Analytics and the deny list are
 * off: the first writes extra keys on every call, the second downloads an IP list from GitHub.
 */
export function upstashLimiter(options: UpstashLimiterOptions): RateLimiter {
  const { redis, limit, windowMs, prefix, timeoutMs, blockedCacheSize } = {
    blockedCacheSize: 10_000,
    ...options,
  };
  if (!(timeoutMs > 0)) {
    // The library reads 0 as "no timeout": a hung Redis would then hang every request.
    throw new EdgewiseError("config.invalid", "upstashLimiter: timeoutMs must be > 0");
  }
  const ratelimit = new Ratelimit({
    redis,
    limiter: Ratelimit.fixedWindow(limit, `${windowMs} ms`),
    prefix,
    timeout: timeoutMs,
    analytics: false,
    enableProtection: false,
    dynamicLimits: false,
    enableTelemetry: false,
    ephemeralCache: blockedCacheSize > 0 ? new BoundedMap<string, number>(blockedCacheSize) : false,
  });

  return {
    async limit(identifier: string): Promise<RateLimitDecision> {
      let response: Awaited<ReturnType<typeof ratelimit.limit>>;
      try {
        response = await ratelimit.limit(identifier);
      } catch (error) {
        throw new EdgewiseError("unavailable", "the rate-limit store failed", {
          status: 503,
          public: true,
          cause: error,
        });
      }
      if (response.reason === "timeout") {
        throw new EdgewiseError("unavailable", `the rate-limit store did not answer within ${timeoutMs} ms`, {
          status: 503,
          public: true,
        });
      }
      const { success, remaining, reset } = response;
      return { success, limit: response.limit, remaining, reset, reason: success ? "allowed" : "limited" };
    },
  };
}
