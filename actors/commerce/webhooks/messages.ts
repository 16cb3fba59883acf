// The webhooks consumer's messages: `WebhookDelivery` to `webhooks/{subscriptionId}`, and the wire payload.
import * as v from "valibot";
import { createEnvelope, type Envelope, EnvelopeSchema } from "../../../shared/envelope/index.ts";
import { actorSource, formatAddress } from "../../runtime/address.ts";
import { Participants, WebhookEventNames } from "../messages.ts";
import { sha256Hex } from "../../../shared/crypto/hex.ts";

/** The fan-out consumer's key: `webhooks/outbound` receives the domain events. */
export const OUTBOUND_KEY = "outbound";
export const WEBHOOK_DELIVERY = "WebhookDelivery";

/** `whsub_` + 16 lowercase alphanumerics (shared/ids prefixedId): never `outbound`, always URL-safe. */
export const SubscriptionId = v.pipe(
  v.string(),
  v.regex(/^whsub_[0-9a-z]{16}$/, "must be a subscription id"),
);
export const isSubscriptionId = (text: string): boolean => v.is(SubscriptionId, text);

/** webhooks/outbound → webhooks/{subscriptionId}: send this event to that subscription's URL. */
export const WebhookDelivery = v.object({ subscriptionId: SubscriptionId, event: EnvelopeSchema });
export type WebhookDelivery = v.InferOutput<typeof WebhookDelivery>;

/** The outbound name (`order.confirmed`) of a domain event type, if it has one. */
export function webhookEventName(type: string): string | undefined {
  return Object.hasOwn(WebhookEventNames, type) ? WebhookEventNames[type] : undefined;
}

const urlSafe = /^[A-Za-z0-9._~-]{1,256}$/;

/** One id per (event, subscription), so a redelivered fan-out is deduplicated by the broker and the inbox. */
export async function deliveryId(eventId: string, subscriptionId: string): Promise<string> {
  const plain = `${eventId}.${subscriptionId}`;
  return urlSafe.test(plain) ? plain : `whd_${await sha256Hex(plain)}`;
}

/** The delivery command for one subscription; deterministic, so a retried fan-out sends the same message. */
export async function deliveryEnvelope(
  event: Envelope,
  subscriptionId: string,
): Promise<Envelope<WebhookDelivery>> {
  const { target: _routing, ...original } = event;
  return createEnvelope({
    id: await deliveryId(event.id, subscriptionId),
    type: WEBHOOK_DELIVERY,
    source: actorSource({ type: Participants.webhooks, key: OUTBOUND_KEY }),
    data: { subscriptionId, event: original },
    target: formatAddress({ type: Participants.webhooks, key: subscriptionId }),
    time: new Date(event.time),
    correlationid: event.correlationid ?? event.id,
    causationid: event.id,
    ...(event.traceparent ? { traceparent: event.traceparent } : {}),
  });
}

/**
 * The body POSTed to the subscriber: the CloudEvent, with its `type` in the outside-wire spelling
 * (`order.confirmed`, as subscribed to) and without the internal routing extension `target`.
 */
export function webhookPayload(event: Envelope, name: string): string {
  const { target: _routing, ...cloudEvent } = event;
  return JSON.stringify({ ...cloudEvent, type: name });
}
