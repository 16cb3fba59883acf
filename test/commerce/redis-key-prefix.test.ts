// Two deployments on one Redis, each with its own REDIS_KEY_PREFIX: neither is answered from the other's read cache.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TEST_REDIS_URL } from "../../actors/commerce/projections/testing.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { cleanup, openDirect } from "../redis-bridge/helpers.ts";
import { type CommerceNode, startCommerceNode } from "./bun-node.ts";
import { eventually, uniqueName } from "./client.ts";

const run = uniqueName("keys");
let staging: CommerceNode;
let production: CommerceNode;

beforeAll(async () => {
  staging = await startCommerceNode("key_prefix_a", {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: `${run}-staging:`,
  });
  production = await startCommerceNode("key_prefix_b", {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: `${run}-production:`,
  });
}, 60_000);

afterAll(async () => {
  await production?.stop();
  await staging?.stop();
  const redis = await openDirect();
  await cleanup(redis, `${run}-`);
  redis.close();
});

test("a sku and an order of one deployment are not read from the other's cache", async () => {
  const sku = `${run}-mug`;
  const customer = `${run}-ada`;
  await staging.client.putSku(sku, 5, 250);
  await staging.client.putAccount(customer, 10_000);
  const asAda = { sub: customer, scopes: ["orders:read", "orders:write"] };
  // The same caller and Idempotency-Key give the same order id in every deployment.
  const placed = await staging.client.call<{ orderId: string }>("POST", "/v1/orders", {
    body: { customerId: customer, items: [{ sku, quantity: 1 }] },
    headers: { "idempotency-key": `${run}-k1` },
    as: asAda,
  });
  expect(placed.status).toBe(202);
  const { orderId } = placed.body;
  await staging.client.settle(orderId);
  // Cached in staging: a hit there (once the stock's last StockChanged has advanced its key).
  await eventually(async () => {
    const read = await staging.client.call("GET", `/v1/inventory/${sku}`);
    return read.headers.get("x-cache") === "hit" && read.body.available === 4;
  }, "the sku cached in staging");
  const cachedOrder = await staging.client.call("GET", `/v1/orders/${orderId}`, { as: asAda });
  expect([cachedOrder.status, cachedOrder.headers.get("x-cache")]).toEqual([200, "hit"]);

  // Production never set the sku nor placed the order: 404, not staging's cached answers.
  const sku2 = await production.client.call("GET", `/v1/inventory/${sku}`);
  expect([sku2.status, sku2.body.code]).toEqual([404, "not_found"]);
  const order2 = await production.client.call("GET", `/v1/orders/${orderId}`, { as: asAda });
  expect([order2.status, order2.body.code]).toEqual([404, "not_found"]);
  // And what production sets is its own, while staging still answers its own.
  await production.client.putSku(sku, 9, 100);
  expect((await production.client.sku(sku)).available).toBe(9);
  expect((await production.client.sku(sku)).available).toBe(9);
  expect((await staging.client.sku(sku)).available).toBe(4);
}, 60_000);

test("REDIS_KEY_PREFIX takes no glob or hash-tag characters, and defaults to the keys of earlier versions", () => {
  expect(parseConfig({}).REDIS_KEY_PREFIX).toBe("edgewise:");
  expect(parseConfig({ REDIS_KEY_PREFIX: "" }).REDIS_KEY_PREFIX).toBe("edgewise:"); // empty is unset, as elsewhere
  for (const bad of ["a*", "a{b}", "a b", "x".repeat(65)])
    expect(() => parseConfig({ REDIS_KEY_PREFIX: bad })).toThrow("REDIS_KEY_PREFIX");
});
