// The commerce message contract: every command and event the order saga exchanges, as valibot schemas.
import * as v from "valibot";
import { CustomerId } from "./customer-key.ts";

/** Address types of the commerce participants. Actors: order, inventory, loyalty. Consumers: the rest. */
export const Participants = {
  order: "order",
  inventory: "inventory",
  loyalty: "loyalty",
  /** Postgres ledger (a MessageConsumer, not an actor); key: the customer id. */
  billing: "billing",
  /** Orders read model and search (Postgres); key: `orders`. */
  projector: "projector",
  /** Append-only activity log (Postgres JSONB); key: `all`. */
  activity: "activity",
  /** Outbound webhook fan-out; key: `outbound`. */
  webhooks: "webhooks",
  /** Read-cache refresher (Redis); key: `reads`. */
  cache: "cache",
  /** The read side in one delivery per event (activity, projector, cache, webhook fan-out); key: `events`. */
  readSide: "readside",
} as const;

/** An id that becomes an actor key (a sku, a customer): not `.` or `..`, which a delivery URL cannot carry. */
const id = v.pipe(
  v.string(),
  v.regex(/^(?!\.\.?$)[A-Za-z0-9._~-]{1,128}$/, "must be URL-safe, 1-128 characters, and not '.' or '..'"),
);
const cents = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));
/** An aggregate's change counter: +1 on every turn that changes what a read of it returns. */
const version = v.pipe(v.number(), v.integer(), v.minValue(1));
const quantity = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000));

export const Sku = id;
/** Any text of 1-128 characters (a JWT `sub`); it reaches actors through `customerKey`. */
export { CustomerId };
export const OrderId = id;

export const OrderLine = v.object({ sku: Sku, quantity });
export type OrderLine = v.InferOutput<typeof OrderLine>;
/** A line once its sku actor reserved it, priced from the sku at that moment. */
export const PricedLine = v.object({ sku: Sku, quantity, unitPriceCents: cents });
export type PricedLine = v.InferOutput<typeof PricedLine>;

export const RejectReason = v.picklist(["out_of_stock", "insufficient_funds"]);
export type RejectReason = v.InferOutput<typeof RejectReason>;

export const OrderStatus = v.picklist(["pending", "confirmed", "rejected", "cancelled"]);
export type OrderStatus = v.InferOutput<typeof OrderStatus>;

// ---- Events (published; subscribers are declared in subscriptions.ts) ----
// Order events carry the order's `version` after the change, so the read cache can refuse older fills.

/** order → inventory (one delivery per distinct sku), projector, activity, cache. Lines have distinct skus. */
export const OrderPlaced = v.object({
  orderId: OrderId,
  version,
  customerId: CustomerId,
  items: v.pipe(v.array(OrderLine), v.minLength(1), v.maxLength(50)),
  placedAt: v.string(),
});
/** order → inventory (reserved → sold), loyalty (credit), projector, activity, webhooks (`order.confirmed`). */
export const OrderConfirmed = v.object({
  orderId: OrderId,
  version,
  customerId: CustomerId,
  items: v.array(PricedLine),
  totalCents: cents,
});
/**
 * order → inventory (release this order's reservations, if any), projector, activity, webhooks
 * (`order.rejected`). `skus`: every sku of the order, so each can release what it holds.
 */
export const OrderRejected = v.object({
  orderId: OrderId,
  version,
  customerId: CustomerId,
  reason: RejectReason,
  skus: v.array(Sku),
  /** The order's lines, each priced once its sku reserved it: what `GET /v1/orders/{id}` shows (older events lack it). */
  items: v.optional(v.array(v.object({ sku: Sku, quantity, unitPriceCents: v.optional(cents) }))),
  /** Once every line was priced (a funds rejection): what the order would have cost. */
  totalCents: v.optional(cents),
});
/**
 * order → inventory, loyalty, projector, activity, webhooks (`order.cancelled`).
 * `wasConfirmed`: sold units go back to available and points are taken back; otherwise only reservations
 * are released and no points were ever credited.
 */
