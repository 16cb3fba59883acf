// configuredLimiter(): RATE_LIMIT and RATE_LIMIT_ON_REDIS_FAILURE turned into one limiter, with or without Redis.
import type { Clock } from "../../../shared/clock/index.ts";
import { memoryLimiter } from "./memory.ts";
import type { RateLimiter } from "./port.ts";
import { resilientLimiter } from "./resilient.ts";
import { type RatelimitRedis, upstashLimiter } from "./upstash.ts";

export interface ConfiguredLimiterOptions {
  /** `config.RATE_LIMIT`. */
  rate: { limit: number; windowMs: number };
  /** `config.RATE_LIMIT_ON_REDIS_FAILURE`. */
  onRedisFailure: "open" | "closed";
  /**
   * The shared store, when there is one: `tcpRedis({ url })` on Bun with REDIS_URL, or `new Redis({ url, token })`
   * from @upstash/redis with UPSTASH_REDIS_REST_*. Without it, each node limits on its own, in memory.
   */
  redis?: RatelimitRedis;
  /** Default `edgewise:rl`. */
  prefix?: string;
  /** How long Redis may take per call. Default 300 ms. */
  timeoutMs?: number;
  /** Told about each Redis failure. */
  report?: (error: unknown) => void;
  clock?: Clock;
}

/**
 * One limiter for every route class: identifiers already carry the class (`read:sub:alice`), so the classes
 * share a store and a fallback but never a count. Give `rateLimit({ limiterFor: () => limiter })`.
 */
export function configuredLimiter(options: ConfiguredLimiterOptions): RateLimiter {
  const { rate, onRedisFailure, redis, prefix = "edgewise:rl", timeoutMs = 300, report, clock } = options;
  const local = memoryLimiter({ ...rate, ...(clock ? { clock } : {}) });
  if (!redis) return local;
  return resilientLimiter(upstashLimiter({ redis, ...rate, prefix, timeoutMs }), {
    fallback: local,
    onFailure: onRedisFailure,
    // A backstop only: upstashLimiter's own timeout fires first.
    timeoutMs: timeoutMs + 200,
    ...(report ? { report } : {}),
    ...(clock ? { clock } : {}),
  });
}
