// memoryLimiter(): an in-process fixed-window limiter with bounded memory, for one node and as the Redis fallback.
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { RateLimitDecision, RateLimiter } from "./port.ts";

export interface MemoryLimiterOptions {
  /** Requests admitted per window, per identifier. */
  limit: number;
  windowMs: number;
  clock?: Clock;
  /** Most identifiers tracked at once; past it the least recently seen is forgotten. Default 10,000. */
  maxKeys?: number;
}

/**
 * Hand-written rather than a library: it is a few dozen lines, runs unchanged on workerd, Bun and Deno, and starts no
 * timer (workerd forbids I/O and timers at module scope, and an interval would keep a Bun process alive). Windows
 * roll over lazily, on the first call after a boundary.
 *
 * Algorithm: fixed windows aligned to multiples of `windowMs` since the epoch, the same buckets as
 * @upstash/ratelimit's fixedWindow, so the fallback agrees with the primary on `reset`.
 * Bound: at most `limit` allowed per identifier in each window [k·windowMs, (k+1)·windowMs); a burst straddling a
 * boundary can see up to 2·limit within one windowMs-long span. Denied calls are not counted.
 * Memory: one Map entry per identifier seen in the current window, at most `maxKeys`; the whole map is dropped at
 * rollover. Forgetting an identifier under key pressure gives it a fresh allowance, so size `maxKeys` above the
 * number of callers one node sees in a window.
 */
export function memoryLimiter(options: MemoryLimiterOptions): RateLimiter {
  const { limit, windowMs, clock, maxKeys } = { clock: systemClock, maxKeys: 10_000, ...options };
  for (const [name, value] of Object.entries({ limit, windowMs, maxKeys })) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new EdgewiseError("config.invalid", `memoryLimiter: ${name} must be a whole number ≥ 1`);
    }
  }
  let window = Number.NaN;
  let counts = new Map<string, number>();

  return {
    async limit(identifier: string): Promise<RateLimitDecision> {
      const index = Math.floor(clock.now() / windowMs);
      if (index !== window) {
        window = index;
        counts = new Map();
      }
      const reset = (index + 1) * windowMs;
      const used = counts.get(identifier) ?? 0;
      // Delete and re-insert: Map keeps insertion order, so the first key is always the least recently seen.
      counts.delete(identifier);
      if (counts.size >= maxKeys) {
        const oldest = counts.keys().next();
        if (!oldest.done) counts.delete(oldest.value);
      }
      if (used >= limit) {
        counts.set(identifier, used);
        return { success: false, limit, remaining: 0, reset, reason: "limited" };
      }
      counts.set(identifier, used + 1);
      return { success: true, limit, remaining: limit - used - 1, reset, reason: "allowed" };
    },
  };
}
