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
import { type InventoryState, inventoryActor, type OrderRecord } from "./inventory.ts";

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
  /** An order's committed record at a sku (kv), or undefined. */
  const record = (sku: string, orderId: string) =>
    host.store.kvGet(`inventory/${sku}`, `order:${orderId}`) as OrderRecord | undefined;
  /** The counters add up, and they equal the records of the orders the test used. */
  const expectBalanced = (sku: string, orderIds: string[] = []) => {
    const stock = state(sku);
    expect(stock.available + stock.reserved + stock.sold).toBe(stock.stocked);
    const held = (stage: OrderRecord["stage"]) =>
      orderIds
        .map((orderId) => record(sku, orderId))
        .filter((found) => found?.stage === stage)
        .reduce((sum, found) => sum + (found?.quantity ?? 0), 0);
    expect([held("reserved"), held("sold")]).toEqual([stock.reserved, stock.sold]);
  };
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
  return { host, sent, state, record, expectBalanced, deliver, ask };
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

describe("inventory actor", () => {
  test("Put sets levels and price absolutely; Get reads them; a sku never set is not found", async () => {
    const { ask, sent, state, expectBalanced } = boot();
    const missing = await ask("apple", "Get").catch((error) => error);
    expect(missing).toBeInstanceOf(EdgewiseError);
    expect((missing as EdgewiseError).code).toBe("not_found");

    const first = await ask("apple", "Put", { available: 10, priceCents: 250 });
    expect(first).toMatchObject({ sku: "apple", available: 10, reserved: 0, priceCents: 250 });
    expect(first).not.toHaveProperty("previous");
    expect(await ask("apple", "Get")).toMatchObject({ sku: "apple", available: 10, priceCents: 250 });
    const changes = await sent();
    expect(changes.map((event) => [event.type, event.data])).toEqual([
      ["StockChanged", { sku: "apple", version: 1, available: 10, reserved: 0, sold: 0, priceCents: 250 }],
    ]);

    // The same Put changes nothing; a lower one lowers what was ever stocked, keeping the invariant. Each answers
    // the stock and price it replaced, read in its own turn (the first had none: the sku was never set).
    expect(await ask("apple", "Put", { available: 10, priceCents: 250 })).toMatchObject({
      available: 10,
      previous: { available: 10, priceCents: 250 },
    });
    expect(await sent()).toEqual([]);
    expect(await ask("apple", "Put", { available: 4, priceCents: 300 })).toMatchObject({
      available: 4,
      priceCents: 300,
      previous: { available: 10, priceCents: 250 },
    });
    expect(state("apple")).toMatchObject({ available: 4, stocked: 4, priceCents: 300, version: 2 });
    expectBalanced("apple");
  });

  test("Put on a sku never set that a restock gave units answers those units as replaced", async () => {
    const { ask, deliver, state, expectBalanced } = boot();
    await deliver("pear", "Restock", { sku: "pear", quantity: 7 });
    expect(state("pear")).toMatchObject({ exists: false, available: 7 });
    // Before, the answer had no `previous`: the record of who set the sku did not say 7 units were replaced.
    const answer = (await ask("pear", "Put", { available: 3, priceCents: 120 })) as Record<string, unknown>;
    expect(answer).toMatchObject({ available: 3, priceCents: 120 });
    // Its units only: it had no price (the state's 0 is not one, and the record must not say the sku was free).
    expect(answer.previous).toStrictEqual({ available: 7 });
    expectBalanced("pear");
  });

  test("OrderPlaced reserves this sku's lines at the current price, and answers the order", async () => {
    const { ask, deliver, sent, record, expectBalanced } = boot();
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
    expect(record("apple", "o1")).toEqual({ stage: "reserved", quantity: 3, unitPriceCents: 250 });
    expect(record("pear", "o1")).toBeUndefined();
    expectBalanced("apple", ["o1"]);
  });

  test("an answer sent again (the order's nudge) repeats the price it reserved at, not a price Put since", async () => {
    const { ask, deliver, sent } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 250 });
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]), "evt-1");
    await ask("apple", "Put", { available: 8, priceCents: 300 });
    // The first StockReserved may still be on its way: whichever of the two the order takes, it pays 250.
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]), "evt-2");
    const answers = (await sent()).filter((message) => message.type === "StockReserved");
    expect(answers.map((message) => message.data)).toEqual([
      { orderId: "o1", sku: "apple", quantity: 2, unitPriceCents: 250 },
      { orderId: "o1", sku: "apple", quantity: 2, unitPriceCents: 250 },
    ]);
    // A new order reserves at the new price.
    await deliver("apple", "OrderPlaced", placed("o2", [{ sku: "apple", quantity: 1 }]), "evt-3");
    expect((await sent()).find((message) => message.type === "StockReserved")?.data).toMatchObject({
      unitPriceCents: 300,
    });
  });

  test("short stock, or a sku never set, answers StockRejected and reserves nothing", async () => {
    const { ask, deliver, sent, state, record, expectBalanced } = boot();
    await ask("apple", "Put", { available: 2, priceCents: 250 });
    await sent();
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 3 }]));
    await deliver("ghost", "OrderPlaced", placed("o1", [{ sku: "ghost", quantity: 1 }]));
    expect((await sent()).map((message) => [message.target, message.type, message.data])).toEqual([
      ["order/o1", "StockRejected", { orderId: "o1", sku: "apple", quantity: 3, available: 2 }],
      ["order/o1", "StockRejected", { orderId: "o1", sku: "ghost", quantity: 1, available: 0 }],
    ]);
    expect(state("apple")).toMatchObject({ available: 2, reserved: 0 });
    expect(record("apple", "o1")).toEqual({ stage: "refused", quantity: 3 });
    // A later restock does not let a redelivery of the refused order reserve after all.
    await deliver("apple", "Restock", { sku: "apple", quantity: 5 });
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 3 }]));
    expect(state("apple")).toMatchObject({ available: 7, reserved: 0, stocked: 7 });
    expect(record("apple", "o1")).toEqual({ stage: "refused", quantity: 3 });
    expectBalanced("apple", ["o1"]);
  });

  test("a redelivered OrderPlaced reserves once; the same order under a new id (its nudge) gets the same answer again", async () => {
    const { ask, deliver, sent, state, expectBalanced } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await sent();
    const event = placed("o1", [{ sku: "apple", quantity: 4 }]);
    expect((await deliver("apple", "OrderPlaced", event, "evt-1")).duplicate).toBe(false);
    expect((await deliver("apple", "OrderPlaced", event, "evt-1")).duplicate).toBe(true);
    expect((await deliver("apple", "OrderPlaced", event, "evt-2")).duplicate).toBe(false);
    const answers = (await sent()).filter((message) => message.type === "StockReserved");
    expect(answers.map((message) => message.data)).toEqual([
      { orderId: "o1", sku: "apple", quantity: 4, unitPriceCents: 100 },
      { orderId: "o1", sku: "apple", quantity: 4, unitPriceCents: 100 },
    ]);
    expect(state("apple")).toMatchObject({ available: 6, reserved: 4 });
    expectBalanced("apple", ["o1"]);
    // A refusal is answered again the same way; an order that has moved on (sold) gets no answer.
    await ask("pear", "Put", { available: 1, priceCents: 100 });
    await deliver("pear", "OrderPlaced", placed("o2", [{ sku: "pear", quantity: 3 }]), "evt-3");
    await deliver("pear", "OrderPlaced", placed("o2", [{ sku: "pear", quantity: 3 }]), "evt-4");
    const refusals = (await sent()).filter((message) => message.type !== "StockChanged");
    expect(refusals.map((message) => message.type)).toEqual(["StockRejected", "StockRejected"]);
    await deliver("apple", "OrderConfirmed", confirmed("o1", "apple", 4));
    await deliver("apple", "OrderPlaced", event, "evt-5");
    expect((await sent()).filter((message) => message.type !== "StockChanged")).toEqual([]);
    expect(state("apple")).toMatchObject({ available: 6, reserved: 0, sold: 4 });
  });

  test("confirm sells the reservation; cancelling the confirmed order returns the units, each once", async () => {
    const { ask, deliver, state, record, expectBalanced } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 4 }]));
    for (const id of ["c-1", "c-1", "c-2"])
      await deliver("apple", "OrderConfirmed", confirmed("o1", "apple", 4), id);
    expect(state("apple")).toMatchObject({ available: 6, reserved: 0, sold: 4 });
    expect(record("apple", "o1")).toEqual({ stage: "sold", quantity: 4 });
    expectBalanced("apple", ["o1"]);

    for (const id of ["x-1", "x-1", "x-2"])
      await deliver("apple", "OrderCancelled", cancelled("o1", ["apple"], true), id);
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0 });
    expect(record("apple", "o1")).toEqual({ stage: "returned", quantity: 4 });
    // Neither a late confirm nor a late placement touches a returned order.
    await deliver("apple", "OrderConfirmed", confirmed("o1", "apple", 4));
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 4 }]));
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0, stocked: 10 });
    expect(record("apple", "o1")).toEqual({ stage: "returned", quantity: 4 });
    expectBalanced("apple", ["o1"]);
  });

  test("rejection and an unconfirmed cancel release the reservation once", async () => {
    const { ask, deliver, state, record, expectBalanced } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]));
    await deliver("apple", "OrderPlaced", placed("o2", [{ sku: "apple", quantity: 3 }]));
    expect(state("apple")).toMatchObject({ available: 5, reserved: 5 });
    for (const id of ["r-1", "r-1", "r-2"])
      await deliver("apple", "OrderRejected", rejected("o1", ["apple", "pear"]), id);
    for (const id of ["k-1", "k-1", "k-2"])
      await deliver("apple", "OrderCancelled", cancelled("o2", ["apple"], false), id);
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0 });
    expect([record("apple", "o1"), record("apple", "o2")]).toEqual([
      { stage: "released", quantity: 2 },
      { stage: "released", quantity: 3 },
    ]);
    // The same orders placed again (a redelivery under a new id) reserve nothing.
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]));
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0 });
    expectBalanced("apple", ["o1", "o2"]);
  });

  test("a rejection that overtakes its placement leaves a tombstone, so the placement reserves nothing", async () => {
    const { ask, deliver, sent, state, record } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await sent();
    await deliver("apple", "OrderRejected", rejected("o1", ["apple"]));
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]));
    expect(await sent()).toEqual([]);
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0 });
    expect(record("apple", "o1")).toEqual({ stage: "released", quantity: 0 });
  });

  test("restock adds to available and stocked; a sku never priced keeps the units but sells nothing", async () => {
    const { ask, deliver, sent, state, expectBalanced } = boot();
    await ask("apple", "Put", { available: 1, priceCents: 100 });
    await deliver("apple", "Restock", { sku: "apple", quantity: 5, source: "supplier" }, "wh-1");
    await deliver("apple", "Restock", { sku: "apple", quantity: 5, source: "supplier" }, "wh-1");
    expect(state("apple")).toMatchObject({ available: 6, stocked: 6, version: 2 });

    await deliver("kiwi", "Restock", { sku: "kiwi", quantity: 3 });
    expect(state("kiwi")).toMatchObject({ exists: false, available: 3, stocked: 3 });
    const unlisted = (await ask("kiwi", "Get").catch((error) => error)) as EdgewiseError;
    expect(unlisted.code).toBe("not_found");
    expect(unlisted.message).toBe("sku kiwi was never set; 3 restocked units wait for a PUT with its price");
    await sent();
    await deliver("kiwi", "OrderPlaced", placed("o1", [{ sku: "kiwi", quantity: 1 }]));
    expect((await sent()).map((message) => message.type)).toEqual(["StockRejected"]);
    await ask("kiwi", "Put", { available: 8, priceCents: 50 });
    expect(state("kiwi")).toMatchObject({ exists: true, available: 8, stocked: 8 });
    expectBalanced("kiwi", ["o1"]);
  });

  test("OrderCancelled goes by what this sku sold, whatever wasConfirmed says", async () => {
    const { ask, deliver, state, record, expectBalanced } = boot();
    await ask("apple", "Put", { available: 10, priceCents: 100 });
    await deliver("apple", "OrderPlaced", placed("o1", [{ sku: "apple", quantity: 2 }]));
    await deliver("apple", "OrderPlaced", placed("o2", [{ sku: "apple", quantity: 3 }]));
    await deliver("apple", "OrderConfirmed", confirmed("o2", "apple", 3));
    // o1's confirm has not reached this sku yet: its cancel only releases. o2 was sold here: its units return.
    await deliver("apple", "OrderCancelled", cancelled("o1", ["apple"], true));
    await deliver("apple", "OrderCancelled", cancelled("o2", ["apple"], false));
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0 });
    expect([record("apple", "o1"), record("apple", "o2")]).toEqual([
      { stage: "released", quantity: 2 },
      { stage: "returned", quantity: 3 },
    ]);
    // The late confirm of the released order sells nothing.
    await deliver("apple", "OrderConfirmed", confirmed("o1", "apple", 2));
    expect(state("apple")).toMatchObject({ available: 10, reserved: 0, sold: 0 });
    expectBalanced("apple", ["o1", "o2"]);
  });

  test("state stays the same size however many orders went through the sku", async () => {
    const { ask, deliver, state, record, expectBalanced } = boot();
    await ask("apple", "Put", { available: 1_000_000, priceCents: 100 });
    const orderIds: string[] = [];
    let sizeAt100 = 0;
    for (let n = 0; n < 500; n++) {
      const orderId = `o${n}`;
      orderIds.push(orderId);
      await deliver("apple", "OrderPlaced", placed(orderId, [{ sku: "apple", quantity: 1 }]));
      if (n % 10 === 0) await deliver("apple", "OrderRejected", rejected(orderId, ["apple"]));
      else await deliver("apple", "OrderConfirmed", confirmed(orderId, "apple", 1));
      if (n === 99) sizeAt100 = JSON.stringify(state("apple")).length;
    }
    const stock = state("apple");
    expect(Object.keys(stock).sort()).toEqual(
      ["available", "exists", "priceCents", "reserved", "sold", "stocked", "version"].sort(),
    );
    // Only the counters' digits may differ.
    expect(JSON.stringify(stock).length).toBeLessThanOrEqual(sizeAt100 + 2);
    expect(stock).toMatchObject({ available: 1_000_000 - 450, reserved: 0, sold: 450 });
    expect([record("apple", "o0"), record("apple", "o499")]).toEqual([
      { stage: "released", quantity: 1 },
      { stage: "sold", quantity: 1 },
    ]);
    expectBalanced("apple", orderIds);
  });

  test("version 1 state migrates: its per-order records keep working, and move to kv", async () => {
    const { host, ask, deliver, sent, state, record, expectBalanced } = boot();
    const refused = Array.from({ length: 600 }, (_, n) => `c${n}`);
    await host.store.storageFor("inventory/apple").commit({
      version: 1,
      state: {
        exists: true,
        available: 10,
        reserved: 3,
        sold: 4,
        priceCents: 100,
        stocked: 17,
        version: 9,
        reservations: { r1: 3 },
        sales: { s1: 4 },
        closed: { ...Object.fromEntries(refused.map((orderId) => [orderId, "refused"])), x1: "returned" },
      },
      outbox: [],
      timersAdded: [],
      timersRemoved: [],
      kv: [],
    });
    expect(await ask("apple", "Get")).toMatchObject({ available: 10, reserved: 3, sold: 4, version: 9 });
    const migrated = host.inspect({ type: "inventory", key: "apple" });
    expect(migrated.version).toBe(2);
    expect(migrated.state).not.toHaveProperty("reservations");
    expect(Object.keys(state("apple").legacy ?? {})).toHaveLength(603);
    expect(state("apple").legacy).toMatchObject({
      r1: { stage: "reserved", quantity: 3 },
      s1: { stage: "sold", quantity: 4 },
      c599: { stage: "refused", quantity: 0 },
      x1: { stage: "returned", quantity: 0 },
    });
    await sent();

    // A refused order still in `legacy` (each turn moves 256 records) does not reserve on a redelivery: it is
    // refused again.
    await deliver("apple", "OrderPlaced", placed("c599", [{ sku: "apple", quantity: 1 }]));
    expect((await sent()).map((message) => message.type)).toEqual(["StockRejected"]);
    expect(Object.keys(state("apple").legacy ?? {})).toHaveLength(603 - 256);
    expect(record("apple", "c0")).toEqual({ stage: "refused", quantity: 0 });
    expect(record("apple", "c599")).toBeUndefined();
    // The version-1 reservation sells; the version-1 sale returns; a returned order never reserves again.
    await deliver("apple", "OrderConfirmed", confirmed("r1", "apple", 3));
    await deliver("apple", "OrderCancelled", cancelled("s1", ["apple"], true));
    await deliver("apple", "OrderPlaced", placed("x1", [{ sku: "apple", quantity: 1 }]));
    expect(state("apple")).toEqual({
      exists: true,
      available: 14,
      reserved: 0,
      sold: 3,
      priceCents: 100,
      stocked: 17,
      version: 11,
    });
    expect([record("apple", "r1"), record("apple", "s1"), record("apple", "c599")]).toEqual([
      { stage: "sold", quantity: 3 },
      { stage: "returned", quantity: 4 },
      { stage: "refused", quantity: 0 },
    ]);
    expectBalanced("apple", ["r1", "s1", "x1", ...refused]);
  });
});
