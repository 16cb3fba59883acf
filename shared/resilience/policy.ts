// resilient(): one call path through bulkhead → retry → breaker → timeout → the dependency.
import { EdgewiseError } from "../errors/index.ts";
import { neverAborted } from "./abort.ts";
import type { CircuitBreaker } from "./breaker.ts";
import type { Bulkhead } from "./bulkhead.ts";
import { type RetryOptions, retry, validateRetry } from "./retry.ts";
import { withTimeout } from "./timeout.ts";

export interface ResilientOptions {
  /** Shared per dependency, so /readyz and /metrics see one breaker however many policies use it. */
  breaker?: CircuitBreaker;
  /** Per attempt. */
  timeoutMs?: number;
  /** Only for idempotent calls; leave it out otherwise. The signal comes from each execute(). */
  retry?: Omit<RetryOptions, "signal">;
  bulkhead?: Bulkhead;
}

export interface ResilientPolicy {
  /** `signal` is the caller's: it cancels queueing, backoff and the attempt, and its abort is not a failure. */
  execute<T>(fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T>;
  readonly breaker: CircuitBreaker | undefined;
  readonly bulkhead: Bulkhead | undefined;
}

/**
 * Why this order, outermost first:
 * - bulkhead: one slot per logical call, held through its retries and backoff, so retries cannot multiply the
 *   load past the cap; and a full bulkhead is our own overload, which must never count against the breaker.
 * - retry outside the breaker: every attempt is one breaker call, so failures count as they happen (a breaker
 *   outside retry would see one failure per N attempts, and a half-open probe would become N calls); once the
 *   breaker opens, the next attempt is rejected and the retry loop stops instead of hammering it.
 * - timeout inside the breaker, per attempt: a timed-out attempt counts as a failure, and as a slow call.
 */
export function resilient(options: ResilientOptions): ResilientPolicy {
  const { breaker, timeoutMs, bulkhead } = options;
  if (options.retry) validateRetry(options.retry);
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
    throw new EdgewiseError("config.invalid", `resilient: timeoutMs must be a finite number ≥ 0`);
  }
  const retryOptions = options.retry;

  return {
    breaker,
    bulkhead,
    async execute<T>(
      fn: (signal: AbortSignal) => Promise<T>,
      signal: AbortSignal = neverAborted(),
    ): Promise<T> {
      const attempt = (inner: AbortSignal) =>
        timeoutMs === undefined ? fn(inner) : withTimeout(fn, timeoutMs, inner);
      const guarded = (inner: AbortSignal) =>
        breaker ? breaker.execute(attempt, { signal: inner }) : attempt(inner);
      const retried = (inner: AbortSignal) =>
        retryOptions ? retry(guarded, { ...retryOptions, signal: inner }) : guarded(inner);
      return bulkhead ? bulkhead.execute(retried, { signal }) : retried(signal);
    },
  };
}
