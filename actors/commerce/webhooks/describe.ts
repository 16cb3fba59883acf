// `webhooks/{subscriptionId}` as an operator knows it (the console's dead letters): the subscription and its URL.
import type { ActorAddress } from "../../runtime/address.ts";
import { Participants } from "../messages.ts";
import { isSubscriptionId, OUTBOUND_KEY } from "./messages.ts";
import type { WebhookStore } from "./store.ts";

/** What a webhooks target is; never the subscription's secrets. */
export interface WebhookTarget {
  label: string;
  /** The subscriber's URL, as it was given. */
  url?: string;
  note?: string;
}

const fanOutNote =
  "a WebhookFanOut carries on after the subscription its data names (after), not to every subscription; a domain event sent here goes to every subscription of it";

/**
 * Describes a target of the `webhooks` consumer: a subscription's id and the URL its deliveries are POSTed to (from
 * the store), or the fan-out. Undefined for any other target.
 */
export async function describeWebhookTarget(
  store: Pick<WebhookStore, "getSubscription">,
  target: ActorAddress,
): Promise<WebhookTarget | undefined> {
  if (target.type !== Participants.webhooks) return undefined;
  // Events reach the fan-out through readside/events, so what is dead-lettered here is a WebhookFanOut (fan-out.ts),
  // or a domain event sent here directly by a version before the read side took one delivery per event.
  if (target.key === OUTBOUND_KEY) return { label: "webhook fan-out", note: fanOutNote };
  if (!isSubscriptionId(target.key)) return undefined;
  const subscription = await store.getSubscription(target.key);
  const label = `webhook subscription ${target.key}`;
  if (!subscription) return { label, note: "no such subscription" };
  return {
    label,
    url: subscription.url,
    ...(subscription.deletedAt ? { note: `deleted ${subscription.deletedAt.toISOString()}` } : {}),
  };
}
