// The bodies the API answers with, as schemas: /openapi.json documents them, and tests check real answers against them.
import * as v from "valibot";

/** A body in /openapi.json: application/json with this schema (converted as the request schemas are). */
export type ResponseSchema = v.GenericSchema;

const isoTime = v.pipe(v.string(), v.isoTimestamp());
const cents = v.pipe(v.number(), v.integer(), v.minValue(0));
const count = v.pipe(v.number(), v.integer(), v.minValue(0));
/** The next page's cursor, or null on the last page. */
const nextCursor = v.nullable(v.string());
const orderStatus = v.picklist(["pending", "confirmed", "rejected", "cancelled"]);

export const SkuView = v.object({
  sku: v.string(),
  available: count,
  reserved: count,
  /** Beyond API.md: with it, available + reserved + sold is everything ever set or restocked. */
  sold: count,
  priceCents: cents,
});

export const AccountView = v.object({ customerId: v.string(), balanceCents: cents });

/** `POST /v1/orders` (202) and `POST /v1/orders/{orderId}/cancel` (202): the order's status when it answered. */
export const OrderAccepted = v.object({ orderId: v.string(), status: orderStatus });

export const OrderView = v.object({
  orderId: v.string(),
  customerId: v.string(),
  status: orderStatus,
  items: v.array(
    v.object({
      sku: v.string(),
      quantity: v.pipe(v.number(), v.integer(), v.minValue(1)),
      /** Set once the sku has reserved the line. */
      unitPriceCents: v.optional(cents),
    }),
  ),
  totalCents: v.optional(cents),
  reason: v.optional(v.picklist(["out_of_stock", "insufficient_funds"])),
  /** A cancel asked while pending, applied when the order settles (the order actor's view only). */
  cancelRequested: v.optional(v.literal(true)),
  /**
   * When the order's charge was refunded (a cancelled order, or a capture that came after a rejection). In the list
   * too since December 2026; a refund recorded by an earlier version shows only on the order itself.
   */
  refundedAt: v.optional(isoTime),
  createdAt: isoTime,
  updatedAt: isoTime,
});

export const OrderPage = v.object({ items: v.array(OrderView), nextCursor });

export const LoyaltyView = v.object({ customerId: v.string(), points: count });

/** An entry of the activity log: the event as it was published, a CloudEvent 1.0. */
export const CloudEvent = v.object({
  specversion: v.literal("1.0"),
  id: v.string(),
  source: v.string(),
  type: v.string(),
  time: isoTime,
  datacontenttype: v.optional(v.string()),
  subject: v.optional(v.string()),
  data: v.unknown(),
  // CloudEvents extensions: W3C trace context (the distributed tracing extension) and the message chain.
  traceparent: v.optional(v.string()),
  tracestate: v.optional(v.string()),
  /** The first message of the chain this one belongs to (an order's placement, say). */
  correlationid: v.optional(v.string()),
  /** The message whose handling published this one. */
  causationid: v.optional(v.string()),
  /** The actor a command was addressed to (`type/key`); events have none. */
  target: v.optional(v.string()),
});

export const ActivityPage = v.object({ items: v.array(CloudEvent), nextCursor });

export const SubscriptionCreated = v.object({
  id: v.string(),
  url: v.string(),
  events: v.array(v.string()),
  /** `whsec_…`: shown only in this answer. */
  secret: v.pipe(v.string(), v.startsWith("whsec_")),
});

export const SubscriptionView = v.object({
  id: v.string(),
  url: v.string(),
  events: v.array(v.string()),
  createdAt: isoTime,
  /** While a rotated-out secret still signs beside the new one: until when. */
  previousSecretExpiresAt: v.nullable(isoTime),
});

export const SubscriptionPage = v.object({ items: v.array(SubscriptionView), nextCursor });

export const SecretRotated = v.object({
  id: v.string(),
  secret: v.pipe(v.string(), v.startsWith("whsec_")),
  previousSecretExpiresAt: v.nullable(isoTime),
});

export const AttemptPage = v.object({
  items: v.array(
    v.object({
      eventId: v.string(),
      attempt: v.pipe(v.number(), v.integer(), v.minValue(1)),
      outcome: v.string(),
      /** The receiver's status, or null when it gave none (a network error, a timeout, a refused target). */
      statusCode: v.nullable(v.number()),
      error: v.nullable(v.string()),
      at: isoTime,
    }),
  ),
  nextCursor,
});

/** An inbound webhook: applied now (`accepted`), or its webhook-id was seen before (`duplicate`). */
export const InboundAccepted = v.object({ status: v.picklist(["accepted", "duplicate"]) });

export const ApiKeyCreated = v.object({
  id: v.string(),
  /** Shown only in this answer; stored as a hash. */
  key: v.string(),
});

export const CounterView = v.object({ count: count });

export const Health = v.object({ status: v.literal("ok") });

export const Readiness = v.object({
  status: v.picklist(["ready", "unavailable", "draining"]),
  /** Each dependency by name (none while draining). */
  dependencies: v.record(
    v.string(),
    v.object({
      ok: v.boolean(),
      /** Whether its failure makes /readyz answer 503. */
      critical: v.boolean(),
      /** How long the check took. */
      ms: v.number(),
      /**
       * Why it failed: "timed out", "unreachable", "unwritable" (a node's data dir), "refused" (Redis refused the
       * password, a node's over TCP or the REST bridge's), or the code of Redis's error reply (e.g. "NOPERM": an ACL refused the probe's key).
       */
      reason: v.optional(v.string()),
      /** Its circuit breaker's state, where it has one. */
      breaker: v.optional(v.picklist(["closed", "open", "half-open"])),
      /**
       * Until when the dependency said a limit of ours is spent (the broker: QStash's 429 to the relay's last publish,
       * its reset), while that is ahead. The dependency answers and the node stays ready; its messages wait in the outboxes.
       */
      rateLimitedUntil: v.optional(v.pipe(v.string(), v.isoTimestamp())),
    }),
  ),
});
