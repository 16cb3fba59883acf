// The order saga end to end on one local host: the three actors, their subscriptions, billing played by the test.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { newId } from "../../shared/ids/index.ts";
import { RecordingTransport } from "../../test/support/memory-transport.ts";
import { LocalActorHost } from "../hosts/local/host.ts";
import { openBunSqlite } from "../hosts/local/sqlite-bun.ts";
import { SubscriptionRegistry, targetOf } from "../runtime/index.ts";
import { commerceActorSubscriptions, commerceActors, commerceConsumerSubscriptions } from "./actors.ts";
import type { InventoryState, OrderRecord } from "./inventory.ts";
import { pointsFor } from "./loyalty.ts";
import { Participants } from "./messages.ts";
import type { OrderView } from "./order.ts";
import { readSideEvents } from "./subscriptions.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

interface Payment {
  orderId: string;
  customerId: string;
  amountCents: number;
}

/** Billing as the contract describes it: one debit and one refund per order, never below zero. */
class FakeBilling {
  readonly balances = new Map<string, number>();
  readonly captured = new Map<string, number>();
  readonly failed = new Set<string>();
  readonly refunded = new Set<string>();

  handle(envelope: Envelope): Envelope[] {
    const data = envelope.data as Payment;
    const balance = this.balances.get(data.customerId) ?? 0;
    if (envelope.type === "PaymentRequested") {
      if (this.captured.has(data.orderId) || this.failed.has(data.orderId)) return [];
      if (balance < data.amountCents) {
        this.failed.add(data.orderId);
        return [reply("PaymentFailed", data, { reason: "insufficient_funds" })];
      }
      this.balances.set(data.customerId, balance - data.amountCents);
      this.captured.set(data.orderId, data.amountCents);
      return [reply("PaymentCaptured", data, { balanceCents: balance - data.amountCents })];
    }
    if (envelope.type === "RefundRequested") {
      const amount = this.captured.get(data.orderId);
      if (amount === undefined || this.refunded.has(data.orderId)) return [];
      expect(data.amountCents).toBe(amount);
      this.refunded.add(data.orderId);
      this.balances.set(data.customerId, balance + amount);
      return [reply("PaymentRefunded", data, { balanceCents: balance + amount })];
    }
    throw new Error(`billing got ${envelope.type}`);
  }
}

function reply(type: string, payment: Payment, extra: Record<string, unknown>): Envelope {
  return createEnvelope({
    type,
    source: `edgewise://billing/${payment.customerId}`,
    target: `order/${payment.orderId}`,
    data: {
      orderId: payment.orderId,
      customerId: payment.customerId,
      amountCents: payment.amountCents,
      ...extra,
    },
  });
}

/** A small seeded generator, so a chaotic run can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Chaos {
  /** Deliveries are shuffled, some wait a round, some come twice, some again under a fresh id. */
  next: () => number;
}

