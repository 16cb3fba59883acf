// The webhooks consumer's messages: `WebhookDelivery` to `webhooks/{subscriptionId}`, and the wire payload.
import * as v from "valibot";
import { createEnvelope, type Envelope, EnvelopeSchema } from "../../../shared/envelope/index.ts";
import { actorSource, formatAddress } from "../../runtime/address.ts";
import { Participants, WebhookEventNames } from "../messages.ts";
import { sha256Hex } from "../../../shared/crypto/hex.ts";

/** The fan-out consumer's key: `webhooks/outbound` receives the domain events. */
export const OUTBOUND_KEY = "outbound";
export const WEBHOOK_DELIVERY = "WebhookDelivery";
/** webhooks/outbound → webhooks/outbound: the rest of a fan-out, after the subscription `after` (fan-out.ts). */
export const WEBHOOK_FAN_OUT = "WebhookFanOut";

/** `whsub_` + 16 lowercase alphanumerics (shared/ids prefixedId): never `outbound`, always URL-safe. */
export const SubscriptionId = v.pipe(
  v.string(),
  v.regex(/^whsub_[0-9a-z]{16}$/, "must be a subscription id"),
);
export const isSubscriptionId = (text: string): boolean => v.is(SubscriptionId, text);

/** webhooks/outbound → webhooks/{subscriptionId}: send this event to that subscription's URL. */
export const WebhookDelivery = v.object({ subscriptionId: SubscriptionId, event: EnvelopeSchema });
export type WebhookDelivery = v.InferOutput<typeof WebhookDelivery>;

/** The rest of one event's fan-out: the subscriptions after `after` (in the fan-out's order) are still to get it. */
export const WebhookFanOut = v.object({ event: EnvelopeSchema, after: SubscriptionId });
export type WebhookFanOut = v.InferOutput<typeof WebhookFanOut>;

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
 * The continuation of an event's fan-out after the subscription `after`; deterministic, so a retried delivery sends the
 * same one and the broker keeps one copy. Its id differs from every delivery's (`<event>.after.<subscription>`).
 */
export async function fanOutEnvelope(event: Envelope, after: string): Promise<Envelope<WebhookFanOut>> {
  const { target: _routing, ...original } = event;
  const plain = `${event.id}.after.${after}`;
  return createEnvelope({
    id: urlSafe.test(plain) ? plain : `whf_${await sha256Hex(plain)}`,
    type: WEBHOOK_FAN_OUT,
    source: actorSource({ type: Participants.webhooks, key: OUTBOUND_KEY }),
    data: { event: original, after },
    target: formatAddress({ type: Participants.webhooks, key: OUTBOUND_KEY }),
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
