// The rate-limiter port: one call per request, and an outcome that is a value, never an exception.

/**
 * - `allowed` / `limited`: the limiter decided.
 * - `fallback`: the primary store failed, and the local fallback decided (policy "open"); `success` may be either.
 * - `unavailable`: the primary store failed and the policy is "closed"; `success` is false and means 503, not 429.
 */
export type RateLimitReason = "allowed" | "limited" | "fallback" | "unavailable";

export interface RateLimitDecision {
  success: boolean;
  /** The most requests the window admits. */
  limit: number;
  /** Requests left in the current window, never negative. */
  remaining: number;
  /** When the current window ends, epoch milliseconds. */
  reset: number;
  reason: RateLimitReason;
}

export interface RateLimiter {
  /**
   * Counts one request for `identifier` and says whether it may pass. Throws (or never settles) only when the
   * store behind it fails; `resilientLimiter` turns that into a decision.
   */
  limit(identifier: string): Promise<RateLimitDecision>;
}
