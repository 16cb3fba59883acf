// The webhook error codes, and which of them the delivery endpoint should dead-letter at once.
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { retryAfterMs } from "../../queue/retry-policy.ts";

/**
 * `webhooks.target_refused`: the SSRF guard refused the subscription's URL. Retrying cannot help, so the
 * delivery endpoint (edge/routes/deliver.ts) lists it among its poison codes: 489 with
 * `Upstash-NonRetryable-Error`, and the broker dead-letters it at once.
 */
export const NON_RETRYABLE_WEBHOOK_CODES: readonly string[] = ["webhooks.target_refused"];

/** Messages name the subscription and the host, never the full URL: paths often carry the receiver's token. */
export const targetRefused = (subscriptionId: string, message: string) =>
  new EdgewiseError("webhooks.target_refused", `webhook ${subscriptionId}: target refused (${message})`, {
    status: 422,
    public: true,
    meta: { subscriptionId },
  });

/**
 * A non-2xx answer, a network error, a timeout or an unresolved name: the broker retries with backoff, or after
 * `retryAfterSeconds` when the receiver said when to come back (the delivery endpoint answers it as Retry-After,
 * which the broker honours).
 */
export const deliveryFailed = (
  subscriptionId: string,
  message: string,
  statusCode?: number,
  retryAfterSeconds?: number,
) =>
  new EdgewiseError("webhooks.delivery_failed", `webhook ${subscriptionId}: ${message}`, {
    status: 502,
    public: true,
    meta: {
      subscriptionId,
      ...(statusCode === undefined ? {} : { statusCode }),
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    },
  });

/**
 * Seconds from a receiver's Retry-After (delta-seconds, a QStash duration or an HTTP date, read as the broker reads
 * it: at most a day), or undefined when absent or unreadable and the broker's own backoff applies.
 */
export function retryAfterSeconds(value: string | undefined, nowMs: number): number | undefined {
  const ms = retryAfterMs(value ?? null, nowMs);
  return ms === undefined ? undefined : Math.ceil(ms / 1000);
}
