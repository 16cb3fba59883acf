// Folds one order event into the read model's row: newer versions win, facts that never change are backfilled.
import type { OrderStatus, RejectReason } from "../messages.ts";
import type { OrderEvent } from "./order-events.ts";

export interface OrderLineView {
  sku: string;
  quantity: number;
  unitPriceCents?: number;
}

/** GET /v1/orders/{orderId} and the items of GET /v1/orders (API.md). Times are ISO 8601. */
export interface OrderView {
  orderId: string;
  customerId: string;
  status: OrderStatus;
  items: OrderLineView[];
  totalCents?: number;
  reason?: RejectReason;
  /** When the order's charge was refunded, as the order records it. */
  refundedAt?: string;
  createdAt: string;
  updatedAt: string;
}

/** One row of `orders_read`, as the merge sees it. Times are epoch milliseconds. */
export interface OrderRecord {
  orderId: string;
  customerId: string;
  status: OrderStatus;
  /** Empty while only events without lines (rejected, cancelled) were seen. */
  items: OrderLineView[];
  /** Every sku the order is known to hold: from its lines, or from events that carry only skus. */
  skus: string[];
  totalCents: number | null;
  reason: RejectReason | null;
  /** Set once, by OrderRefunded (epoch ms). */
  refundedAt: number | null;
  version: number;
  createdAt: number;
  updatedAt: number;
}

export interface MergeResult {
  record: OrderRecord;
  /** The event was newer than the row: its status and version were taken. */
  applied: boolean;
  /** Something in the row differs from before (an older event may still backfill lines or createdAt). */
  changed: boolean;
}

const statusOf = (event: OrderEvent): OrderStatus => {
  switch (event.type) {
    case "OrderPlaced":
      return "pending";
    case "OrderConfirmed":
      return "confirmed";
    case "OrderRejected":
      return "rejected";
    case "OrderCancelled":
      return "cancelled";
    case "OrderRefunded":
      return event.data.status;
  }
};

/** 0: no lines known; else 1 + the lines priced (all of them from OrderConfirmed, some from OrderRejected). */
function detail(items: readonly OrderLineView[]): number {
  if (items.length === 0) return 0;
  return 1 + items.filter((line) => line.unitPriceCents !== undefined).length;
}

function factsOf(event: OrderEvent, at: number) {
  switch (event.type) {
    case "OrderPlaced": {
      const placed = Date.parse(event.data.placedAt);
      return {
        items: event.data.items.map(({ sku, quantity }) => ({ sku, quantity })),
        skus: [],
        createdAt: Number.isFinite(placed) ? placed : at,
        totalCents: null,
        reason: null,
        refundedAt: null,
      };
    }
    case "OrderConfirmed":
      return {
        items: event.data.items.map(({ sku, quantity, unitPriceCents }) => ({
          sku,
          quantity,
          unitPriceCents,
        })),
        skus: [],
        createdAt: at,
        totalCents: event.data.totalCents,
        reason: null,
        refundedAt: null,
      };
    case "OrderRejected":
      return {
        items: (event.data.items ?? []).map(({ sku, quantity, unitPriceCents }) =>
          unitPriceCents === undefined ? { sku, quantity } : { sku, quantity, unitPriceCents },
        ),
        skus: event.data.skus,
        createdAt: at,
        totalCents: event.data.totalCents ?? null,
        reason: event.data.reason,
        refundedAt: null,
      };
    case "OrderCancelled":
      return {
        items: (event.data.items ?? []).map(({ sku, quantity, unitPriceCents }) =>
          unitPriceCents === undefined ? { sku, quantity } : { sku, quantity, unitPriceCents },
        ),
        skus: event.data.skus,
        createdAt: at,
        totalCents: event.data.totalCents ?? null,
        reason: null,
        refundedAt: null,
      };
    case "OrderRefunded": {
      const refunded = Date.parse(event.data.refundedAt);
      return {
        items: event.data.items.map(({ sku, quantity, unitPriceCents }) =>
          unitPriceCents === undefined ? { sku, quantity } : { sku, quantity, unitPriceCents },
        ),
        skus: event.data.skus,
        createdAt: at,
        totalCents: event.data.totalCents ?? null,
        reason: event.data.reason ?? null,
        refundedAt: Number.isFinite(refunded) ? refunded : at,
      };
    }
  }
}

/**
 * `at` is the event's time (envelope `time`), in epoch ms. Rules:
 * - status, version, totalCents, reason and updatedAt change only when `event.version` is greater than the row's,
 *   so a late or redelivered event never moves an order back;
 * - lines, skus and createdAt never change in a real order, so any event may fill in what the row lacks: a row
 *   first created by OrderRejected learns its lines when the late OrderPlaced arrives, and its createdAt becomes
 *   `placedAt` (the earliest time any event tells);
 * - refundedAt is set once, by OrderRefunded, whichever version the row holds (an order is refunded once).
 */
export function mergeOrder(existing: OrderRecord | undefined, event: OrderEvent, at: number): MergeResult {
  const facts = factsOf(event, at);
  const base: OrderRecord = existing ?? {
    orderId: event.data.orderId,
    customerId: event.data.customerId,
    status: statusOf(event),
    items: [],
    skus: [],
    totalCents: null,
    reason: null,
    refundedAt: null,
    version: event.data.version,
    createdAt: facts.createdAt,
    updatedAt: at,
  };
  const applied = existing === undefined || event.data.version > existing.version;
  const items = detail(facts.items) > detail(base.items) ? facts.items : base.items;
  const record: OrderRecord = {
    ...base,
    items,
    skus: [...new Set([...base.skus, ...items.map((line) => line.sku), ...facts.skus])],
    createdAt: Math.min(base.createdAt, facts.createdAt),
    refundedAt: base.refundedAt ?? facts.refundedAt,
  };
  if (applied) {
    record.status = statusOf(event);
    record.version = event.data.version;
    record.updatedAt = Math.max(base.updatedAt, at);
    record.totalCents = facts.totalCents ?? base.totalCents;
    record.reason = facts.reason ?? base.reason;
  }
  const changed = existing === undefined || canonical(record) !== canonical(existing);
  return { record, applied, changed };
}

/** A comparable form of a record, independent of key order (rows come back from jsonb with sorted keys). */
function canonical(record: OrderRecord): string {
  return JSON.stringify([
    record.orderId,
    record.customerId,
    record.status,
    record.items.map((line) => [line.sku, line.quantity, line.unitPriceCents ?? null]),
    record.skus,
    record.totalCents,
    record.reason,
    record.refundedAt,
    record.version,
    record.createdAt,
    record.updatedAt,
  ]);
}

export function toOrderView(record: OrderRecord): OrderView {
  return {
    orderId: record.orderId,
    customerId: record.customerId,
    status: record.status,
    items: record.items.map((line) => ({ ...line })),
    ...(record.totalCents === null ? {} : { totalCents: record.totalCents }),
    ...(record.reason === null ? {} : { reason: record.reason }),
    ...(record.refundedAt === null ? {} : { refundedAt: new Date(record.refundedAt).toISOString() }),
    createdAt: new Date(record.createdAt).toISOString(),
    updatedAt: new Date(record.updatedAt).toISOString(),
  };
}

/**
 * The text the search vector is built from: ids, skus and status, one word each. In Unicode's composed form (NFC),
 * as a search's words are, so `café` typed either way finds it (the `ids` column keeps each id exactly as given).
 */
export function searchText(record: OrderRecord): string {
  return [record.orderId, record.customerId, ...record.skus, record.status].join(" ").normalize("NFC");
}
