// Webhooks and the read cache end to end on the Bun host: signed deliveries, retries to the DLQ, SSRF, inbound replay.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { generateSecret } from "../../actors/commerce/webhooks/index.ts";
import { type Delivery, startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { eventually, expectOk, uniqueName } from "./client.ts";

const supplierSecret = generateSecret();
let running: CommerceNode;
let strict: CommerceNode;
beforeAll(async () => {
  [running, strict] = await Promise.all([
    startCommerceNode("commerce_webhooks", {
      INBOUND_WEBHOOK_SECRETS: `supplier=${supplierSecret}`,
      // Two retries: with the broker's time scale of 0.01 a dead letter takes about 2 s instead of hours.
      EDGEWISE_DELIVERY_RETRIES: "2",
    }),
    startCommerceNode("commerce_webhooks_strict", { WEBHOOKS_ALLOW_PRIVATE: "0" }),
  ]);
}, 30_000);
afterAll(async () => {
  await Promise.all([running?.stop(), strict?.stop()]);
});

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

  test("loopback and private targets are refused unless WEBHOOKS_ALLOW_PRIVATE=1", async () => {
    for (const url of ["http://127.0.0.1:9/x", "http://10.0.0.7/x", "http://[::1]/x", "http://localhost/x"]) {
      const refused = await strict.client.call("POST", "/v1/webhooks/subscriptions", {
        body: { url, events: ["order.confirmed"] },
      });
      expect({ url, status: refused.status }).toEqual({ url, status: 400 });
      expect(refused.headers.get("content-type")).toContain("application/problem+json");
    }
    const allowed = await running.client.call("POST", "/v1/webhooks/subscriptions", {
      body: { url: "http://127.0.0.1:9/x", events: ["order.rejected"] },
    });
    expect(allowed.status).toBe(201);
  });
});

describe("inbound webhooks", () => {
  const send = (id: string, at: Date, payload: unknown, secret = supplierSecret) => {
    const body = JSON.stringify(payload);
    return fetch(`${running.node.url}/webhooks/inbound/supplier`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
        "webhook-signature": new Webhook(secret).sign(id, at, body),
      },
      body,
    });
  };

  test("inventory.restocked adds stock once; replayed, stale and forged ones are refused or ignored, and recorded", async () => {
    const api = running.client;
    const sku = uniqueName("restock");
    await api.putSku(sku, 2, 100);
    const payload = { type: "inventory.restocked", sku, quantity: 5 };
    const id = uniqueName("msg");
    expect((await send(id, new Date(), payload)).status).toBe(202);
    await eventually(async () => (await api.sku(sku)).available === 7, "the restock");
    // The same webhook-id again (a sender's retry, or a replay): accepted, not applied twice.
    expect((await send(id, new Date(), payload)).status).toBe(202);
    // Stale (6 minutes old) and forged: 401.
    const stale = await send(uniqueName("msg"), new Date(Date.now() - 6 * 60_000), payload);
    expect(stale.status).toBe(401);
    const forged = await send(uniqueName("msg"), new Date(), payload, generateSecret());
    expect(forged.status).toBe(401);
    await Bun.sleep(300);
    expect((await api.sku(sku)).available).toBe(7);

    const refused = expectOk(
      await api.call<{ items: Array<{ data: { reason: string } }> }>(
        "GET",
        "/v1/activity?type=security.webhook_refused&limit=100",
      ),
    );
    const reasons = refused.items.map((item) => item.data.reason);
    expect(reasons).toContain("stale");
    expect(reasons).toContain("bad_signature");
    const replayed = expectOk(
      await api.call<{ items: unknown[] }>("GET", "/v1/activity?type=security.webhook_replayed&limit=100"),
    );
    expect(replayed.items.length).toBeGreaterThanOrEqual(1);
  });
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
});
