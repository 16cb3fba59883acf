// The inventory actor on a real local host: levels and price, reservations per order, idempotency, the invariant.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { RecordingTransport } from "../../test/support/memory-transport.ts";
import { LocalActorHost } from "../hosts/local/host.ts";
import { openBunSqlite } from "../hosts/local/sqlite-bun.ts";
import { type InventoryState, inventoryActor } from "./inventory.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

function boot() {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-inventory-"));
  const transport = new RecordingTransport();
  const host = new LocalActorHost({
    actors: [inventoryActor],
    db: openBunSqlite(join(dir, "actors.db")),
    transport,
    onBackgroundError: () => {},
  });
  cleanups.push(async () => {
    await host.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  let seen = 0;
  /** Relays what committed turns sent, and returns it. */
  const sent = async (): Promise<Envelope[]> => {
    await host.tick();
    const fresh = transport.sent.slice(seen);
    seen = transport.sent.length;
    return fresh;
  };
  const state = (sku: string) => host.inspect({ type: "inventory", key: sku }).state as InventoryState;
  const deliver = (sku: string, type: string, data: unknown, id?: string) =>
    host.receive(
      createEnvelope({
        type,
        data,
        source: "edgewise://test",
        target: `inventory/${sku}`,
        ...(id ? { id } : {}),
      }),
    );
  const ask = async (sku: string, type: string, data: unknown = {}) =>
    (await host.ask({ type: "inventory", key: sku }, type, data)).reply;
  return { host, sent, state, deliver, ask };
}

const placed = (orderId: string, items: Array<{ sku: string; quantity: number }>) => ({
  orderId,
  version: 1,
  customerId: "c1",
  items,
  placedAt: new Date(0).toISOString(),
});
const confirmed = (orderId: string, sku: string, quantity: number) => ({
  orderId,
  version: 3,
  customerId: "c1",
  items: [{ sku, quantity, unitPriceCents: 100 }],
  totalCents: 100 * quantity,
});
const rejected = (orderId: string, skus: string[]) => ({
  orderId,
  version: 2,
  customerId: "c1",
  reason: "out_of_stock",
  skus,
});
const cancelled = (orderId: string, skus: string[], wasConfirmed: boolean) => ({
  orderId,
  version: 4,
  customerId: "c1",
  skus,
  wasConfirmed,
});

function expectBalanced(stock: InventoryState): void {
  expect(stock.available + stock.reserved + stock.sold).toBe(stock.stocked);
  const open = Object.values(stock.reservations).reduce((sum, quantity) => sum + quantity, 0);
  const sold = Object.values(stock.sales).reduce((sum, quantity) => sum + quantity, 0);
  expect([open, sold]).toEqual([stock.reserved, stock.sold]);
}

describe("inventory actor", () => {
  test("Put sets levels and price absolutely; Get reads them; a sku never set is not found", async () => {
    const { ask, sent, state } = boot();
    const missing = await ask("apple", "Get").catch((error) => error);
    expect(missing).toBeInstanceOf(EdgewiseError);
    expect((missing as EdgewiseError).code).toBe("not_found");

    expect(await ask("apple", "Put", { available: 10, priceCents: 250 })).toMatchObject({
      sku: "apple",
      available: 10,
      reserved: 0,
      priceCents: 250,
    });
    expect(await ask("apple", "Get")).toMatchObject({ sku: "apple", available: 10, priceCents: 250 });
    const changes = await sent();
    expect(changes.map((event) => [event.type, event.data])).toEqual([
      ["StockChanged", { sku: "apple", version: 1, available: 10, reserved: 0, sold: 0, priceCents: 250 }],
    ]);

    // The same Put changes nothing; a lower one lowers what was ever stocked, keeping the invariant.
    await ask("apple", "Put", { available: 10, priceCents: 250 });
    expect(await sent()).toEqual([]);
    await ask("apple", "Put", { available: 4, priceCents: 300 });
    expect(state("apple")).toMatchObject({ available: 4, stocked: 4, priceCents: 300, version: 2 });
    expectBalanced(state("apple"));
  });

  test("OrderPlaced reserves this sku's lines at the current price, and answers the order", async () => {
    const { ask, deliver, sent, state } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 250 });
    await sent();
    await deliver(
      "apple",
      "OrderPlaced",
      placed("o1", [
        { sku: "apple", quantity: 3 },
        { sku: "pear", quantity: 9 },
      ]),
    );
    const out = await sent();
    expect(out.map((message) => [message.type, message.target ?? "(published)", message.data])).toEqual([
      ["StockReserved", "order/o1", { orderId: "o1", sku: "apple", quantity: 3, unitPriceCents: 250 }],
      [
        "StockChanged",
        "(published)",
        { sku: "apple", version: 2, available: 7, reserved: 3, sold: 0, priceCents: 250 },
      ],
    ]);
    expect(state("apple").reservations).toEqual({ o1: 3 });
    expectBalanced(state("apple"));
  });

  test("short stock, or a sku never set, answers StockRejected and reserves nothing", async () => {
    const { ask, deliver, sent, state } = boot();
    await ask("apple", "Put", { available: 2, priceCents: 250 });
    await sent();
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 3 }]));
    await deliver("ghost", "OrderPlaced", placed("o1", [{ sku: "ghost", quantity: 1 }]));
    expect((await sent()).map((message) => [message.target, message.type, message.data])).toEqual([
      ["order/o1", "StockRejected", { orderId: "o1", sku: "apple", quantity: 3, available: 2 }],
      ["order/o1", "StockRejected", { orderId: "o1", sku: "ghost", quantity: 1, available: 0 }],
    ]);
    expect(state("apple")).toMatchObject({ available: 2, reserved: 0, closed: { o1: "refused" } });
    // A later restock does not let a redelivery of the refused order reserve after all.
    await deliver("apple", "Restock", { sku: "apple", quantity: 5 });
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 3 }]));
    expect(state("apple")).toMatchObject({ available: 7, reserved: 0, stocked: 7 });
    expectBalanced(state("apple"));
  });

  test("a redelivered OrderPlaced reserves once: the same envelope, or the same order under a new id", async () => {
    const { ask, deliver, sent, state } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await sent();
    const event = placed("o1", [{ sku: "apple", quantity: 4 }]);
    expect((await deliver("apple", "OrderPlaced", event, "evt-1")).duplicate).toBe(false);
    expect((await deliver("apple", "OrderPlaced", event, "evt-1")).duplicate).toBe(true);
    expect((await deliver("apple", "OrderPlaced", event, "evt-2")).duplicate).toBe(false);
    expect((await sent()).filter((message) => message.type === "StockReserved")).toHaveLength(1);
    expect(state("apple")).toMatchObject({ available: 6, reserved: 4 });
    expectBalanced(state("apple"));
  });

  test("confirm sells the reservation; cancelling the confirmed order returns the units, each once", async () => {
    const { ask, deliver, state } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 4 }]));
    for (const id of ["c-1", "c-1", "c-2"])
      await deliver("apple", "OrderConfirmed", confirmed("o1", "apple", 4), id);
    expect(state("apple")).toMatchObject({ available: 6, reserved: 0, sold: 4, sales: { o1: 4 } });
    expectBalanced(state("apple"));

    for (const id of ["x-1", "x-1", "x-2"])
      await deliver("apple", "OrderCancelled", cancelled("o1", ["apple"], true), id);
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0, closed: { o1: "returned" } });
    // Neither a late confirm nor a late placement touches a returned order.
    await deliver("apple", "OrderConfirmed", confirmed("o1", "apple", 4));
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 4 }]));
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0, stocked: 10 });
    expectBalanced(state("apple"));
  });

  test("rejection and an unconfirmed cancel release the reservation once", async () => {
    const { ask, deliver, state } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]));
    await deliver("apple", "OrderPlaced", placed("o2", [{ sku: "apple", quantity: 3 }]));
    expect(state("apple")).toMatchObject({ available: 5, reserved: 5 });
    for (const id of ["r-1", "r-1", "r-2"])
      await deliver("apple", "OrderRejected", rejected("o1", ["apple", "pear"]), id);
    for (const id of ["k-1", "k-1", "k-2"])
      await deliver("apple", "OrderCancelled", cancelled("o2", ["apple"], false), id);
    expect(state("apple")).toMatchObject({
      available: 10,
      reserved: 0,
      reservations: {},
      closed: { o1: "released", o2: "released" },
    });
    // The same orders placed again (a redelivery under a new id) reserve nothing.
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]));
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0 });
    expectBalanced(state("apple"));
  });

  test("a rejection that overtakes its placement leaves a tombstone, so the placement reserves nothing", async () => {
    const { ask, deliver, sent, state } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await sent();
    await deliver("apple", "OrderRejected", rejected("o1", ["apple"]));
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]));
    expect(await sent()).toEqual([]);
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0, closed: { o1: "released" } });
  });

  test("restock adds to available and stocked; a sku never priced keeps the units but sells nothing", async () => {
    const { ask, deliver, sent, state } = boot();
    await ask("apple", "Put", { available: 1, priceCents: 100 });
    await deliver("apple", "Restock", { sku: "apple", quantity: 5, source: "supplier" }, "wh-1");
    await deliver("apple", "Restock", { sku: "apple", quantity: 5, source: "supplier" }, "wh-1");
    expect(state("apple")).toMatchObject({ available: 6, stocked: 6, version: 2 });

    await deliver("kiwi", "Restock", { sku: "kiwi", quantity: 3 });
    expect(state("kiwi")).toMatchObject({ exists: false, available: 3, stocked: 3 });
    expect(((await ask("kiwi", "Get").catch((error) => error)) as EdgewiseError).code).toBe("not_found");
    await sent();
    await deliver("kiwi", "OrderPlaced", placed("o1", [{ sku: "kiwi", quantity: 1 }]));
    expect((await sent()).map((message) => message.type)).toEqual(["StockRejected"]);
    await ask("kiwi", "Put", { available: 8, priceCents: 50 });
    expect(state("kiwi")).toMatchObject({ exists: true, available: 8, stocked: 8 });
    expectBalanced(state("kiwi"));
  });
});