function boot() {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-saga-"));
  const transport = new RecordingTransport();
  const host = new LocalActorHost({
    actors: commerceActors,
    db: openBunSqlite(join(dir, "actors.db"), "NORMAL"),
    transport,
    subscriptions: new SubscriptionRegistry([
      ...commerceActorSubscriptions,
      ...commerceConsumerSubscriptions,
    ]),
    onBackgroundError: () => {},
  });
  cleanups.push(async () => {
    await host.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const billing = new FakeBilling();
  /** What reached the non-actor consumers (projector, activity, webhooks, cache), each addressed to its part. */
  const consumed: Envelope[] = [];
  let relayed = 0;
  let inFlight: Envelope[] = [];

  async function deliver(envelope: Envelope): Promise<void> {
    const { type } = targetOf(envelope);
    if (type === "billing") inFlight.push(...billing.handle(envelope));
    else if (host.actorTypes.includes(type)) await host.receive(envelope);
    else if (type === Participants.readSide) {
      // One delivery for the whole read side, handed to each part that takes the event (`fanInConsumer`).
      for (const [part, key] of Object.entries(readSideParts)) {
        const events: readonly string[] = readSideEvents[part as keyof typeof readSideParts];
        if (events.includes(envelope.type)) consumed.push({ ...envelope, target: `${part}/${key}` });
      }
    } else consumed.push(envelope);
  }

  /** Relays and delivers until nothing moves; `between` runs after each round (e.g. to cancel mid-flight). */
  async function settle(chaos?: Chaos, between?: (round: number) => Promise<void>): Promise<void> {
    for (let round = 0; round < 500; round++) {
      await host.tick();
      const batch = [...inFlight, ...transport.sent.slice(relayed)];
      relayed = transport.sent.length;
      inFlight = [];
      if (batch.length === 0) return;
      if (chaos) shuffle(batch, chaos.next);
      for (const envelope of batch) {
        if (chaos && chaos.next() < 0.25) {
          inFlight.push(envelope);
          continue;
        }
        await deliver(envelope);
        if (chaos && chaos.next() < 0.25) await deliver(envelope);
        if (chaos && chaos.next() < 0.15) await deliver({ ...envelope, id: newId() });
      }
      await between?.(round);
    }
    throw new Error("the saga did not settle");
  }

  const ask = async <T>(type: string, key: string, message: string, data: unknown = {}) =>
    (await host.ask({ type, key }, message, data)).reply as T;
  const stock = (sku: string) => host.inspect({ type: "inventory", key: sku }).state as InventoryState;
  /** What a sku remembers of an order (its kv record), or undefined. */
  const stockRecord = (sku: string, orderId: string) =>
    host.store.kvGet(`inventory/${sku}`, `order:${orderId}`) as OrderRecord | undefined;
  const order = (orderId: string) => ask<OrderView>("order", orderId, "Get");
  const points = async (customerId: string) =>
    (await ask<{ points: number }>("loyalty", customerId, "Get")).points;
  const place = (orderId: string, customerId: string, items: Array<{ sku: string; quantity: number }>) =>
    ask<OrderView>("order", orderId, "Place", { customerId, items });
  const put = (sku: string, available: number, priceCents: number) =>
    ask("inventory", sku, "Put", { available, priceCents });
  /** The distinct ids of the `type` messages the actors sent to billing about one order. */
  const billed = (type: string, orderId: string) =>
    new Set(
      transport.sent
        .filter((envelope) => envelope.type === type && (envelope.data as Payment).orderId === orderId)
        .map((envelope) => envelope.id),
    ).size;
  return { host, billing, billed, consumed, settle, ask, stock, stockRecord, order, points, place, put };
}

/** The read side's parts and their address keys, as `edge/commerce.ts` wires them behind `readside/events`. */
const readSideParts = { projector: "orders", activity: "all", webhooks: "outbound", cache: "reads" } as const;

function shuffle<T>(list: T[], next: () => number): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [list[i], list[j]] = [list[j] as T, list[i] as T];
  }
}

function expectBalanced(stock: InventoryState): void {
  expect(stock.available + stock.reserved + stock.sold).toBe(stock.stocked);
}

