// The inventory routes in process: the sku view a client reads carries `sold`, so available + reserved + sold adds up.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { inventoryActor } from "../../../actors/commerce/inventory.ts";
import { LocalActorHost } from "../../../actors/hosts/local/host.ts";
import { openBunSqlite } from "../../../actors/hosts/local/sqlite-bun.ts";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import { RecordingTransport } from "../../../test/support/memory-transport.ts";
import { type AdminEvent, adminEvents } from "../../audit/admin-events.ts";
import type { GatewayEnv } from "../../env.ts";
import { errorHandler } from "../../errors.ts";
import { inventoryRoutes } from "./inventory.ts";

const dir = mkdtempSync(join(tmpdir(), "edgewise-inventory-routes-"));
const host = new LocalActorHost({
  actors: [inventoryActor],
  db: openBunSqlite(join(dir, "actors.db")),
  transport: new RecordingTransport(),
  onBackgroundError: () => {},
});
afterAll(async () => {
  await host.stop();
  rmSync(dir, { recursive: true, force: true });
});

const app = new Hono<GatewayEnv>();
app.onError(errorHandler());
app.use(async (c, next) => {
  c.set("principal", { sub: "ops", scopes: new Set(["admin"]), via: "jwt" });
  await next();
});
/** What the activity log was given to write (the real AdminEvents; its write is where Postgres would be). */
const recorded: AdminEvent[] = [];
app.route(
  "/",
  inventoryRoutes({
    actors: host,
    adminEvents: adminEvents({ write: async (event) => recorded.push(event) }),
  }),
);

const deliver = (type: string, data: unknown) =>
  host.receive(createEnvelope({ type, data, source: "edgewise://test", target: "inventory/mug" }));

test("PUT and GET answer { sku, available, reserved, sold, priceCents }, sold counting confirmed units", async () => {
  const put = await app.request("/v1/inventory/mug", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ available: 10, priceCents: 250 }),
  });
  expect(await put.json()).toEqual({ sku: "mug", available: 10, reserved: 0, sold: 0, priceCents: 250 });
  const line = { sku: "mug", quantity: 3 };
  await deliver("OrderPlaced", {
    orderId: "o-1",
    version: 1,
    customerId: "c-1",
    items: [line],
    placedAt: new Date().toISOString(),
  });
  await deliver("OrderConfirmed", {
    orderId: "o-1",
    version: 3,
    customerId: "c-1",
    items: [{ ...line, unitPriceCents: 250 }],
    totalCents: 750,
  });
  const get = await app.request("/v1/inventory/mug");
  expect(await get.json()).toEqual({ sku: "mug", available: 7, reserved: 0, sold: 3, priceCents: 250 });
});

test("admin.inventory_set of a sku a restock gave units before any PUT says the units it held, and no price", async () => {
  await host.receive(
    createEnvelope({
      type: "Restock",
      data: { sku: "jug", quantity: 7 },
      source: "edgewise://test",
      target: "inventory/jug",
    }),
  );
  const put = (available: number, priceCents: number) =>
    app.request("/v1/inventory/jug", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ available, priceCents }),
    });
  expect((await put(3, 120)).status).toBe(200);
  expect((await put(4, 130)).status).toBe(200);
  const changes = recorded.filter((event) => event.target.sku === "jug").map((event) => event.change);
  // Before, the first said priceCentsBefore: 0, as if the sku had been free: it had no price.
  expect(changes).toStrictEqual([
    { availableBefore: 7, availableAfter: 3, priceCentsAfter: 120 },
    { availableBefore: 3, priceCentsBefore: 120, availableAfter: 4, priceCentsAfter: 130 },
  ]);
});
