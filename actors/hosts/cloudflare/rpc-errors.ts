// A Durable Object stub call's own failures (reset, overloaded, retryable) as the one error model's 503.
import { EdgewiseError } from "../../../shared/errors/index.ts";

/**
 * The call itself: an object that was reset, overloaded, or failed in its constructor throws from the stub with
 * workerd's flags (`retryable`, `overloaded`, `durableObjectReset`) instead of answering. Those are the platform's
 * transient failures: 503 `unavailable`, which callers and the broker retry, as the local host's `actor.reset`
 * is, not a final 500.
 */
export async function rpc<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const flags = error as { retryable?: unknown; overloaded?: unknown; durableObjectReset?: unknown } | null;
    if (flags?.retryable === true || flags?.overloaded === true || flags?.durableObjectReset === true)
      throw new EdgewiseError("unavailable", "the actor's Durable Object is unavailable; retry", {
        cause: error,
      });
    throw error;
  }
}
