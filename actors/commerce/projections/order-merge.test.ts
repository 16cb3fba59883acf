// mergeOrder without a database: newer versions win, late events backfill lines and createdAt, nothing regresses.
import { describe, expect, test } from "bun:test";
import type { OrderEvent } from "./order-events.ts";
import { mergeOrder, type OrderRecord, searchText, toOrderView } from "./order-merge.ts";

const t0 = Date.UTC(2026, 0, 1);
const placed: OrderEvent = {
  type: "OrderPlaced",
  data: {
    orderId: "o1",
    version: 1,
    customerId: "c1",
    items: [{ sku: "SKU-1", quantity: 2 }],
    placedAt: new Date(t0).toISOString(),
  },
};
const confirmed: OrderEvent = {
  type: "OrderConfirmed",
  data: {
    orderId: "o1",
    version: 4,
    customerId: "c1",
    items: [{ sku: "SKU-1", quantity: 2, unitPriceCents: 150 }],
    totalCents: 300,
  },
};
const cancelled: OrderEvent = {
  type: "OrderCancelled",
  data: { orderId: "o1", version: 5, customerId: "c1", skus: ["SKU-1"], wasConfirmed: true, totalCents: 300 },
};
const rejected: OrderEvent = {
  type: "OrderRejected",
  data: { orderId: "o1", version: 3, customerId: "c1", reason: "out_of_stock", skus: ["SKU-1", "SKU-2"] },
};

function fold(events: OrderEvent[]): OrderRecord | undefined {
  let record: OrderRecord | undefined;
  events.forEach((event, i) => {
    record = mergeOrder(record, event, t0 + (i + 1) * 1000).record;
  });
  return record;
}

