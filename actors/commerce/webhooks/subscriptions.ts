// Creating and deleting outbound subscriptions: the request schema, the SSRF check at creation, the secret.
import * as v from "valibot";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import { prefixedId } from "../../../shared/ids/index.ts";
import { noControlCharacters } from "../../../shared/text/index.ts";
import { WebhookEventNames } from "../messages.ts";
import { isSubscriptionId } from "./messages.ts";
import { generateSecret } from "./secret.ts";
import { checkTarget, type TargetPolicy } from "./ssrf.ts";
import type { SubscriptionRecorder, WebhookStore } from "./store.ts";

export const webhookEventNames: readonly string[] = [...new Set(Object.values(WebhookEventNames))];

/** `POST /v1/webhooks/subscriptions`. Unknown fields are refused, like every gateway body. */
export const CreateSubscriptionBody = v.strictObject({
  url: v.pipe(
    v.string(),
    v.maxLength(2048, "must be at most 2048 characters"),
    // The URL parser would drop or encode them, but the URL is stored as sent.
    noControlCharacters,
    v.url("must be a URL"),
  ),
  events: v.pipe(
    v.array(v.picklist(webhookEventNames, `must be one of ${webhookEventNames.join(", ")}`)),
    v.minLength(1, "must name at least one event"),
    v.transform((events) => [...new Set(events)]),
  ),
});
export type CreateSubscriptionBody = v.InferOutput<typeof CreateSubscriptionBody>;

/** The 201 body: the only time the secret is shown. */
export interface CreatedSubscription {
  id: string;
  url: string;
  events: string[];
  secret: string;
}

/**
 * Validates the body (`request.invalid`, 400, with field paths), refuses a URL the SSRF guard refuses
 * (same error, path `url`), and stores the subscription with a fresh id and secret; with `record`, in one
 * transaction with its record (the store's `SubscriptionRecorder`), rolled back once `signal` (the request's) has
 * fired before COMMIT (`WebhookStore.createSubscription`).
 */
export async function createSubscription(
  deps: { store: WebhookStore; policy: TargetPolicy },
  body: unknown,
  record?: SubscriptionRecorder,
  signal?: AbortSignal,
): Promise<CreatedSubscription> {
  const parsed = v.safeParse(CreateSubscriptionBody, body);
  if (!parsed.success) throw validationError("request.invalid", "body", parsed.issues);
  const { url, events } = parsed.output;
  const check = await checkTarget(url, deps.policy);
  if (!check.allowed) {
    throw new EdgewiseError("request.invalid", `body is invalid (url: ${check.message})`, {
      issues: [{ path: "url", message: check.message }],
      meta: { reason: check.reason },
    });
  }
  const created = await deps.store.createSubscription(
    { id: prefixedId("whsub"), url, events, secret: generateSecret() },
    record,
    signal,
  );
  return { id: created.id, url: created.url, events: created.events, secret: created.secret };
}

/** `DELETE /v1/webhooks/subscriptions/{id}`: `not_found` unless it exists; deliveries still queued become no-ops. */
export async function deleteSubscription(store: WebhookStore, id: string): Promise<void> {
  // A malformed id cannot exist: no query for it.
  if (!isSubscriptionId(id) || !(await store.deleteSubscription(id))) {
    throw new EdgewiseError("not_found", "no such webhook subscription");
  }
}
