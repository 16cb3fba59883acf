// The console's calls to the broker's REST API (through the `broker` breaker), and what a failure tells an operator.
import { EdgewiseError } from "../../shared/errors/index.ts";
import { isTimeout } from "../../shared/resilience/index.ts";
import type { ConsoleOptions } from "./types.ts";

/** A call to the broker's REST API (`/v2/…`); a failure is thrown as `unavailable`. */
export type BrokerCall = (path: string, init?: RequestInit, signal?: AbortSignal) => Promise<Response>;

/**
 * A call to the broker's REST API, through the node's `broker` breaker and timeout when it gives one
 * (`broker.guard`), as its relays' publishes are: while the breaker is open, the console answers at once instead of
 * waiting out the timeout, and its failures count towards opening it. No answer (refused, reset, timed out, the
 * breaker open) or a 5xx is `unavailable`, a 503 like any dependency that is down; another answer (a 4xx, such as
 * a dead letter deleted meanwhile) is the broker answering, the caller's to read. Only called where
 * `options.broker` is set.
 */
export function brokerCaller(options: ConsoleOptions): BrokerCall {
  return async (path, init = {}, signal) => {
    const broker = options.broker as NonNullable<ConsoleOptions["broker"]>;
    const url = `${broker.url.replace(/\/+$/, "")}${path}`;
    const call = async (callSignal: AbortSignal) => {
      const response = await (broker.fetch ?? fetch)(url, {
        ...init,
        headers: { authorization: `Bearer ${broker.token}`, ...(init.headers ?? {}) },
        signal: callSignal,
      });
      if (response.status >= 500) {
        await response.body?.cancel();
        // Thrown inside the guard, so the breaker counts it as a failure (a 4xx, returned, counts as an answer).
        throw brokerUnavailable(`answered ${response.status}`, false);
      }
      return response;
    };
    try {
      return broker.guard
        ? await broker.guard(call, signal)
        : await call(
            signal
              ? AbortSignal.any([signal, AbortSignal.timeout(brokerTimeoutMs)])
              : AbortSignal.timeout(brokerTimeoutMs),
          );
    } catch (error) {
      throw asBrokerFailure(error);
    }
  };
}

/** How long a call to the broker may take when the node gives no guard (its `broker` policy's timeout otherwise). */
const brokerTimeoutMs = 5_000;

/** What a failed call to the broker is to the operator: `unavailable`, saying whether anything was changed. */
function asBrokerFailure(error: unknown): EdgewiseError {
  if (error instanceof EdgewiseError && error.code === "unavailable" && error.meta?.reason !== undefined) {
    return error;
  }
  if (error instanceof EdgewiseError && error.code === "breaker.open") {
    // Nothing was sent: the breaker refused the call before it was made.
    return brokerUnavailable(
      "is not called while its circuit breaker is open (it failed moments ago)",
      true,
      error,
      error.meta?.retryAfterSeconds,
    );
  }
  // A timeout may have reached the broker after all; a refused or reset connection did not.
  const timedOut = isTimeout(error) || (error as { name?: unknown } | null)?.name === "TimeoutError";
  return brokerUnavailable(timedOut ? "did not answer in time" : "could not be reached", !timedOut, error);
}

/**
 * The broker did not answer, or answered 5xx: `unavailable` (503), which the error handler logs as a dependency
 * down, not a bug. `unchanged`: whether the request surely never reached it (a refused or reset connection).
 */
function brokerUnavailable(
  reason: string,
  unchanged: boolean,
  cause?: unknown,
  retryAfterSeconds?: unknown,
): EdgewiseError {
  return new EdgewiseError(
    "unavailable",
    `the broker (the message queue) ${reason}: ${unchanged ? "nothing was changed" : "the console cannot tell whether the change was made"}`,
    { cause, meta: { reason, ...(typeof retryAfterSeconds === "number" ? { retryAfterSeconds } : {}) } },
  );
}
