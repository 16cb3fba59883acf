// Webhooks and the read cache end to end on the Bun host: signed deliveries, retries to the DLQ (SSRF and inbound: test/security).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { type Delivery, startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { eventually, expectOk, uniqueName } from "./client.ts";

let running: CommerceNode;
beforeAll(async () => {
  running = await startCommerceNode("commerce_webhooks", {
    // Two retries: with the broker's time scale of 0.01 a dead letter takes about 2 s instead of hours.
    EDGEWISE_DELIVERY_RETRIES: "2",
  });
}, 30_000);
afterAll(() => running?.stop());

async function confirmedOrder(node: CommerceNode) {
  const api = node.client;
  const [sku, customer] = [uniqueName("hook-sku"), uniqueName("hook-cust")];
  await api.putSku(sku, 5, 400);
  await api.putAccount(customer, 10_000);
  const placed = await api.place(customer, [{ sku, quantity: 1 }]);
  return api.settle(placed.body.orderId);
}

describe("outbound webhooks", () => {
  test("order.confirmed arrives signed, and verifies with the standardwebhooks package", async () => {
    const deliveries: Delivery[] = [];
    const receiver = startReceiver();
    try {
      const created = await running.client.call<{ id: string; secret: string; events: string[] }>(
        "POST",
        "/v1/webhooks/subscriptions",
        { body: { url: receiver.url("/hooks"), events: ["order.confirmed"] } },
      );
      expect(created.status).toBe(201);
      expect(created.body.secret).toMatch(/^whsec_/);
      const order = await confirmedOrder(running);
      await eventually(() => {
        deliveries.splice(0, deliveries.length, ...receiver.deliveries);
        return deliveries.some((d) => d.body.includes(order.orderId));
      }, "the webhook");
      const delivery = deliveries.find((d) => d.body.includes(order.orderId)) as Delivery;
      const payload = new Webhook(created.body.secret).verify(delivery.body, {
        "webhook-id": delivery.headers["webhook-id"] ?? "",
        "webhook-timestamp": delivery.headers["webhook-timestamp"] ?? "",
        "webhook-signature": delivery.headers["webhook-signature"] ?? "",
      }) as { type: string; data: { orderId: string } };
      expect(payload.type).toBe("order.confirmed");
      expect(payload.data.orderId).toBe(order.orderId);
      // Tampering breaks it.
      expect(() =>
        new Webhook(created.body.secret).verify(delivery.body.replace(order.orderId, "someone-else"), {
          "webhook-id": delivery.headers["webhook-id"] ?? "",
          "webhook-timestamp": delivery.headers["webhook-timestamp"] ?? "",
          "webhook-signature": delivery.headers["webhook-signature"] ?? "",
        }),
      ).toThrow();
      expect(
        (await running.client.call("DELETE", `/v1/webhooks/subscriptions/${created.body.id}`)).status,
      ).toBe(204);
    } finally {
      receiver.stop();
    }
  }, 30_000);

  test("a receiver that is down gets retries, then the delivery is dead-lettered", async () => {
    const receiver = startReceiver(() => new Response("down for maintenance", { status: 503 }));
    try {
      const created = expectOk(
        await running.client.call<{ id: string }>("POST", "/v1/webhooks/subscriptions", {
          body: { url: receiver.url("/down"), events: ["order.confirmed"] },
        }),
      );
      await confirmedOrder(running);
      const broker = running.node;
      await eventually(
        async () => {
          const response = await fetch(`${broker.brokerUrl}/v2/dlq`, {
            headers: { authorization: `Bearer ${broker.broker?.token}` },
          });
          const { messages } = (await response.json()) as { messages: Array<{ url: string }> };
          return messages.some((message) => message.url.endsWith(`/webhooks/${created.id}`));
        },
        "the dead letter",
        20_000,
      );
      // The first attempt and both retries reached the receiver.
      expect(receiver.deliveries.length).toBe(3);
      await running.client.call("DELETE", `/v1/webhooks/subscriptions/${created.id}`);
    } finally {
      receiver.stop();
    }
  }, 30_000);
});

