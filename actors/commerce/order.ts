// The order actor, one per orderId: the saga's state machine from placement through stock, payment and cancel.
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { validationError } from "../../shared/errors/valibot.ts";
import { defineActor, type TurnContext } from "../runtime/index.ts";
import { customerKey } from "./customer-key.ts";
import {
  CustomerId,
  EventTypes,
  type OrderCancelled,
  type OrderConfirmed,
  OrderId,
  OrderLine,
  OrderPlaced,
  type OrderRefunded,
  type OrderRejected,
  OrderStatus,
  type PaymentRequested,
  PaymentCaptured,
  PaymentFailed,
  PaymentRefunded,
  Participants,
  PricedLine,
  type RefundRequested,
  RejectReason,
  StockRejected,
  StockReserved,
} from "./messages.ts";

const counter = v.pipe(v.number(), v.integer(), v.minValue(0));
const Line = v.object({
  ...OrderLine.entries,
  unitPriceCents: v.optional(PricedLine.entries.unitPriceCents),
});
const Lines = OrderPlaced.entries.items;

export const OrderState = v.object({
  placed: v.boolean(),
  customerId: v.string(),
  status: OrderStatus,
  /** One line per distinct sku, priced as each sku reserves it. */
  items: v.array(Line),
  totalCents: v.optional(PricedLine.entries.unitPriceCents),
  reason: v.optional(RejectReason),
  /** Cancel asked while pending: the order is cancelled if payment is captured, and stays rejected if not. */
  cancelRequested: v.boolean(),
  payment: v.picklist(["none", "requested", "captured", "failed"]),
  refund: v.picklist(["none", "requested", "refunded"]),
  refundedAt: v.optional(v.string()),
  createdAt: v.string(),
  updatedAt: v.string(),
  version: counter,
});
export type OrderState = v.InferOutput<typeof OrderState>;

/** What the gateway sends for `POST /v1/orders`; duplicate skus are merged by summing their quantities. */
export const PlaceOrder = v.object({
  customerId: CustomerId,
  items: v.pipe(v.array(OrderLine), v.minLength(1), v.maxLength(50)),
});

export interface OrderView {
  orderId: string;
  customerId: string;
  status: OrderStatus;
  items: Array<{ sku: string; quantity: number; unitPriceCents?: number }>;
  totalCents?: number;
  reason?: RejectReason;
  cancelRequested?: true;
  refundedAt?: string;
  createdAt: string;
  updatedAt: string;
  version: number;
}

type Turn = TurnContext<OrderState>;

/**
 * A pending order nudges its saga: if a step's message was lost for good (dead-lettered after a long outage), the
 * order would otherwise wait forever with its stock reserved. After 10 minutes, then doubling up to 6 hours, a
 * still-pending order sends its outstanding step again (OrderPlaced while stock is unanswered, PaymentRequested
 * while payment is): inventory answers again for a reservation it already made, and billing charges an order at
 * most once. A settled order cancels its nudge.
 */
export const sagaNudgeMs = 10 * 60_000;
const maxNudgeMs = 6 * 60 * 60_000;
const nudgeTimer = "saga-nudge";

/** Keys a JSON record cannot hold (schemas drop them), so no order may be named by one. */
const unsafeIds = new Set(["__proto__", "constructor", "prototype"]);

