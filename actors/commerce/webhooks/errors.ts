// The webhook error codes, and which of them the delivery endpoint should dead-letter at once.
import { EdgewiseError } from "../../../shared/errors/index.ts";

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

/** A non-2xx answer, a network error, a timeout or an unresolved name: the broker retries with backoff. */
export const deliveryFailed = (subscriptionId: string, message: string, statusCode?: number) =>
  new EdgewiseError("webhooks.delivery_failed", `webhook ${subscriptionId}: ${message}`, {
    status: 502,
    public: true,
    meta: { subscriptionId, ...(statusCode === undefined ? {} : { statusCode }) },
  });
