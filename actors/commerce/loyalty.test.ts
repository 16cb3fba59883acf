// The loyalty actor on a real local host: points per confirmed order, taken back on cancel, each exactly once.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { LocalActorHost } from "../hosts/local/host.ts";
import { openBunSqlite } from "../hosts/local/sqlite-bun.ts";
import { SubscriptionRegistry } from "../runtime/index.ts";
import { type LoyaltyState, loyaltyActor, loyaltySubscriptions, pointsFor } from "./loyalty.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

function boot() {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-loyalty-"));
  const host = new LocalActorHost({
    actors: [loyaltyActor],
    db: openBunSqlite(join(dir, "actors.db")),
    onBackgroundError: () => {},
  });
  cleanups.push(async () => {
    await host.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const deliver = (type: string, data: Record<string, unknown>, id?: string) =>
    host.receive(
      createEnvelope({
        type,
        data: { version: 1, customerId: "alice", ...data },
        source: "edgewise://actor/order/test",
        target: "loyalty/alice",
        ...(id ? { id } : {}),
      }),
    );
  const confirm = (orderId: string, totalCents: number, id?: string) =>
    deliver(
      "OrderConfirmed",
      { orderId, items: [{ sku: "apple", quantity: 1, unitPriceCents: totalCents }], totalCents },
      id,
    );
  const cancel = (orderId: string, wasConfirmed: boolean, id?: string) =>
    deliver("OrderCancelled", { orderId, skus: ["apple"], wasConfirmed, totalCents: 0 }, id);
  const points = async () =>
    (
      (await host.ask({ type: "loyalty", key: "alice" }, "Get", {})).reply as {
        customerId: string;
        points: number;
      }
    ).points;
  const state = () => host.inspect({ type: "loyalty", key: "alice" }).state as LoyaltyState;
  return { host, confirm, cancel, points, state };
}

describe("loyalty actor", () => {
  test("a confirmed order credits floor(totalCents / 100) points", async () => {
    expect([pointsFor(0), pointsFor(99), pointsFor(100), pointsFor(12_345)]).toEqual([0, 0, 1, 123]);
    const { host, confirm, points } = boot();
    expect(await host.ask({ type: "loyalty", key: "alice" }, "Get", {})).toMatchObject({
      reply: { customerId: "alice", points: 0 },
    });
    await confirm("o1", 1_999);
    await confirm("o2", 250);
    expect(await points()).toBe(21);
  });

  test("a credit applies once: the same envelope twice, or the same order under a new id", async () => {
    const { confirm, points } = boot();
    expect((await confirm("o1", 5_000, "e-1")).duplicate).toBe(false);
    expect((await confirm("o1", 5_000, "e-1")).duplicate).toBe(true);
    await confirm("o1", 5_000, "e-2");
    expect(await points()).toBe(50);
  });

  test("cancelling a confirmed order takes back exactly what it earned, once", async () => {
    const { confirm, cancel, points, state } = boot();
    await confirm("o1", 5_000);
    await confirm("o2", 700);
    for (const id of ["x-1", "x-1", "x-2"]) await cancel("o1", true, id);
    expect(await points()).toBe(7);
    expect(state().byOrder).toEqual({
      o1: { earned: 50, takenBack: true },
      o2: { earned: 7, takenBack: false },
    });
    // A confirm redelivered after the cancel does not credit again.
    await confirm("o1", 5_000);
    expect(await points()).toBe(7);
  });

  test("an unconfirmed cancel changes nothing; a cancel that overtakes its confirm blocks the credit", async () => {
    const { confirm, cancel, points } = boot();
    await cancel("o1", false);
    await cancel("o2", true);
    await confirm("o2", 9_900);
    expect(await points()).toBe(0);
  });

  test("subscriptions: confirmations go to the customer; only confirmed cancellations do", () => {
    const registry = new SubscriptionRegistry(loyaltySubscriptions);
    const event = (type: string, data: unknown) => createEnvelope({ type, data, source: "edgewise://test" });
    expect(registry.targets(event("OrderConfirmed", { customerId: "bob" }))).toEqual([
      { type: "loyalty", key: "bob" },
    ]);
    expect(registry.targets(event("OrderCancelled", { customerId: "bob", wasConfirmed: true }))).toEqual([
      { type: "loyalty", key: "bob" },
    ]);
    expect(registry.targets(event("OrderCancelled", { customerId: "bob", wasConfirmed: false }))).toEqual([]);
    expect(registry.targets(event("OrderPlaced", { customerId: "bob" }))).toEqual([]);
  });
});