describe("order saga", () => {
  test("confirmed: stock sold, account debited, points credited, every consumer told", async () => {
    const { billing, consumed, settle, stock, order, points, place, put } = boot();
    await put("apple", 10, 150);
    await put("pear", 5, 200);
    billing.balances.set("alice", 10_000);
    await place("o1", "alice", [
      { sku: "apple", quantity: 2 },
      { sku: "pear", quantity: 1 },
      { sku: "apple", quantity: 1 },
    ]);
    await settle();

    expect(await order("o1")).toMatchObject({
      status: "confirmed",
      totalCents: 650,
      items: [
        { sku: "apple", quantity: 3, unitPriceCents: 150 },
        { sku: "pear", quantity: 1, unitPriceCents: 200 },
      ],
    });
    expect(stock("apple")).toMatchObject({ available: 7, reserved: 0, sold: 3 });
    expect(stock("pear")).toMatchObject({ available: 4, reserved: 0, sold: 1 });
    expect(billing.balances.get("alice")).toBe(9_350);
    expect(await points("alice")).toBe(6);

    const heard = (target: string) =>
      consumed.filter((envelope) => envelope.target === target).map((envelope) => envelope.type);
    expect(heard("projector/orders")).toEqual(["OrderPlaced", "OrderConfirmed"]);
    expect(heard("webhooks/outbound")).toEqual(["OrderConfirmed"]);
    for (const target of ["activity/all", "cache/reads"]) {
      expect(heard(target).filter((type) => type.startsWith("Order"))).toEqual([
        "OrderPlaced",
        "OrderConfirmed",
      ]);
      // Two Puts, two reservations, two sales.
      expect(heard(target).filter((type) => type === "StockChanged")).toHaveLength(6);
    }
  });

  test("out_of_stock: one short line rejects the order, and the other line's reservation is released", async () => {
    const { billing, billed, consumed, settle, stock, order, points, place, put } = boot();
    await put("apple", 10, 150);
    await put("pear", 0, 200);
    billing.balances.set("alice", 10_000);
    await place("o1", "alice", [
      { sku: "apple", quantity: 2 },
      { sku: "pear", quantity: 1 },
    ]);
    await settle();
    expect(await order("o1")).toMatchObject({ status: "rejected", reason: "out_of_stock" });
    expect(stock("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0 });
    expect(billing.balances.get("alice")).toBe(10_000);
    expect(billed("PaymentRequested", "o1")).toBe(0);
    expect(await points("alice")).toBe(0);
    expect(consumed.filter((envelope) => envelope.target === "webhooks/outbound").map((e) => e.type)).toEqual(
      ["OrderRejected"],
    );
  });

  test("insufficient_funds: the payment fails, the order is rejected, all stock is released", async () => {
    const { billing, settle, stock, order, points, place, put } = boot();
    await put("apple", 10, 150);
    billing.balances.set("alice", 299);
    await place("o1", "alice", [{ sku: "apple", quantity: 2 }]);
    await settle();
    expect(await order("o1")).toMatchObject({
      status: "rejected",
      reason: "insufficient_funds",
      totalCents: 300,
    });
    expect(stock("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0 });
    expect(billing.balances.get("alice")).toBe(299);
    expect(await points("alice")).toBe(0);
  });

  test("cancel after confirm: refunded, units back to available, points taken back", async () => {
    const { ask, billing, settle, stock, order, points, place, put } = boot();
    await put("apple", 10, 1_000);
    billing.balances.set("alice", 10_000);
    await place("o1", "alice", [{ sku: "apple", quantity: 3 }]);
    await settle();
    expect(await points("alice")).toBe(30);
    await ask("order", "o1", "Cancel");
    await settle();
    expect(await order("o1")).toMatchObject({
      status: "cancelled",
      totalCents: 3_000,
      refundedAt: expect.any(String),
    });
    expect(stock("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0, stocked: 10 });
    expect(billing.balances.get("alice")).toBe(10_000);
    expect(await points("alice")).toBe(0);
  });

  test("cancel while pending: the order is cancelled once payment is captured, and refunded", async () => {
    const { ask, billing, settle, stock, order, points, place, put } = boot();
    await put("apple", 10, 1_000);
    billing.balances.set("alice", 10_000);
    await place("o1", "alice", [{ sku: "apple", quantity: 3 }]);
    expect(await ask("order", "o1", "Cancel")).toMatchObject({ status: "pending", cancelRequested: true });
    await settle();
    expect(await order("o1")).toMatchObject({ status: "cancelled", refundedAt: expect.any(String) });
    expect(stock("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0 });
    expect(billing.balances.get("alice")).toBe(10_000);
    expect(billing.captured.get("o1")).toBe(3_000);
    expect(await points("alice")).toBe(0);
  });

  test("cancelling a rejected order changes nothing", async () => {
    const { ask, billing, consumed, settle, order, place, put } = boot();
    await put("apple", 1, 100);
    billing.balances.set("alice", 10_000);
    await place("o1", "alice", [{ sku: "apple", quantity: 2 }]);
    await settle();
    const rejected = await order("o1");
    const heard = consumed.length;
    expect(await ask("order", "o1", "Cancel")).toEqual(rejected);
    await settle();
    expect(await order("o1")).toEqual(rejected);
    expect(consumed).toHaveLength(heard);
  });

  for (const seed of [1, 2, 3]) {
    test(`invariants hold under shuffled, delayed and repeated deliveries (seed ${seed})`, async () => {
      const next = random(seed);
      const { ask, billing, billed, settle, stock, stockRecord, order, points, place, put } = boot();
      const skus = { apple: 150, pear: 275, plum: 990 };
      const customers = { alice: 50_000, bob: 4_000, carol: 0 };
      for (const [sku, price] of Object.entries(skus)) await put(sku, 25, price);
      for (const [customer, balance] of Object.entries(customers)) billing.balances.set(customer, balance);
      const orderIds: string[] = [];
      for (let n = 0; n < 24; n++) {
        const orderId = `o${n}`;
        const customer = Object.keys(customers)[n % 3] as string;
        const lines = Object.keys(skus)
          .filter(() => next() < 0.6)
          .map((sku) => ({ sku, quantity: 1 + Math.floor(next() * 3) }));
        await place(orderId, customer, lines.length > 0 ? lines : [{ sku: "apple", quantity: 1 }]);
        orderIds.push(orderId);
      }
      const chaos = { next };
      await settle(chaos, async (round) => {
        if (round === 1)
          for (const orderId of orderIds.filter((_, n) => n % 5 === 0)) await ask("order", orderId, "Cancel");
      });
      for (const orderId of orderIds.filter((_, n) => n % 7 === 3)) await ask("order", orderId, "Cancel");
      await settle(chaos);

      const views = await Promise.all(orderIds.map((orderId) => order(orderId)));
      expect(views.filter((view) => view.status === "pending")).toEqual([]);
      const confirmed = views.filter((view) => view.status === "confirmed");
      expect(confirmed.length).toBeGreaterThan(0);
      expect(views.some((view) => view.status === "rejected")).toBe(true);

      for (const sku of Object.keys(skus)) {
        const soldTo = confirmed.flatMap((view) => view.items.filter((item) => item.sku === sku));
        expect(stock(sku)).toMatchObject({
          reserved: 0,
          stocked: 25,
          sold: soldTo.reduce((sum, item) => sum + item.quantity, 0),
        });
        expectBalanced(stock(sku));
        // Each sku's record of each order agrees: sold for a confirmed order's line, nothing held otherwise.
        for (const view of views) {
          const line = view.items.find((item) => item.sku === sku);
          const record = stockRecord(sku, view.orderId);
          if (!line) expect(record).toBeUndefined();
          else if (view.status === "confirmed")
            expect(record).toEqual({ stage: "sold", quantity: line.quantity });
          else expect(["refused", "released", "returned", undefined]).toContain(record?.stage);
        }
      }
      for (const [customer, start] of Object.entries(customers)) {
        const mine = confirmed.filter((view) => view.customerId === customer);
        const spent = mine.reduce((sum, view) => sum + (view.totalCents ?? 0), 0);
        expect(billing.balances.get(customer)).toBe(start - spent);
        expect(await points(customer)).toBe(
          mine.reduce((sum, view) => sum + pointsFor(view.totalCents ?? 0), 0),
        );
      }
      // Each order asked billing at most once for each thing, whatever was redelivered to it.
      for (const view of views) {
        expect(billed("PaymentRequested", view.orderId)).toBe(view.totalCents === undefined ? 0 : 1);
        expect(billed("RefundRequested", view.orderId)).toBe(view.status === "cancelled" ? 1 : 0);
      }
    });
  }
});
