// resilientLimiter(): the policy for a failing primary store — fail open to a local limiter, or closed with 503.
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { RateLimitDecision, RateLimiter } from "./port.ts";

export interface ResilientLimiterOptions {
  /** Decides when the primary cannot (policy "open"); typically memoryLimiter with the same limit and window. */
  fallback: RateLimiter;
  /** RATE_LIMIT_ON_REDIS_FAILURE: `open` asks the fallback, `closed` refuses with `unavailable` (503). */
  onFailure: "open" | "closed";
  /**
   * A backstop for a primary that never settles. Keep it above the primary's own timeout (upstashLimiter's
   * `timeoutMs`), which should fire first. Default 1000 ms.
   */
  timeoutMs?: number;
  /** Told about every primary failure: for logs, metrics or a breaker. Must not throw. */
  report?: (error: unknown) => void;
  /** How soon a refused (`closed`) caller should retry; becomes `reset`. Default 1000 ms. */
  retryAfterMs?: number;
  clock?: Clock;
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new EdgewiseError("unavailable", `the rate limiter did not answer within ${ms} ms`)),
      ms,
    );
  });
  // Promise.race subscribes to `work`, so its late rejection is handled, not reported as unhandled.
  return Promise.race([work, deadline]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

export function resilientLimiter(primary: RateLimiter, options: ResilientLimiterOptions): RateLimiter {
  const { fallback, onFailure, timeoutMs, report, retryAfterMs, clock } = {
    timeoutMs: 1000,
    retryAfterMs: 1000,
    clock: systemClock,
    ...options,
  };

  return {
    async limit(identifier: string): Promise<RateLimitDecision> {
      try {
        // `primary.limit` may throw synchronously as well as reject; both land in the catch.
        return await withDeadline(primary.limit(identifier), timeoutMs);
      } catch (error) {
        report?.(error);
        if (onFailure === "closed") {
          return {
            success: false,
            limit: 0,
            remaining: 0,
            reset: clock.now() + retryAfterMs,
            reason: "unavailable",
          };
        }
        return { ...(await fallback.limit(identifier)), reason: "fallback" };
      }
    },
  };
}
