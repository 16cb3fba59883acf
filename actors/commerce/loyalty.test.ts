// The loyalty actor on a real local host: points per confirmed order, taken back on cancel, each exactly once.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { LocalActorHost } from "../hosts/local/host.ts";
import { openBunSqlite } from "../hosts/local/sqlite-bun.ts";
import { SubscriptionRegistry } from "../runtime/index.ts";
import {
  type LoyaltyState,
  loyaltyActor,
  loyaltySubscriptions,
  type OrderPoints,
  pointsFor,
} from "./loyalty.ts";

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
  /** An order's committed entry (kv), or undefined. */
  const entry = (orderId: string) =>
    host.store.kvGet("loyalty/alice", `order:${orderId}`) as OrderPoints | undefined;
  return { host, confirm, cancel, points, state, entry };
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
    const { confirm, cancel, points, entry } = boot();
    await confirm("o1", 5_000);
    await confirm("o2", 700);
    for (const id of ["x-1", "x-1", "x-2"]) await cancel("o1", true, id);
    expect(await points()).toBe(7);
    expect([entry("o1"), entry("o2")]).toEqual([
      { earned: 50, takenBack: true },
      { earned: 7, takenBack: false },
    ]);
    // A confirm redelivered after the cancel does not credit again.
    await confirm("o1", 5_000);
    expect(await points()).toBe(7);
  });

  test("an unconfirmed cancel changes nothing; a cancel that overtakes its confirm blocks the credit", async () => {
    const { confirm, cancel, points, entry } = boot();
    await cancel("o1", false);
    await cancel("o2", true);
    await confirm("o2", 9_900);
    expect(await points()).toBe(0);
    expect([entry("o1"), entry("o2")]).toEqual([undefined, { earned: 0, takenBack: true }]);
  });

  test("state stays the same size however many orders the customer confirmed", async () => {
    const { confirm, cancel, points, state, entry } = boot();
    for (let n = 0; n < 500; n++) {
      await confirm(`o${n}`, 100);
      if (n % 10 === 0) await cancel(`o${n}`, true);
    }
    expect(await points()).toBe(450);
    expect(state()).toEqual({ points: 450 });
    expect([entry("o0"), entry("o499")]).toEqual([
      { earned: 1, takenBack: true },
      { earned: 1, takenBack: false },
    ]);
  });

  test("version 1 state migrates: its per-order entries keep working, and move to kv", async () => {
    const { host, confirm, cancel, points, state, entry } = boot();
    const earlier = Array.from({ length: 300 }, (_, n) => `e${n}`);
    await host.store.storageFor("loyalty/alice").commit({
      version: 1,
      state: {
        points: 357,
        byOrder: {
          ...Object.fromEntries(earlier.map((orderId) => [orderId, { earned: 1, takenBack: false }])),
          o1: { earned: 50, takenBack: false },
          o2: { earned: 7, takenBack: false },
          o3: { earned: 0, takenBack: true },
        },
      },
      outbox: [],
      timersAdded: [],
      timersRemoved: [],
      kv: [],
    });
    expect(await points()).toBe(357);
    expect(host.inspect({ type: "loyalty", key: "alice" }).version).toBe(2);
    expect(Object.keys(state().legacy ?? {})).toHaveLength(303);

    // o1 is past the first 256 moved: taken back from `legacy`; o3's tombstone still blocks its credit.
    await cancel("o1", true);
    // That turn moved 256 entries to kv, and o1's own, rewritten.
    expect(Object.keys(state().legacy ?? {})).toHaveLength(303 - 256 - 1);
    await confirm("o3", 10_000);
    await confirm("o2", 700);
    await cancel("o1", true, "again");
    expect(await points()).toBe(307);
    expect(state()).toEqual({ points: 307 });
    expect([entry("e0"), entry("o1"), entry("o2"), entry("o3")]).toEqual([
      { earned: 1, takenBack: false },
      { earned: 50, takenBack: true },
      { earned: 7, takenBack: false },
      { earned: 0, takenBack: true },
    ]);
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
