// QStash's 429: the SDK's rate-limit errors, raised as its HttpClient raises them, and how long each asks to wait.
import { QstashChatRatelimitError, QstashDailyRatelimitError, QstashRatelimitError } from "@upstash/qstash";
import { type DependencyPolicy, defaultIsFailure } from "../../shared/resilience/index.ts";
import { retryAfterMs } from "./retry-policy.ts";

/**
 * The error @upstash/qstash 2.12's HttpClient throws for a 429 (its `getResponseError`), chosen by the headers the
 * same way: the chat limit's, the daily limit's (`RateLimit-*`), else the burst limit's (`Burst-RateLimit-*`). A
 * 429 with none of them but a `Retry-After` (a proxy's, say) gets the burst error with `reset` set to the time
 * Retry-After names, in unix seconds as QStash's own, so the relay still waits as long as it was asked.
 */
export function rateLimitError(
  headers: Headers,
  now: number,
): QstashRatelimitError | QstashChatRatelimitError {
  if (headers.get("x-ratelimit-limit-requests")) {
    return new QstashChatRatelimitError({
      "limit-requests": headers.get("x-ratelimit-limit-requests"),
      "limit-tokens": headers.get("x-ratelimit-limit-tokens"),
      "remaining-requests": headers.get("x-ratelimit-remaining-requests"),
      "remaining-tokens": headers.get("x-ratelimit-remaining-tokens"),
      "reset-requests": headers.get("x-ratelimit-reset-requests"),
      "reset-tokens": headers.get("x-ratelimit-reset-tokens"),
    });
  }
  if (headers.get("ratelimit-limit")) {
    return new QstashDailyRatelimitError({
      limit: headers.get("ratelimit-limit"),
      remaining: headers.get("ratelimit-remaining"),
      reset: headers.get("ratelimit-reset"),
    });
  }
  const hinted = headers.get("burst-ratelimit-reset")
    ? undefined
    : retryAfterMs(headers.get("retry-after"), now);
  return new QstashRatelimitError({
    limit: headers.get("burst-ratelimit-limit"),
    remaining: headers.get("burst-ratelimit-remaining"),
    reset:
      hinted === undefined ? headers.get("burst-ratelimit-reset") : String(Math.ceil((now + hinted) / 1000)),
  });
}

/**
 * How long a rate-limited call asked to wait: until its `reset` (a unix timestamp, in seconds as QStash sends it;
 * one past 10^12 is taken as milliseconds). Undefined for any other error, or a reset that is absent or malformed.
 */
export function rateLimitWaitMs(error: unknown, now: number): number | undefined {
  const reset =
    error instanceof QstashChatRatelimitError
      ? error.resetRequests
      : error instanceof QstashRatelimitError || error instanceof QstashDailyRatelimitError
        ? error.reset
        : undefined;
  if (!reset || !/^\d{1,16}(\.\d+)?$/.test(reset.trim())) return undefined;
  const value = Number(reset);
  const at = value >= 1e12 ? value : value * 1000;
  return Math.max(0, Math.ceil(at - now));
}

/** Whether an error is QStash's 429 (any of the SDK's three rate-limit errors, as `rateLimitError` raises them). */
export function isRateLimited(error: unknown): boolean {
  return (
    error instanceof QstashRatelimitError ||
    error instanceof QstashDailyRatelimitError ||
    error instanceof QstashChatRatelimitError
  );
}

/**
 * The `isFailure` of the broker's breaker: a 429 is the queue answering that a limit is spent (a daily one may last
 * hours), not the queue failing. The relay already waits for its reset (`Transport.retryAfterMs`) with every message
 * kept in the outbox; counted as failures, a few of them opened the breaker, which then refused the node's other
 * calls to the broker (the console's) and showed the broker as open in /readyz and /metrics though it answers.
 */
export function brokerIsFailure(error: unknown): boolean {
  return !isRateLimited(error) && defaultIsFailure(error);
}

/** The broker's timeout and breaker, one object for a node's and a Worker's policies alike. */
export const brokerDependencyPolicy: Partial<DependencyPolicy> = {
  timeoutMs: 5_000,
  breaker: { isFailure: brokerIsFailure },
};