export const orderActor = defineActor({
  type: Participants.order,
  state: OrderState,
  initial: () => ({
    placed: false,
    customerId: "",
    status: "pending" as const,
    items: [],
    cancelRequested: false,
    payment: "none" as const,
    refund: "none" as const,
    createdAt: "",
    updatedAt: "",
    version: 0,
  }),
  messages: {
    Place: PlaceOrder,
    Get: v.object({}),
    Cancel: v.object({}),
    StockReserved,
    StockRejected,
    PaymentCaptured,
    PaymentFailed,
    PaymentRefunded,
    Nudge: v.object({ attempt: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  },
  handlers: {
    Place(ctx, data): OrderView {
      const items = mergeLines(data.items);
      if (ctx.state.placed) {
        if (sameOrder(ctx.state, data.customerId, items)) return view(ctx);
        throw new EdgewiseError(
          "idempotency.mismatch",
          `order ${ctx.key} was already placed with a different body`,
        );
      }
      if (!v.is(OrderId, ctx.key) || unsafeIds.has(ctx.key)) {
        throw new EdgewiseError("request.invalid", "an order id is 1-128 URL-safe characters");
      }
      const placedAt = isoNow(ctx);
      Object.assign(ctx.state, { placed: true, customerId: data.customerId, items, createdAt: placedAt });
      touch(ctx);
      const event: v.InferInput<typeof OrderPlaced> = {
        orderId: ctx.key,
        version: ctx.state.version,
        customerId: data.customerId,
        items,
        placedAt,
      };
      ctx.publish(EventTypes.OrderPlaced, event);
      ctx.schedule({ delay: sagaNudgeMs }, "Nudge", { attempt: 1 }, { id: nudgeTimer });
      return view(ctx);
    },

    Get: (ctx): OrderView => view(placed(ctx)),

    Cancel(ctx): OrderView {
      const order = placed(ctx).state;
      if (order.status === "confirmed") cancel(ctx, true, order.totalCents ?? 0);
      else if (order.status === "pending" && !order.cancelRequested) {
        order.cancelRequested = true;
        touch(ctx);
      }
      return view(ctx);
    },

    StockReserved(ctx, data) {
      const order = ctx.state;
      if (!order.placed || order.status !== "pending" || order.payment !== "none") return;
      const line = order.items.find((item) => item.sku === data.sku);
      if (!line || line.unitPriceCents !== undefined) return;
      line.unitPriceCents = data.unitPriceCents;
      touch(ctx);
      if (order.items.some((item) => item.unitPriceCents === undefined)) return;
      const totalCents = order.items.reduce(
        (sum, item) => sum + item.quantity * (item.unitPriceCents ?? 0),
        0,
      );
      // No balance can reach past the largest safe integer, so such a total could never be paid.
      if (!Number.isSafeInteger(totalCents)) {
        reject(ctx, "insufficient_funds");
        return;
      }
      order.totalCents = totalCents;
      order.payment = "requested";
      requestPayment(ctx);
    },

    StockRejected(ctx, data) {
      const order = ctx.state;
      if (!order.placed || order.status !== "pending" || order.payment !== "none") return;
      if (!order.items.some((item) => item.sku === data.sku)) return;
      reject(ctx, "out_of_stock");
    },

    PaymentCaptured(ctx, data) {
      const order = ctx.state;
      if (!order.placed || order.payment === "captured") return;
      if (order.status === "rejected") {
        // A capture the order can no longer use: give the money back, once.
        order.payment = "captured";
        if (order.refund === "none") requestRefund(ctx, data.amountCents);
        touch(ctx);
        return;
      }
      if (order.status !== "pending" || order.payment !== "requested") return;
      order.payment = "captured";
      if (order.cancelRequested) {
        cancel(ctx, false, data.amountCents);
        return;
      }
      order.status = "confirmed";
      ctx.cancelSchedule(nudgeTimer);
      touch(ctx);
      const event: v.InferInput<typeof OrderConfirmed> = {
        orderId: ctx.key,
        version: order.version,
        customerId: order.customerId,
        items: order.items.map((item) => ({ ...item, unitPriceCents: item.unitPriceCents ?? 0 })),
        totalCents: order.totalCents ?? 0,
      };
      ctx.publish(EventTypes.OrderConfirmed, event);
    },

    PaymentFailed(ctx) {
      const order = ctx.state;
      if (!order.placed || order.status !== "pending" || order.payment !== "requested") return;
      order.payment = "failed";
      reject(ctx, "insufficient_funds");
    },

    Nudge(ctx, data) {
      const order = ctx.state;
      if (!order.placed || order.status !== "pending") return;
      if (order.payment === "none") {
        // Every sku hears the order again; one that already answered answers again, the same way.
        const event: v.InferInput<typeof OrderPlaced> = {
          orderId: ctx.key,
          version: 1, // the version Place gave the order, which its OrderPlaced carried
          customerId: order.customerId,
          items: order.items.map(({ sku, quantity }) => ({ sku, quantity })),
          placedAt: order.createdAt,
        };
        ctx.publish(EventTypes.OrderPlaced, event);
      } else if (order.payment === "requested") requestPayment(ctx);
      const delay = Math.min(sagaNudgeMs * 2 ** data.attempt, maxNudgeMs);
      ctx.schedule({ delay }, "Nudge", { attempt: data.attempt + 1 }, { id: nudgeTimer });
    },

    PaymentRefunded(ctx) {
      const order = ctx.state;
      if (!order.placed || order.refund === "refunded") return;
      order.refund = "refunded";
      const refundedAt = isoNow(ctx);
      order.refundedAt = refundedAt;
      touch(ctx);
      // For the read side: GET /v1/orders shows refundedAt as GET /v1/orders/{id} does.
      const event: v.InferInput<typeof OrderRefunded> = {
        orderId: ctx.key,
        version: order.version,
        customerId: order.customerId,
        status: order.status,
        skus: skus(order),
        items: order.items.map((item) => ({ ...item })),
        ...(order.totalCents === undefined ? {} : { totalCents: order.totalCents }),
        ...(order.reason === undefined ? {} : { reason: order.reason }),
        refundedAt,
      };
      ctx.publish(EventTypes.OrderRefunded, event);
    },
  },
});

function mergeLines(
  lines: ReadonlyArray<{ sku: string; quantity: number }>,
): Array<v.InferOutput<typeof OrderLine>> {
  const bySku = new Map<string, number>();
  for (const line of lines) bySku.set(line.sku, (bySku.get(line.sku) ?? 0) + line.quantity);
  const merged = [...bySku].map(([sku, quantity]) => ({ sku, quantity }));
  const checked = v.safeParse(Lines, merged);
  if (!checked.success)
    throw validationError("message.invalid", "Place items, once merged by sku,", checked.issues);
  return checked.output;
}

function sameOrder(
  order: OrderState,
  customerId: string,
  items: ReadonlyArray<v.InferOutput<typeof OrderLine>>,
) {
  if (order.customerId !== customerId || order.items.length !== items.length) return false;
  return items.every((line) =>
    order.items.some((item) => item.sku === line.sku && item.quantity === line.quantity),
  );
}

function placed(ctx: Turn): Turn {
  if (!ctx.state.placed) throw orderNotFound(ctx.key);
  return ctx;
}

/**
 * What an order never placed answers every message but Place with. The gateway answers the same, activating none,
 * for an order the host says has no state (an ask `onlyIfState` answered `noState`): no state is the initial one,
 * never placed.
 */
export function orderNotFound(orderId: string): EdgewiseError {
  return new EdgewiseError("not_found", `order ${orderId} does not exist`);
}

function billingOf(order: OrderState) {
  return { type: Participants.billing, key: customerKey(order.customerId) };
}

function isoNow(ctx: Turn): string {
  return new Date(ctx.now()).toISOString();
}

/** Every change bumps the version (carried by the order's events) and `updatedAt`. */
function touch(ctx: Turn): void {
  ctx.state.version += 1;
  ctx.state.updatedAt = isoNow(ctx);
}

function skus(order: OrderState): string[] {
  return order.items.map((item) => item.sku);
}

function requestPayment(ctx: Turn): void {
  const order = ctx.state;
  const request: v.InferInput<typeof PaymentRequested> = {
    orderId: ctx.key,
    customerId: order.customerId,
    amountCents: order.totalCents ?? 0,
  };
  ctx.send(billingOf(order), "PaymentRequested", request);
}

function reject(ctx: Turn, reason: RejectReason): void {
  const order = ctx.state;
  order.status = "rejected";
  ctx.cancelSchedule(nudgeTimer);
  order.reason = reason;
  touch(ctx);
  const event: v.InferInput<typeof OrderRejected> = {
    orderId: ctx.key,
    version: order.version,
    customerId: order.customerId,
    reason,
    skus: skus(order),
    items: order.items.map((item) => ({ ...item })),
    ...(order.totalCents === undefined ? {} : { totalCents: order.totalCents }),
  };
  ctx.publish(EventTypes.OrderRejected, event);
}

/** Cancels a paid order: refunds the capture, and tells inventory (and anyone else) whether it was confirmed. */
function cancel(ctx: Turn, wasConfirmed: boolean, capturedCents: number): void {
  const order = ctx.state;
  order.status = "cancelled";
  if (!wasConfirmed) ctx.cancelSchedule(nudgeTimer);
  requestRefund(ctx, capturedCents);
  touch(ctx);
  const event: v.InferInput<typeof OrderCancelled> = {
    orderId: ctx.key,
    version: order.version,
    customerId: order.customerId,
    skus: skus(order),
    wasConfirmed,
    items: order.items.map((item) => ({ ...item })),
    ...(order.totalCents === undefined ? {} : { totalCents: order.totalCents }),
  };
  ctx.publish(EventTypes.OrderCancelled, event);
}

function requestRefund(ctx: Turn, amountCents: number): void {
  const order = ctx.state;
  order.refund = "requested";
  const refund: v.InferInput<typeof RefundRequested> = {
    orderId: ctx.key,
    customerId: order.customerId,
    amountCents,
  };
  ctx.send(billingOf(order), "RefundRequested", refund);
}

function view(ctx: Turn): OrderView {
  const order = ctx.state;
  return {
    orderId: ctx.key,
    customerId: order.customerId,
    status: order.status,
    items: order.items.map((item) => ({ ...item })),
    ...(order.totalCents === undefined ? {} : { totalCents: order.totalCents }),
    ...(order.reason === undefined ? {} : { reason: order.reason }),
    ...(order.cancelRequested && order.status === "pending" ? { cancelRequested: true as const } : {}),
    ...(order.refundedAt === undefined ? {} : { refundedAt: order.refundedAt }),
    createdAt: order.createdAt,
    updatedAt: order.updatedAt,
    version: order.version,
  };
}
