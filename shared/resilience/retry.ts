// retry(): capped exponential backoff with full or equal jitter, for calls the caller declares idempotent.
import { EdgewiseError, isEdgewiseError } from "../errors/index.ts";
import { neverAborted, type Sleep, sleep as timerSleep } from "./abort.ts";

export interface BackoffOptions {
  /** The ceiling of the first retry's delay; it doubles per retry. Default 100 ms. */
  baseMs?: number;
  /** The cap on any one delay. Default 5 s. */
  maxMs?: number;
  /** `full`: uniform in [0, ceiling). `equal`: ceiling/2 plus uniform in [0, ceiling/2). Default `full`. */
  jitter?: "full" | "equal";
}

export interface RetryOptions extends BackoffOptions {
  /**
   * Must be `true`: retrying a call that is not idempotent (a payment, a publish without a dedup id) can
   * apply it twice. There is no default, so every call site says so.
   */
  idempotent: true;
  /** Attempts in all, the first included. Default 3. */
  attempts?: number;
  /** Whether an error is worth another attempt. Default: defaultRetryOn. Aborts and open breakers never are. */
  retryOn?: (error: unknown, attempt: number) => boolean;
  /** The caller's signal: stops the loop, and cuts a backoff sleep short. */
  signal?: AbortSignal;
  /** Told before each backoff sleep. Must not throw. */
  onRetry?: (event: { attempt: number; delayMs: number; error: unknown }) => void;
  /** For tests: the sleep between attempts, and the random source of the jitter. */
  sleep?: Sleep;
  random?: () => number;
}

/** The delay before retry number `retry` (1 for the first retry), given `random()` in [0, 1). */
export function backoffDelay(
  retry: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { baseMs = 100, maxMs = 5_000, jitter = "full" } = options;
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(jitter === "equal" ? ceiling / 2 + (random() * ceiling) / 2 : random() * ceiling);
}

/**
 * Retries server-side trouble: any error that is not an EdgewiseError (a network failure, a driver error), and
 * EdgewiseErrors with a 5xx, 408 or 429 status, except a full bulkhead (more load would not help).
 */
export function defaultRetryOn(error: unknown): boolean {
  if (!isEdgewiseError(error)) return true;
  if (error.code === "bulkhead.full") return false;
  return error.status >= 500 || error.status === 408 || error.status === 429;
}

/** Checks retry options once; the policy calls it at construction so a bad config fails at startup. */
export function validateRetry(options: RetryOptions): void {
  const problems = [
    options.idempotent === true ? undefined : "idempotent must be true: only idempotent calls may be retried",
    isInteger(options.attempts ?? 3, 1) ? undefined : "attempts must be an integer ≥ 1",
    isInteger(options.baseMs ?? 100, 0) ? undefined : "baseMs must be an integer ≥ 0",
    isInteger(options.maxMs ?? 5_000, 0) ? undefined : "maxMs must be an integer ≥ 0",
  ].filter((problem) => problem !== undefined);
  if (problems.length > 0) throw new EdgewiseError("config.invalid", `retry: ${problems.join("; ")}`);
}

/**
 * Runs `fn` up to `attempts` times. It stops at once on the caller's abort and on an open breaker's rejection
 * (the breaker says when to come back in its meta; hammering it would only prolong the outage).
 */
export async function retry<T>(
  fn: (signal: AbortSignal, attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  validateRetry(options);
  const { attempts = 3, retryOn = defaultRetryOn, sleep = timerSleep, random = Math.random } = options;
  const signal = options.signal ?? neverAborted();
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted();
    try {
      return await fn(signal, attempt);
    } catch (error) {
      const final =
        attempt >= attempts ||
        signal.aborted ||
        (isEdgewiseError(error) && error.code === "breaker.open") ||
        !retryOn(error, attempt);
      if (final) throw error;
      const delayMs = backoffDelay(attempt, options, random);
      try {
        options.onRetry?.({ attempt, delayMs, error });
      } catch {
        // observation never changes behaviour
      }
      await sleep(delayMs, signal);
    }
  }
}

function isInteger(value: number, min: number): boolean {
  return Number.isInteger(value) && value >= min;
}
