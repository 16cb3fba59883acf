// The order actor on a real local host, with inventory and billing played by the test: every lifecycle branch.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { RecordingTransport } from "../../test/support/memory-transport.ts";
import { LocalActorHost } from "../hosts/local/host.ts";
import { openBunSqlite } from "../hosts/local/sqlite-bun.ts";
import { type OrderView, orderActor, sagaNudgeMs } from "./order.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

const customerId = "alice";
const items = [
  { sku: "apple", quantity: 2 },
  { sku: "pear", quantity: 1 },
];

function boot() {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-order-"));
  const clock = new ManualClock();
  const transport = new RecordingTransport();
  const host = new LocalActorHost({
    actors: [orderActor],
    db: openBunSqlite(join(dir, "actors.db")),
    transport,
    clock,
    onBackgroundError: () => {},
  });
  cleanups.push(async () => {
    await host.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  let seen = 0;
  /** Relays what committed turns sent, and returns it as `[type, target or "published", data]`. */
  const sent = async (): Promise<Array<[string, string, unknown]>> => {
    await host.tick();
    const fresh: Envelope[] = transport.sent.slice(seen);
    seen = transport.sent.length;
    return fresh.map((message) => [message.type, message.target ?? "published", message.data]);
  };
  const ask = async (orderId: string, type: string, data: unknown = {}) =>
    (await host.ask({ type: "order", key: orderId }, type, data)).reply as OrderView;
  const deliver = (orderId: string, type: string, data: Record<string, unknown>, id?: string) =>
    host.receive(
      createEnvelope({
        type,
        data: { orderId, ...data },
        source: "edgewise://test",
        target: `order/${orderId}`,
        ...(id ? { id } : {}),
      }),
    );
  const reserve = (orderId: string, sku: string, quantity: number, unitPriceCents: number, id?: string) =>
    deliver(orderId, "StockReserved", { sku, quantity, unitPriceCents }, id);
  const capture = (orderId: string, amountCents: number, id?: string) =>
    deliver(orderId, "PaymentCaptured", { customerId, amountCents, balanceCents: 1_000 }, id);
  const fail = (orderId: string, amountCents: number) =>
    deliver(orderId, "PaymentFailed", { customerId, amountCents, reason: "insufficient_funds" });
  /** Places the order and reserves both lines (apple 2 × 150, pear 1 × 200: 500 cents). */
  const placeAndReserve = async (orderId: string) => {
    await ask(orderId, "Place", { customerId, items });
    await reserve(orderId, "apple", 2, 150);
    await reserve(orderId, "pear", 1, 200);
    return sent();
  };
  const timers = (orderId: string) => host.inspect({ type: "order", key: orderId }).timers;
  return { clock, sent, ask, deliver, reserve, capture, fail, placeAndReserve, timers };
}

describe("order actor", () => {
  test("Place merges duplicate skus, publishes OrderPlaced, and reads back as pending", async () => {
    const { ask, sent } = boot();
    const view = await ask("o1", "Place", {
      customerId,
      items: [
        { sku: "apple", quantity: 1 },
        { sku: "pear", quantity: 1 },
        { sku: "apple", quantity: 1 },
      ],
    });
    expect(view).toMatchObject({ orderId: "o1", customerId, status: "pending", items, version: 1 });
    expect(view.createdAt).toBe(new Date(Date.UTC(2026, 0, 1)).toISOString());
    expect(await sent()).toEqual([
      [
        "OrderPlaced",
        "published",
        { orderId: "o1", version: 1, customerId, items, placedAt: view.createdAt },
      ],
    ]);
    expect(await ask("o1", "Get")).toEqual(view);
  });

  test("Place again: the same body returns the order, another body is an idempotency mismatch; unknown orders are not found", async () => {
    const { ask, sent } = boot();
    await ask("o1", "Place", { customerId, items });
    await sent();
    expect(await ask("o1", "Place", { customerId, items: [...items].reverse() })).toMatchObject({
      orderId: "o1",
    });
    const conflict = await ask("o1", "Place", { customerId, items: [{ sku: "apple", quantity: 3 }] }).catch(
      (error) => error,
    );
    expect((conflict as EdgewiseError).code).toBe("idempotency.mismatch");
    expect(await sent()).toEqual([]);
    for (const type of ["Get", "Cancel"]) {
      const missing = await ask("nope", type).catch((error) => error);
      expect(missing).toBeInstanceOf(EdgewiseError);
      expect((missing as EdgewiseError).code).toBe("not_found");
    }
  });

  test("Place refuses merged quantities past the line limit, and ids a JSON record cannot hold", async () => {
    const { ask } = boot();
    const huge = await ask("o1", "Place", {
      customerId,
      items: [
        { sku: "apple", quantity: 1_000_000 },
        { sku: "apple", quantity: 1 },
      ],
    }).catch((error) => error);
    expect((huge as EdgewiseError).code).toBe("message.invalid");
    const proto = await ask("__proto__", "Place", { customerId, items }).catch((error) => error);
    expect((proto as EdgewiseError).code).toBe("request.invalid");
  });

  test("Place refuses a sku of '.' or '..': no delivery URL can carry them, so it would never settle", async () => {
    // A customer of that name is fine: billing and loyalty reach it under an encoded key (customer-key.ts).
    const { ask, sent } = boot();
    for (const dots of [".", ".."]) {
      const sku = await ask("o1", "Place", { customerId, items: [{ sku: dots, quantity: 1 }] }).catch(
        (e) => e,
      );
      expect((sku as EdgewiseError).code).toBe("message.invalid");
    }
    expect(await sent()).toEqual([]);
  });

  test("confirmed: once every sku reserved, payment is requested for the total; capture confirms", async () => {
    const { ask, sent, reserve, capture, clock } = boot();
    await ask("o1", "Place", { customerId, items });
    await sent();
    await reserve("o1", "apple", 2, 150);
    expect(await sent()).toEqual([]);
    await reserve("o1", "pear", 1, 200);
    expect(await sent()).toEqual([
      ["PaymentRequested", "billing/alice", { orderId: "o1", customerId, amountCents: 500 }],
    ]);
    clock.advance(1_000);
    await capture("o1", 500);
    const out = await sent();
    expect(out).toEqual([
      [
        "OrderConfirmed",
        "published",
        {
          orderId: "o1",
          version: 4,
          customerId,
          items: [
            { sku: "apple", quantity: 2, unitPriceCents: 150 },
            { sku: "pear", quantity: 1, unitPriceCents: 200 },
          ],
          totalCents: 500,
        },
      ],
    ]);
    const view = await ask("o1", "Get");
    expect(view).toMatchObject({ status: "confirmed", totalCents: 500, version: 4 });
    expect(view.updatedAt).toBe(new Date(Date.UTC(2026, 0, 1) + 1_000).toISOString());
    expect(view.reason).toBeUndefined();
  });

  test("a pending order nudges its saga: the unanswered step is sent again, backing off, until the order settles", async () => {
    const { ask, sent, reserve, capture, clock, timers } = boot();
    await ask("o1", "Place", { customerId, items });
    const placedEvent = await sent();
    expect(placedEvent.map(([type]) => type)).toEqual(["OrderPlaced"]);
    clock.advance(sagaNudgeMs - 1);
    expect(await sent()).toEqual([]);
    // Ten minutes with no answer from inventory (an OrderPlaced dead-lettered, say): it is published again.
    clock.advance(1);
    expect(await sent()).toEqual(placedEvent);
    await reserve("o1", "apple", 2, 150);
    await reserve("o1", "pear", 1, 200);
    const request = await sent();
    expect(request.map(([type]) => type)).toEqual(["PaymentRequested"]);
    // The next nudge comes twice as late, and asks billing again (which charges an order at most once).
    clock.advance(2 * sagaNudgeMs);
    expect(await sent()).toEqual(request);
    await capture("o1", 500);
    expect((await sent()).map(([type]) => type)).toEqual(["OrderConfirmed"]);
    expect(timers("o1")).toEqual([]);
    clock.advance(24 * 60 * 60_000);
    expect(await sent()).toEqual([]);
  });

  test("a rejected or cancelled order nudges no more", async () => {
    const { ask, sent, deliver, capture, placeAndReserve, timers } = boot();
    await ask("o1", "Place", { customerId, items });
    await deliver("o1", "StockRejected", { sku: "pear", quantity: 1, available: 0 });
    expect(timers("o1")).toEqual([]);
    await placeAndReserve("o2");
    await ask("o2", "Cancel");
    expect(timers("o2").map((timer) => timer.type)).toEqual(["Nudge"]);
    await capture("o2", 500);
    expect(await ask("o2", "Get")).toMatchObject({ status: "cancelled" });
    expect(timers("o2")).toEqual([]);
    await sent();
  });

  test("every reply applies once: the same envelope twice, or the same fact under a new id", async () => {
    const { ask, sent, reserve, capture } = boot();
    await ask("o1", "Place", { customerId, items });
    await reserve("o1", "apple", 2, 150, "r-1");
    expect((await reserve("o1", "apple", 2, 150, "r-1")).duplicate).toBe(true);
    await reserve("o1", "apple", 2, 999, "r-2");
    await reserve("o1", "pear", 1, 200, "r-3");
    await reserve("o1", "pear", 1, 200, "r-4");
    await capture("o1", 500, "p-1");
    expect((await capture("o1", 500, "p-1")).duplicate).toBe(true);
    await capture("o1", 500, "p-2");
    const out = await sent();
    expect(out.map(([type]) => type)).toEqual(["OrderPlaced", "PaymentRequested", "OrderConfirmed"]);
    expect(await ask("o1", "Get")).toMatchObject({ status: "confirmed", totalCents: 500 });
  });

  test("out_of_stock: the first StockRejected rejects the order and tells every sku to release", async () => {
    const { ask, sent, deliver, reserve, capture } = boot();
    await ask("o1", "Place", { customerId, items });
    await reserve("o1", "apple", 2, 150);
    await sent();
    await deliver("o1", "StockRejected", { sku: "pear", quantity: 1, available: 0 });
    expect(await sent()).toEqual([
      [
        "OrderRejected",
        "published",
        {
          orderId: "o1",
          version: 3,
          customerId,
          reason: "out_of_stock",
          skus: ["apple", "pear"],
          // The line reserved so far is priced; the refused one is not, and there is no total.
          items: [
            { sku: "apple", quantity: 2, unitPriceCents: 150 },
            { sku: "pear", quantity: 1 },
          ],
        },
      ],
    ]);
    // Late or repeated replies change nothing; a capture the order can no longer use is refunded.
    await deliver("o1", "StockRejected", { sku: "pear", quantity: 1, available: 0 });
    await reserve("o1", "pear", 1, 200);
    await capture("o1", 500);
    const late = await sent();
    expect(late.map(([type]) => type)).toEqual(["RefundRequested"]);
    expect(await ask("o1", "Get")).toMatchObject({ status: "rejected", reason: "out_of_stock" });
  });

  test("insufficient_funds: a failed payment rejects the order and releases the stock", async () => {
    const { ask, sent, fail, placeAndReserve } = boot();
    await placeAndReserve("o1");
    await fail("o1", 500);
    await fail("o1", 500);
    expect(await sent()).toEqual([
      [
        "OrderRejected",
        "published",
        {
          orderId: "o1",
          version: 4,
          customerId,
          reason: "insufficient_funds",
          skus: ["apple", "pear"],
          items: [
            { sku: "apple", quantity: 2, unitPriceCents: 150 },
            { sku: "pear", quantity: 1, unitPriceCents: 200 },
          ],
          totalCents: 500,
        },
      ],
    ]);
    expect(await ask("o1", "Get")).toMatchObject({
      status: "rejected",
      reason: "insufficient_funds",
      totalCents: 500,
    });
  });

  test("cancel after confirm: refund, OrderCancelled that was confirmed; a second cancel changes nothing", async () => {
    const { ask, sent, capture, deliver, placeAndReserve } = boot();
    await placeAndReserve("o1");
    await capture("o1", 500);
    await sent();
    expect(await ask("o1", "Cancel")).toMatchObject({ status: "cancelled" });
    expect(await sent()).toEqual([
      ["RefundRequested", "billing/alice", { orderId: "o1", customerId, amountCents: 500 }],
      [
        "OrderCancelled",
        "published",
        {
          orderId: "o1",
          version: 5,
          customerId,
          skus: ["apple", "pear"],
          wasConfirmed: true,
          items: [
            { sku: "apple", quantity: 2, unitPriceCents: 150 },
            { sku: "pear", quantity: 1, unitPriceCents: 200 },
          ],
          totalCents: 500,
        },
      ],
    ]);
    expect(await ask("o1", "Cancel")).toMatchObject({ status: "cancelled", version: 5 });
    expect(await sent()).toEqual([]);
    await deliver("o1", "PaymentRefunded", { customerId, amountCents: 500, balanceCents: 1_000 });
    const refunded = (await ask("o1", "Get")) as { refundedAt?: string; version: number };
    expect(refunded).toMatchObject({ status: "cancelled", refundedAt: expect.any(String), version: 6 });
    // The read side hears of the refund too, so GET /v1/orders shows refundedAt as GET /v1/orders/{id} does.
    expect(await sent()).toEqual([
      [
        "OrderRefunded",
        "published",
        {
          orderId: "o1",
          version: 6,
          customerId,
          status: "cancelled",
          skus: ["apple", "pear"],
          items: [
            { sku: "apple", quantity: 2, unitPriceCents: 150 },
            { sku: "pear", quantity: 1, unitPriceCents: 200 },
          ],
          totalCents: 500,
          refundedAt: refunded.refundedAt,
        },
      ],
    ]);
    await deliver("o1", "PaymentRefunded", { customerId, amountCents: 500, balanceCents: 1_000 });
    expect(await sent()).toEqual([]);
  });

  test("cancel while pending, then capture: cancelled, refunded, and never confirmed", async () => {
    const { ask, sent, capture, placeAndReserve } = boot();
    await placeAndReserve("o1");
    expect(await ask("o1", "Cancel")).toMatchObject({ status: "pending", cancelRequested: true });
    await ask("o1", "Cancel");
    expect(await sent()).toEqual([]);
    await capture("o1", 500);
    await capture("o1", 500);
    expect(await sent()).toEqual([
      ["RefundRequested", "billing/alice", { orderId: "o1", customerId, amountCents: 500 }],
      [
        "OrderCancelled",
        "published",
        {
          orderId: "o1",
          version: 5,
          customerId,
          skus: ["apple", "pear"],
          wasConfirmed: false,
          items: [
            { sku: "apple", quantity: 2, unitPriceCents: 150 },
            { sku: "pear", quantity: 1, unitPriceCents: 200 },
          ],
          totalCents: 500,
        },
      ],
    ]);
    const view = await ask("o1", "Get");
    expect(view.status).toBe("cancelled");
    expect(view.cancelRequested).toBeUndefined();
  });

  test("cancel while pending, then payment fails: the order stays rejected, nothing to refund", async () => {
    const { ask, sent, fail, placeAndReserve } = boot();
    await placeAndReserve("o1");
    await ask("o1", "Cancel");
    await fail("o1", 500);
    expect((await sent()).map(([type]) => type)).toEqual(["OrderRejected"]);
    expect(await ask("o1", "Get")).toMatchObject({ status: "rejected", reason: "insufficient_funds" });
  });

  test("cancelling a rejected order changes nothing", async () => {
    const { ask, sent, deliver } = boot();
    await ask("o1", "Place", { customerId, items });
    await deliver("o1", "StockRejected", { sku: "apple", quantity: 2, available: 1 });
    const before = await ask("o1", "Get");
    await sent();
    expect(await ask("o1", "Cancel")).toEqual(before);
    expect(await sent()).toEqual([]);
  });

  test("replies for an order never placed are ignored", async () => {
    const { ask, sent, reserve, capture } = boot();
    await reserve("ghost", "apple", 1, 100);
    await capture("ghost", 100);
    expect(await sent()).toEqual([]);
    expect(((await ask("ghost", "Get").catch((error) => error)) as EdgewiseError).code).toBe("not_found");
  });
});
