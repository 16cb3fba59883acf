// Reads of order ids and skus never used answer as their actors would, without activating one on the local host.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { inventoryActor } from "../../../actors/commerce/inventory.ts";
import { orderActor } from "../../../actors/commerce/order.ts";
import { RedisReadCache } from "../../../actors/commerce/projections/read-cache-redis.ts";
import { LocalActorHost } from "../../../actors/hosts/local/host.ts";
import { openBunSqlite } from "../../../actors/hosts/local/sqlite-bun.ts";
import type { ActorHost } from "../../../actors/runtime/index.ts";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import {
  cleanup,
  direct,
  openDirect,
  TEST_REDIS_URL,
  text,
  uniquePrefix,
} from "../../../test/redis-bridge/helpers.ts";
import { routeCache } from "../../commerce.ts";
import type { GatewayEnv } from "../../env.ts";
import { errorHandler } from "../../errors.ts";
import { tcpRedis } from "../../middleware/rate-limit/redis-tcp-bun.ts";
import { inventoryRoutes } from "./inventory.ts";
import { orderRoutes } from "./orders.ts";

const dir = mkdtempSync(join(tmpdir(), "edgewise-unknown-ids-"));
const host = new LocalActorHost({
  actors: [orderActor, inventoryActor],
  db: openBunSqlite(join(dir, "actors.db")),
  onBackgroundError: () => {},
});
const redis = tcpRedis({ url: TEST_REDIS_URL });
const raw = await openDirect();
const prefix = uniquePrefix("unknown-ids");
afterAll(async () => {
  await host.stop();
  await cleanup(raw, prefix);
  raw.close();
  redis.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The gateway's order and inventory routes on `actors`, each app with its own Redis read cache. */
function gateway(actors: ActorHost, name: string): Hono<GatewayEnv> {
  const cache = routeCache(new RedisReadCache(redis, { prefix: `${prefix}${name}:` }));
  const app = new Hono<GatewayEnv>();
  app.onError(errorHandler());
  app.use(async (c, next) => {
    const scopes = new Set(["orders:read", "orders:write", "inventory:read"]);
    c.set("principal", { sub: c.req.header("x-test-sub") ?? "alice", scopes, via: "jwt" });
    await next();
  });
  // The list endpoint is not under test: no route here reads the read model.
  const readModel = { listOrders: () => Promise.reject(new Error("not used by these tests")) };
  app.route("/", orderRoutes({ actors, readModel, cache }));
  app.route("/", inventoryRoutes({ actors, cache }));
  return app;
}

const told = gateway(host, "told");
// The same host as one that cannot tell (as Durable Objects, or an actor host that predates `onlyIfState`): it
// drops the option, so every read asks the actor.
const asked = gateway(
  {
    ask: (address, type, data, { onlyIfState: _ignored, ...options } = {}) =>
      host.ask(address, type, data, options),
    receive: (envelope) => host.receive(envelope),
  },
  "asked",
);

/** Everything a client sees of an answer. */
async function answer(app: Hono<GatewayEnv>, method: "GET" | "POST", path: string, sub = "alice") {
  const reply = await app.request(path, { method, headers: { "x-test-sub": sub } });
  return {
    status: reply.status,
    contentType: reply.headers.get("content-type"),
    xCache: reply.headers.get("x-cache"),
    body: await reply.text(),
  };
}

const resident = (type: string) => host.stats().byType.find((entry) => entry.type === type)?.active ?? 0;

/** Keys under this file's prefix whose name holds `part`: what the read cache stored for it. */
async function cachedKeys(part: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const reply = await direct(raw, "SCAN", cursor, "MATCH", `${prefix}*${part}*`, "COUNT", "1000");
    const [next, keys] = reply as [Uint8Array, Uint8Array[]];
    cursor = text(next) ?? "0";
    for (const key of keys) found.push(text(key) ?? "");
  } while (cursor !== "0");
  return found;
}

test("GETs and cancels of order ids never placed answer 404 as the order actor does, and activate no order", async () => {
  await host.ask({ type: orderActor.type, key: "known" }, "Place", {
    customerId: "alice",
    items: [{ sku: "mug", quantity: 1 }],
  });
  const ids = Array.from({ length: 50 }, (_, n) => `never-${n}`);
  const requests = ids.flatMap((id) => [
    ["GET", `/v1/orders/${id}`, "alice"] as const,
    // Object-level authorization leaks no more than before: another caller also gets the 404, not a 403.
    ["POST", `/v1/orders/${id}/cancel`, "bob"] as const,
  ]);

  const before = resident("order");
  const toldAnswers = [];
  for (const [method, path, sub] of requests) toldAnswers.push(await answer(told, method, path, sub));
  expect(resident("order")).toBe(before);

  const askedAnswers = [];
  for (const [method, path, sub] of requests) askedAnswers.push(await answer(asked, method, path, sub));
  // The comparison did ask: each unknown id's order was loaded to answer it.
  expect(resident("order")).toBe(before + ids.length);
  expect(toldAnswers).toEqual(askedAnswers);
  expect(toldAnswers[0]).toEqual({
    status: 404,
    contentType: "application/problem+json",
    xCache: null,
    body: JSON.stringify({
      type: "https://edgewise.dev/problems/not_found",
      title: "Not found",
      status: 404,
      detail: "order never-0 does not exist",
      code: "not_found",
      instance: "/v1/orders/never-0",
    }),
  });
  expect(await cachedKeys("never-")).toEqual([]);

  // A placed order answers as before: its owner reads it, another caller gets 403, its owner cancels it.
  const known: Array<readonly ["GET" | "POST", string, string]> = [
    ["GET", "/v1/orders/known", "alice"],
    ["GET", "/v1/orders/known", "bob"],
    ["POST", "/v1/orders/known/cancel", "bob"],
    ["POST", "/v1/orders/known/cancel", "alice"],
  ];
  for (const [method, path, sub] of known) {
    expect(await answer(told, method, path, sub)).toEqual(await answer(asked, method, path, sub));
  }
  expect((await answer(told, "GET", "/v1/orders/known")).status).toBe(200);
  expect((await answer(told, "GET", "/v1/orders/known", "bob")).status).toBe(403);
  expect(JSON.parse((await answer(told, "POST", "/v1/orders/known/cancel")).body)).toEqual({
    orderId: "known",
    status: "pending",
  });
}, 30_000);

test("GETs of skus never set answer 404 as the inventory actor does, and activate no sku; set and restocked skus answer as before", async () => {
  await host.ask({ type: inventoryActor.type, key: "set" }, "Put", { available: 5, priceCents: 100 });
  // Restocked but never set: it has state, so it is asked, and names the units waiting for a price.
  await host.receive(
    createEnvelope({
      type: "Restock",
      data: { sku: "restocked", quantity: 3 },
      source: "edgewise://test",
      target: `${inventoryActor.type}/restocked`,
    }),
  );
  const paths = Array.from({ length: 50 }, (_, n) => `/v1/inventory/never-${n}`);

  const before = resident(inventoryActor.type);
  const toldAnswers = [];
  for (const path of paths) toldAnswers.push(await answer(told, "GET", path));
  expect(resident(inventoryActor.type)).toBe(before);

  const askedAnswers = [];
  for (const path of paths) askedAnswers.push(await answer(asked, "GET", path));
  expect(resident(inventoryActor.type)).toBe(before + paths.length);
  expect(toldAnswers).toEqual(askedAnswers);
  expect(JSON.parse(toldAnswers[0]?.body ?? "")).toMatchObject({
    status: 404,
    code: "not_found",
    detail: "sku never-0 was never set",
  });
  expect(await cachedKeys("never-")).toEqual([]);

  const restocked = await answer(told, "GET", "/v1/inventory/restocked");
  expect(restocked).toEqual(await answer(asked, "GET", "/v1/inventory/restocked"));
  expect(JSON.parse(restocked.body)).toMatchObject({
    status: 404,
    detail: "sku restocked was never set; 3 restocked units wait for a PUT with its price",
  });
  // A set sku is read and cached as before: a miss, then a hit.
  const first = await answer(told, "GET", "/v1/inventory/set");
  expect(first).toEqual(await answer(asked, "GET", "/v1/inventory/set"));
  expect(first).toMatchObject({ status: 200, xCache: "miss" });
  expect(await answer(told, "GET", "/v1/inventory/set")).toEqual({ ...first, xCache: "hit" });
}, 30_000);