describe("mergeOrder", () => {
  test("in order: pending → confirmed → cancelled, with prices and total", () => {
    const first = mergeOrder(undefined, placed, t0 + 5);
    expect(first).toMatchObject({ applied: true, changed: true });
    expect(toOrderView(first.record)).toEqual({
      orderId: "o1",
      customerId: "c1",
      status: "pending",
      items: [{ sku: "SKU-1", quantity: 2 }],
      createdAt: new Date(t0).toISOString(),
      updatedAt: new Date(t0 + 5).toISOString(),
    });
    const second = mergeOrder(first.record, confirmed, t0 + 10);
    expect(second.record).toMatchObject({ status: "confirmed", version: 4, totalCents: 300 });
    expect(second.record.items).toEqual([{ sku: "SKU-1", quantity: 2, unitPriceCents: 150 }]);
    const third = mergeOrder(second.record, cancelled, t0 + 20);
    expect(toOrderView(third.record)).toMatchObject({ status: "cancelled", totalCents: 300 });
    expect(third.record.items).toEqual(second.record.items);
  });

  test("a redelivered event changes nothing", () => {
    const once = mergeOrder(undefined, placed, t0 + 5).record;
    expect(mergeOrder(once, placed, t0 + 5)).toEqual({ record: once, applied: false, changed: false });
  });

  test("OrderPlaced after OrderConfirmed: status stays, createdAt becomes placedAt, priced lines stay", () => {
    const late = fold([confirmed, placed]);
    const inOrder = fold([placed, confirmed]);
    expect(late).toMatchObject({ status: "confirmed", version: 4, totalCents: 300, createdAt: t0 });
    expect(late?.items).toEqual(inOrder?.items ?? []);
  });

  test("a row first seen as rejected knows its skus, then learns its lines from a late OrderPlaced", () => {
    const first = mergeOrder(undefined, rejected, t0 + 9000);
    expect(first.record).toMatchObject({ status: "rejected", reason: "out_of_stock", items: [] });
    expect(first.record.skus).toEqual(["SKU-1", "SKU-2"]);
    const late = mergeOrder(first.record, placed, t0 + 9500);
    expect(late).toMatchObject({ applied: false, changed: true });
    expect(toOrderView(late.record)).toMatchObject({
      status: "rejected",
      reason: "out_of_stock",
      items: [{ sku: "SKU-1", quantity: 2 }],
      createdAt: new Date(t0).toISOString(),
      updatedAt: new Date(t0 + 9000).toISOString(),
    });
  });

  test("a funds rejection carries the priced lines and the total, as the order shows them", () => {
    const fundsRejected: OrderEvent = {
      type: "OrderRejected",
      data: {
        orderId: "o1",
        version: 4,
        customerId: "c1",
        reason: "insufficient_funds",
        skus: ["SKU-1"],
        items: [{ sku: "SKU-1", quantity: 2, unitPriceCents: 150 }],
        totalCents: 300,
      },
    };
    for (const events of [
      [placed, fundsRejected],
      [fundsRejected, placed],
    ]) {
      expect(toOrderView(fold(events) as OrderRecord)).toMatchObject({
        status: "rejected",
        reason: "insufficient_funds",
        items: [{ sku: "SKU-1", quantity: 2, unitPriceCents: 150 }],
        totalCents: 300,
        createdAt: new Date(t0).toISOString(),
      });
    }
  });

  test("an order cancelled while pending gets its prices from OrderCancelled, the only event after its placement", () => {
    const cancelledWhilePending: OrderEvent = {
      type: "OrderCancelled",
      data: {
        orderId: "o1",
        version: 5,
        customerId: "c1",
        skus: ["SKU-1"],
        wasConfirmed: false,
        items: [{ sku: "SKU-1", quantity: 2, unitPriceCents: 150 }],
        totalCents: 300,
      },
    };
    for (const events of [
      [placed, cancelledWhilePending],
      [cancelledWhilePending, placed],
    ]) {
      expect(toOrderView(fold(events) as OrderRecord)).toMatchObject({
        status: "cancelled",
        items: [{ sku: "SKU-1", quantity: 2, unitPriceCents: 150 }],
        totalCents: 300,
      });
    }
    // An older event without lines keeps what OrderPlaced said.
    expect(toOrderView(fold([placed, cancelled]) as OrderRecord).items).toEqual([
      { sku: "SKU-1", quantity: 2 },
    ]);
  });

  test("an out-of-stock rejection keeps the prices of the lines that were reserved", () => {
    const twoLines: OrderEvent = {
      type: "OrderPlaced",
      data: {
        ...(placed.data as object),
        items: [
          { sku: "SKU-1", quantity: 2 },
          { sku: "SKU-2", quantity: 1 },
        ],
      },
    } as OrderEvent;
    const partlyPriced: OrderEvent = {
      type: "OrderRejected",
      data: {
        ...(rejected.data as object),
        items: [
          { sku: "SKU-1", quantity: 2, unitPriceCents: 150 },
          { sku: "SKU-2", quantity: 1 },
        ],
      },
    } as OrderEvent;
    const record = fold([twoLines, partlyPriced]) as OrderRecord;
    expect(toOrderView(record)).toMatchObject({
      status: "rejected",
      items: [
        { sku: "SKU-1", quantity: 2, unitPriceCents: 150 },
        { sku: "SKU-2", quantity: 1 },
      ],
    });
    expect(toOrderView(record).totalCents).toBeUndefined();
  });

  test("any order of the same events ends in the same row", () => {
    const events = [placed, confirmed, cancelled];
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    const results = orders.map((order) => {
      let record: OrderRecord | undefined;
      for (const i of order) record = mergeOrder(record, events[i] as OrderEvent, t0 + (i + 1) * 1000).record;
      return record;
    });
    for (const result of results) {
      expect(result).toMatchObject({ status: "cancelled", version: 5, totalCents: 300, createdAt: t0 });
      expect(result?.items).toEqual([{ sku: "SKU-1", quantity: 2, unitPriceCents: 150 }]);
      expect(result?.updatedAt).toBe(t0 + 3000);
    }
  });

  test("searchText names ids, skus and status", () => {
    const record = fold([placed]) as OrderRecord;
    expect(searchText(record)).toBe("o1 c1 SKU-1 pending");
  });
});
