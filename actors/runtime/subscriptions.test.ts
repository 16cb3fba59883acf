// Subscriptions: fan-out per subscribed actor, and a bad key selector held back in the relay, not dropped.
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { relayOnce } from "./relay.ts";
import type { OutboxRecord, OutboxStore } from "./storage.ts";
import { SubscriptionRegistry, subscribe } from "./subscriptions.ts";

const orderPlaced = (items: Array<{ sku: string }>) =>
  createEnvelope({
    type: "OrderPlaced",
    source: "edgewise://actor/order/o1",
    data: { orderId: "o1", items },
  });

const registry = new SubscriptionRegistry([
  subscribe<{ items: Array<{ sku: string }> }>({
    event: "OrderPlaced",
    actor: "inventory",
    keys: (data) => data.items.map((item) => item.sku),
  }),
  subscribe<{ orderId: string }>({ event: "OrderPlaced", actor: "audit", keys: (data) => data.orderId }),
]);

describe("subscriptions", () => {
  test("an event fans out once per subscribed actor, keeping its id; duplicate keys collapse", () => {
    const event = orderPlaced([{ sku: "a" }, { sku: "b" }, { sku: "a" }]);
    const deliveries = registry.expand([event]);
    expect(deliveries.map((delivery) => delivery.target)).toEqual(["inventory/a", "inventory/b", "audit/o1"]);
    expect(new Set(deliveries.map((delivery) => delivery.id))).toEqual(new Set([event.id]));
  });

  test("commands keep their target; events nobody subscribes to produce no delivery", () => {
    const command = createEnvelope({ type: "Reserve", source: "s", data: {}, target: "inventory/x" });
    const unheard = createEnvelope({ type: "Nobody", source: "s", data: {} });
    expect(registry.expand([command, unheard])).toEqual([command]);
  });

  test("the same actor subscribing twice to one event is refused", () => {
    expect(
      () =>
        new SubscriptionRegistry([
          subscribe({ event: "E", actor: "a", keys: () => "k" }),
          subscribe({ event: "E", actor: "a", keys: () => "j" }),
        ]),
    ).toThrow("subscribes to");
  });

  test("a selector that yields a bad key holds that actor's outbox back (retried) instead of dropping it", async () => {
    const rows: OutboxRecord[] = [
      { seq: 1, actor: "order/o1", envelope: orderPlaced([{ sku: "bad key" }]), attempts: 0 },
      { seq: 2, actor: "order/o2", envelope: orderPlaced([{ sku: "fine" }]), attempts: 0 },
    ];
    const failed: number[] = [];
    const outbox: OutboxStore = {
      pending: async () => rows,
      delivered: async () => {},
      failed: async (entries) => void failed.push(...entries.map((entry) => entry.seq)),
      nextDue: async () => undefined,
    };
    const sent: Envelope[] = [];
    const pass = await relayOnce(
      outbox,
      { send: async (list) => void sent.push(...list) },
      new ManualClock(),
      undefined,
      registry,
    );
    expect(failed).toEqual([1]);
    expect(pass.sent).toBe(1);
    expect(sent.map((envelope) => envelope.target)).toEqual(["inventory/fine", "audit/o1"]);
  });
});
