// The node's Redis client, when configured (Upstash REST, or TCP), and the rate limiter on it or in memory.
import { dueAfter } from "../shared/clock/index.ts";
import { Redis } from "@upstash/redis";
import { configuredLimiter } from "../edge/middleware/rate-limit/configured.ts";
import { guardedRedis } from "../edge/middleware/rate-limit/guarded-redis.ts";
import type { RateLimiter } from "../edge/middleware/rate-limit/port.ts";
import { type RatelimitRedis, upstashRestRedis } from "../edge/middleware/rate-limit/upstash.ts";
import type { Dependencies } from "../shared/resilience/index.ts";
import { errorFields, type Logger } from "../shared/telemetry/log/index.ts";
import type { NodeOptions } from "./node-options.ts";
import type { Stop } from "./node-stop.ts";

export interface NodeRateLimit {
  /** The client itself, for readiness: a probe must see Redis, not its breaker's fast failure. */
  rawRedis: RatelimitRedis | undefined;
  /** The client behind the `redis` breaker, for the limiter and extensions. */
  rateLimitRedis: RatelimitRedis | undefined;
  limiter: RateLimiter;
}

export function nodeRateLimit(
  options: NodeOptions,
  dependencies: Dependencies,
  logger: Logger,
  stops: Stop[],
): NodeRateLimit {
  const { config } = options;
  const rawRedis = config.UPSTASH_REDIS_REST_URL
    ? upstashRestRedis(Redis, config.UPSTASH_REDIS_REST_URL, config.UPSTASH_REDIS_REST_TOKEN as string)
    : config.REDIS_URL && options.tcpRedis
      ? options.tcpRedis(config.REDIS_URL)
      : undefined;
  if (rawRedis && "close" in rawRedis) stops.push(() => (rawRedis as { close(): void }).close());
  const rateLimitRedis = rawRedis ? guardedRedis(rawRedis, dependencies) : undefined;
  const limiter = configuredLimiter({
    rate: config.RATE_LIMIT,
    onRedisFailure: config.RATE_LIMIT_ON_REDIS_FAILURE,
    ...(rateLimitRedis ? { redis: rateLimitRedis } : {}),
    prefix: `${config.REDIS_KEY_PREFIX}rl`,
    // Told of every request that found Redis failing (thousands a second under load, the breaker open): one line
    // per interval, with how many it stands for, so the outage shows without flooding the log.
    report: everyInterval(10_000, (error, failures) =>
      logger.warn(
        "rate limiter: Redis failed; counting locally or refusing, as RATE_LIMIT_ON_REDIS_FAILURE says",
        {
          failures,
          error: errorFields(error),
        },
      ),
    ),
  });
  return { rawRedis, rateLimitRedis, limiter };
}

/**
 * For a failure told per request: `report` runs for the first one, then at most once per `intervalMs`, with how
 * many failures (this one included) happened since the last line.
 */
export function everyInterval(
  intervalMs: number,
  report: (error: unknown, failures: number) => void,
  now: () => number = Date.now,
): (error: unknown) => void {
  let last = Number.NEGATIVE_INFINITY;
  let failures = 0;
  return (error) => {
    failures++;
    const at = now();
    if (!dueAfter(at, last, intervalMs)) return;
    last = at;
    report(error, failures);
    failures = 0;
  };
}
