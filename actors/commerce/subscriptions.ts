// Who receives the commerce events: inventory (by sku) and the non-actor consumers (read model, log, webhooks, cache).
import type * as v from "valibot";
import { type Subscription, subscribe } from "../runtime/index.ts";
import {
  EventTypes,
  type OrderCancelled,
  type OrderConfirmed,
  type OrderPlaced,
  type OrderRejected,
  Participants,
} from "./messages.ts";

const distinct = (skus: readonly string[]): string[] => [...new Set(skus)];

/** Every sku of an order hears each of its events, once per sku. */
export const inventorySubscriptions: Subscription[] = [
  subscribe<v.InferOutput<typeof OrderPlaced>>({
    event: EventTypes.OrderPlaced,
    actor: Participants.inventory,
    keys: (data) => distinct(data.items.map((line) => line.sku)),
  }),
  subscribe<v.InferOutput<typeof OrderConfirmed>>({
    event: EventTypes.OrderConfirmed,
    actor: Participants.inventory,
    keys: (data) => distinct(data.items.map((line) => line.sku)),
  }),
  subscribe<v.InferOutput<typeof OrderRejected>>({
    event: EventTypes.OrderRejected,
    actor: Participants.inventory,
    keys: (data) => distinct(data.skus),
  }),
  subscribe<v.InferOutput<typeof OrderCancelled>>({
    event: EventTypes.OrderCancelled,
    actor: Participants.inventory,
    keys: (data) => distinct(data.skus),
  }),
];

const orderEvents = [
  EventTypes.OrderPlaced,
  EventTypes.OrderConfirmed,
  EventTypes.OrderRejected,
  EventTypes.OrderCancelled,
] as const;

/** Each listed event goes to the one consumer address `actor/key`. */
function consumer(actor: string, key: string, events: readonly string[]): Subscription[] {
  return events.map((event) => subscribe({ event, actor, keys: () => key }));
}

/** Consumers that are not actors (MessageConsumer), reached through the queue like actors. */
export const commerceConsumerSubscriptions: Subscription[] = [
  ...consumer(Participants.projector, "orders", orderEvents),
  ...consumer(Participants.activity, "all", [...orderEvents, EventTypes.StockChanged]),
  ...consumer(Participants.webhooks, "outbound", [
    EventTypes.OrderConfirmed,
    EventTypes.OrderRejected,
    EventTypes.OrderCancelled,
  ]),
  ...consumer(Participants.cache, "reads", [...orderEvents, EventTypes.StockChanged]),
];