describe("managing a subscription", () => {
  test("list and show it without the secret, rotate the secret with an overlap, read the attempts", async () => {
    const receiver = startReceiver();
    const api = running.client;
    try {
      const created = expectOk(
        await api.call<{ id: string; secret: string }>("POST", "/v1/webhooks/subscriptions", {
          body: { url: receiver.url("/managed"), events: ["order.confirmed"] },
        }),
      );
      const shown = await api.call<Record<string, unknown>>(
        "GET",
        `/v1/webhooks/subscriptions/${created.id}`,
      );
      expect(shown.status).toBe(200);
      expect(shown.body).toMatchObject({
        id: created.id,
        url: receiver.url("/managed"),
        events: ["order.confirmed"],
        previousSecretExpiresAt: null,
      });
      const listed = await api.call<{ items: Array<{ id: string }> }>(
        "GET",
        "/v1/webhooks/subscriptions?limit=100",
      );
      expect(listed.body.items.map((item) => item.id)).toContain(created.id);
      expect(JSON.stringify([shown.body, listed.body])).not.toContain("whsec_");

      // A POST with no body at all takes the default overlap (a day).
      const rotated = await api.call<{ secret: string; previousSecretExpiresAt: string }>(
        "POST",
        `/v1/webhooks/subscriptions/${created.id}/rotate-secret`,
      );
      expect(rotated.status).toBe(200);
      expect(rotated.body.secret).toMatch(/^whsec_/);
      const overlapEnds = Date.parse(rotated.body.previousSecretExpiresAt) - Date.now();
      expect(overlapEnds).toBeGreaterThan(86_000_000);
      expect(overlapEnds).toBeLessThanOrEqual(86_400_000);

      const order = await confirmedOrder(running);
      await eventually(() => receiver.deliveries.some((d) => d.body.includes(order.orderId)), "the webhook");
      const delivery = receiver.deliveries.find((d) => d.body.includes(order.orderId)) as Delivery;
      // The receiver may verify with either secret while it switches over.
      for (const secret of [created.secret, rotated.body.secret]) {
        expect(new Webhook(secret).verify(delivery.body, delivery.headers)).toMatchObject({
          type: "order.confirmed",
        });
      }

      // The node records the attempt once the receiver's answer is back, after the receiver saw the delivery:
      // read the attempts once there is one, not at once.
      const readAttempts = () =>
        api.call<{ items: Array<Record<string, unknown>>; nextCursor: string | null }>(
          "GET",
          `/v1/webhooks/subscriptions/${created.id}/attempts`,
        );
      await eventually(
        async () => ((await readAttempts()).body.items ?? []).length > 0,
        "the attempt's record",
      );
      const attempts = await readAttempts();
      expect(attempts.status).toBe(200);
      expect(attempts.body.items[0]).toMatchObject({
        eventId: delivery.headers["webhook-id"],
        attempt: 1,
        outcome: "delivered",
        statusCode: 200,
        error: null,
      });

      expect((await api.call("DELETE", `/v1/webhooks/subscriptions/${created.id}`)).status).toBe(204);
      expect((await api.call("GET", `/v1/webhooks/subscriptions/${created.id}`)).status).toBe(404);
      // Deleting it again is 204 too, as revoking an API key again is (test/auth/api-keys): a client retrying a
      // DELETE whose answer it lost sees success, not an error.
      expect((await api.call("DELETE", `/v1/webhooks/subscriptions/${created.id}`)).status).toBe(204);
      expect(
        (await api.call("POST", `/v1/webhooks/subscriptions/${created.id}/rotate-secret`, { body: {} }))
          .status,
      ).toBe(404);
      // The attempts stay readable: they tell why deliveries stopped.
      expect((await api.call("GET", `/v1/webhooks/subscriptions/${created.id}/attempts`)).status).toBe(200);
    } finally {
      receiver.stop();
    }
  }, 30_000);
});

describe("read cache", () => {
  test("hits and misses are told apart, and an update's event ends any stale read", async () => {
    const api = running.client;
    const sku = uniqueName("cached");
    await api.putSku(sku, 3, 100);
    // Wait for the PUT's own StockChanged, then read twice: a miss that fills, then a hit.
    await Bun.sleep(200);
    const first = await api.call("GET", `/v1/inventory/${sku}`);
    const second = await api.call("GET", `/v1/inventory/${sku}`);
    expect(first.headers.get("x-cache")).toBe("miss");
    expect(second.headers.get("x-cache")).toBe("hit");
    expect(second.body).toEqual(first.body);

    await api.putSku(sku, 9, 100);
    // Once StockChanged is delivered the cache never serves the old stock again.
    await eventually(async () => (await api.sku(sku)).available === 9, "the new stock to be read");
    for (let i = 0; i < 5; i++) expect((await api.sku(sku)).available).toBe(9);

    // Orders: cached only once settled.
    const order = await confirmedOrder(running);
    const reads = [];
    for (let i = 0; i < 3; i++)
      reads.push((await api.call("GET", `/v1/orders/${order.orderId}`)).headers.get("x-cache"));
    expect(reads.slice(-1)).toEqual(["hit"]);
    expect((await api.cancel(order.orderId)).status).toBe(202);
    await eventually(
      async () => (await api.order(order.orderId)).status === "cancelled",
      "the cancelled order to be read",
    );
  }, 30_000);

  test("a write through the gateway is read back at once, not after its event (read-your-writes)", async () => {
    const api = running.client;
    const sku = uniqueName("ryw");
    await api.putSku(sku, 3, 100);
    await Bun.sleep(200);
    await api.sku(sku);
    expect((await api.call("GET", `/v1/inventory/${sku}`)).headers.get("x-cache")).toBe("hit");
    // The PUT answers 200 with the new stock: the next read must not serve the cached old one.
    await api.putSku(sku, 9, 250);
    expect(await api.sku(sku)).toMatchObject({ available: 9, priceCents: 250 });

    const order = await confirmedOrder(running);
    await api.order(order.orderId);
    expect((await api.call("GET", `/v1/orders/${order.orderId}`)).headers.get("x-cache")).toBe("hit");
    // The cancel answers 202 "cancelled": the next read must not serve the cached "confirmed".
    expect((await api.cancel(order.orderId)).body).toMatchObject({ status: "cancelled" });
    expect((await api.order(order.orderId)).status).toBe("cancelled");
  }, 30_000);
});
