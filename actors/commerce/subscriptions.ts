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
  EventTypes.OrderRefunded,
] as const;

/** The one key the read side is delivered at (`readside/events`); it refuses deliveries to any other. */
export const readSideKey = "events";

/** The event types each read-side consumer takes. */
export const readSideEvents = {
  activity: [...orderEvents, EventTypes.StockChanged],
  projector: orderEvents,
  webhooks: [EventTypes.OrderConfirmed, EventTypes.OrderRejected, EventTypes.OrderCancelled],
  cache: [...orderEvents, EventTypes.StockChanged],
} as const satisfies Record<string, readonly string[]>;

/**
 * Consumers that are not actors (MessageConsumer), reached through the queue like actors. The read side gets
 * each event once, at `readside/events`, and hands it to its parts in process (`fanInConsumer`): one delivery
 * instead of one per consumer.
 */
export const commerceConsumerSubscriptions: Subscription[] = [
  ...new Set(Object.values(readSideEvents).flat()),
].map((event) => subscribe({ event, actor: Participants.readSide, keys: () => readSideKey }));
