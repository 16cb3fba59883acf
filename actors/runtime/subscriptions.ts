// Subscriptions, declared in code: which actors receive an event type, and under which keys.
import type { Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { type ActorAddress, assertValidKey, formatAddress, isValidActorType } from "./address.ts";

export interface Subscription<Data = unknown> {
  /** The event type, as published (`OrderPlaced`). */
  event: string;
  /** The actor type that receives it. */
  actor: string;
  /** The keys of the actors that receive it; each distinct key gets one delivery. */
  keys: (data: Data, envelope: Envelope<Data>) => string | readonly string[];
}

export function subscribe<Data = unknown>(subscription: Subscription<Data>): Subscription {
  if (!isValidActorType(subscription.actor)) {
    throw new EdgewiseError("config.invalid", `subscription to "${subscription.event}": bad actor type`);
  }
  return subscription as Subscription;
}

export class SubscriptionRegistry {
  private readonly byEvent = new Map<string, Subscription[]>();

  constructor(subscriptions: Iterable<Subscription>) {
    for (const subscription of subscriptions) {
      const list = this.byEvent.get(subscription.event) ?? [];
      if (list.some((existing) => existing.actor === subscription.actor)) {
        throw new EdgewiseError(
          "config.invalid",
          `"${subscription.actor}" subscribes to "${subscription.event}" twice; merge the key selectors`,
        );
      }
      list.push(subscription);
      this.byEvent.set(subscription.event, list);
    }
  }

  get all(): Subscription[] {
    return [...this.byEvent.values()].flat();
  }

  /** The actors an event goes to: one address per distinct (type, key). */
  targets(envelope: Envelope): ActorAddress[] {
    const seen = new Set<string>();
    const targets: ActorAddress[] = [];
    for (const subscription of this.byEvent.get(envelope.type) ?? []) {
      const selected = subscription.keys(envelope.data, envelope);
      for (const key of typeof selected === "string" ? [selected] : selected) {
        assertValidKey(key);
        const address = { type: subscription.actor, key };
        const id = formatAddress(address);
        if (seen.has(id)) continue;
        seen.add(id);
        targets.push(address);
      }
    }
    return targets;
  }

  /**
   * Expands outgoing messages into deliveries: a command keeps its target; an event becomes one copy per
   * subscribed actor, each with the event's id (every inbox deduplicates on its own) and its own target.
   */
  expand(envelopes: readonly Envelope[]): Envelope[] {
    const deliveries: Envelope[] = [];
    for (const envelope of envelopes) {
      if (envelope.target) {
        deliveries.push(envelope);
        continue;
      }
      for (const target of this.targets(envelope))
        deliveries.push({ ...envelope, target: formatAddress(target) });
    }
    return deliveries;
  }
}
