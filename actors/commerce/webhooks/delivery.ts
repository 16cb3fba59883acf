// `webhooks/{subscriptionId}`: one signed POST per attempt; a non-2xx throws so the broker retries it.
import type { Clock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { isBreakerOpen } from "../../../shared/resilience/index.ts";
import type { TurnOutcome } from "../../runtime/turn.ts";
import { deliveryFailed, retryAfterSeconds, targetRefused } from "./errors.ts";
import { type WebhookDelivery, webhookEventName, webhookPayload } from "./messages.ts";
import { type PostWebhook, postWithFetch, type WebhookAnswer } from "./post.ts";
import { signedHeaders } from "./sign.ts";
import { checkTarget, isPermanentRefusal, type TargetPolicy } from "./ssrf.ts";
import { signingSecrets } from "./management.ts";
import type { WebhookStore } from "./store.ts";

export interface DeliveryOptions {
  store: Pick<WebhookStore, "getSubscription" | "wasDelivered" | "recordAttempt" | "deleteSubscription">;
  policy: TargetPolicy;
  clock: Clock;
  /** Per attempt. Default 10 s. */
  timeoutMs?: number;
  userAgent?: string;
  /**
   * Runs each POST through the target host's breaker (`webhook:<host>`): a receiver that keeps failing is
   * not called at all while its breaker is open, and the broker retries later.
   */
  guard?: <T>(host: string, post: (signal: AbortSignal) => Promise<T>) => Promise<T>;
  /**
   * The HTTP port. Bun and Deno inject `postWithNodeHttp` (node-post.ts), which connects only to the addresses
   * the check approved. Default: `postWithFetch`, which resolves the name again (for Workers).
   */
  post?: PostWebhook;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Sends one delivery. Resolves (2xx; 410 Gone, which disables the subscription; or nothing to do: the subscription
 * was deleted, or an earlier attempt already got a 2xx) or throws: `webhooks.target_refused` (permanent) or `webhooks.delivery_failed`
 * (retryable). Every attempt is logged. The URL is checked on every attempt, since DNS can change, and the POST
 * goes to the addresses that check approved (with a pinning `post`).
 */
export async function deliver(options: DeliveryOptions, delivery: WebhookDelivery): Promise<TurnOutcome> {
  const { store } = options;
  const { subscriptionId, event } = delivery;
  const subscription = await store.getSubscription(subscriptionId);
  if (!subscription || subscription.deletedAt) {
    return { duplicate: false, reply: { skipped: "subscription deleted" } };
  }
  if (await store.wasDelivered(subscriptionId, event.id)) return { duplicate: true, reply: undefined };
  const name = webhookEventName(event.type);
  if (name === undefined) {
    throw new EdgewiseError("message.invalid", `WebhookDelivery of "${event.type}", which has no webhook`);
  }

  const log = (
    outcome: "delivered" | "failed" | "refused",
    statusCode: number | null,
    error: string | null,
  ) => store.recordAttempt({ subscriptionId, eventId: event.id, outcome, statusCode, error });

  const check = await checkTarget(subscription.url, options.policy);
  if (!check.allowed) {
    // The operator's record names the address a name resolved to; the refusal's message does not (ssrf.ts).
    const resolved = check.address && !check.message.startsWith(check.address) ? ` (${check.address})` : "";
    await log("refused", null, `${check.reason}: ${check.message}${resolved}`);
    throw isPermanentRefusal(check.reason)
      ? targetRefused(subscriptionId, check.message)
      : deliveryFailed(subscriptionId, check.message);
  }

  const body = webhookPayload(event, name);
  const headers = {
    "content-type": "application/json",
    "user-agent": options.userAgent ?? "Edgewise-Webhooks/1",
    ...(await signedHeaders({
      secret: signingSecrets(subscription, options.clock.now()),
      id: event.id,
      body,
      now: options.clock.now(),
    })),
  };
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const send = options.post ?? postWithFetch;
  const fail = async ({ status, retryAfter }: WebhookAnswer): Promise<never> => {
    const message =
      status >= 300 && status < 400
        ? `answered ${status}: redirects are not followed`
        : `answered ${status || "an opaque redirect"}`;
    await log("failed", status || null, message);
    const wait = retryAfterSeconds(retryAfter, options.clock.now());
    throw deliveryFailed(subscriptionId, message, status, wait);
  };
  const post = async (signal: AbortSignal): Promise<WebhookAnswer> => {
    let answer: WebhookAnswer;
    try {
      // To the addresses just checked; redirects are never followed (the port's contract).
      answer = await send({
        url: check.url,
        addresses: check.addresses,
        headers,
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      });
    } catch (error) {
      const message =
        error instanceof Error && error.name === "TimeoutError"
          ? `no answer within ${timeoutMs} ms`
          : `request failed (${error instanceof Error ? error.message : String(error)})`;
      await log("failed", null, message);
      throw deliveryFailed(subscriptionId, message);
    }
    // Only an answer that says the host is in trouble fails inside the guard. Another (a 404, a redirect) is one
    // subscription's mistake: counted against the host's breaker, it would hold back every subscription there.
    if (hostInTrouble(answer.status)) return fail(answer);
    return answer;
  };
  let answer: WebhookAnswer;
  try {
    answer = options.guard
      ? await options.guard(new URL(check.url).host, post)
      : await post(new AbortController().signal);
  } catch (error) {
    if (isBreakerOpen(error)) await log("failed", null, "not sent: the receiver's circuit is open");
    throw error;
  }
  const { status } = answer;
  if (status === 410) {
    // Standard Webhooks: 410 Gone means the receiver wants no more webhooks. Disabled like a DELETE: its queued
    // deliveries become no-ops and later events are not fanned out to it. Retrying this one could not help.
    await store.deleteSubscription(subscriptionId);
    await log("failed", status, "answered 410 Gone: subscription disabled");
    return { duplicate: false, reply: { status, disabled: "the receiver answered 410 Gone" } };
  }
  if (status < 200 || status >= 300) return fail(answer);
  const attempt = await log("delivered", status, null);
  return { duplicate: false, reply: { status, attempt } };
}

/** 5xx, 408 and 429 say the receiver's host is down or overloaded; its breaker counts them (and network errors). */
function hostInTrouble(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}