export const OrderCancelled = v.object({
  orderId: OrderId,
  version,
  customerId: CustomerId,
  skus: v.array(Sku),
  wasConfirmed: v.boolean(),
  /**
   * The order's lines, priced as its skus reserved them (older events lack it): an order cancelled while pending
   * reaches its end with no OrderConfirmed, so this is the one event that tells the read side its prices.
   */
  items: v.optional(v.array(v.object({ sku: Sku, quantity, unitPriceCents: v.optional(cents) }))),
  totalCents: v.optional(cents),
});
/**
 * order → projector, activity, cache: the order's charge was refunded (`refundedAt`, as the order records it). It
 * carries what the order's other events do, so a read model that hears it first still shows the order whole.
 */
export const OrderRefunded = v.object({
  orderId: OrderId,
  version,
  customerId: CustomerId,
  /** The order's status when the refund came: `cancelled`, or `rejected` for a capture that came too late. */
  status: OrderStatus,
  skus: v.array(Sku),
  items: v.array(v.object({ sku: Sku, quantity, unitPriceCents: v.optional(cents) })),
  totalCents: v.optional(cents),
  reason: v.optional(RejectReason),
  refundedAt: v.pipe(v.string(), v.isoTimestamp()),
});
/** inventory → cache, activity. Published by a sku actor whenever its levels or price change. */
export const StockChanged = v.object({
  sku: Sku,
  version,
  available: v.pipe(v.number(), v.integer(), v.minValue(0)),
  reserved: v.pipe(v.number(), v.integer(), v.minValue(0)),
  sold: v.pipe(v.number(), v.integer(), v.minValue(0)),
  priceCents: cents,
});

// ---- Commands (sent to one address) ----

/** inventory/{sku} → order/{orderId}. */
export const StockReserved = v.object({ orderId: OrderId, sku: Sku, quantity, unitPriceCents: cents });
/** inventory/{sku} → order/{orderId}. */
export const StockRejected = v.object({
  orderId: OrderId,
  sku: Sku,
  quantity,
  available: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
/** order/{orderId} → billing/{customerId}: debit, once per orderId. */
export const PaymentRequested = v.object({ orderId: OrderId, customerId: CustomerId, amountCents: cents });
/** billing → order/{orderId}. */
export const PaymentCaptured = v.object({
  orderId: OrderId,
  customerId: CustomerId,
  amountCents: cents,
  balanceCents: cents,
});
/** billing → order/{orderId}. */
export const PaymentFailed = v.object({
  orderId: OrderId,
  customerId: CustomerId,
  amountCents: cents,
  reason: v.literal("insufficient_funds"),
});
/** order/{orderId} → billing/{customerId}: credit back the capture of that order, once. */
export const RefundRequested = v.object({ orderId: OrderId, customerId: CustomerId, amountCents: cents });
/** billing → order/{orderId} (informational: the order records `refundedAt`). */
export const PaymentRefunded = v.object({
  orderId: OrderId,
  customerId: CustomerId,
  amountCents: cents,
  balanceCents: cents,
});
/** webhooks inbound (`inventory.restocked`) → inventory/{sku}. */
export const Restock = v.object({ sku: Sku, quantity, source: v.optional(v.string()) });

export const EventTypes = {
  OrderPlaced: "OrderPlaced",
  OrderConfirmed: "OrderConfirmed",
  OrderRejected: "OrderRejected",
  OrderCancelled: "OrderCancelled",
  OrderRefunded: "OrderRefunded",
  StockChanged: "StockChanged",
} as const;

/** Each domain event's data schema, by type: for a consumer of several (the read side) to check them up front. */
export const EventSchemas: Readonly<Record<string, v.GenericSchema>> = {
  [EventTypes.OrderPlaced]: OrderPlaced,
  [EventTypes.OrderConfirmed]: OrderConfirmed,
  [EventTypes.OrderRejected]: OrderRejected,
  [EventTypes.OrderCancelled]: OrderCancelled,
  [EventTypes.OrderRefunded]: OrderRefunded,
  [EventTypes.StockChanged]: StockChanged,
};

/** Outbound webhook event names (API.md) for the domain events that have one. */
export const WebhookEventNames: Readonly<Record<string, string>> = {
  OrderConfirmed: "order.confirmed",
  OrderRejected: "order.rejected",
  OrderCancelled: "order.cancelled",
};
