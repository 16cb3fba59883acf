// The cache consumer: events advance their keys, so the gateway's cachedRead never serves a read older than an event.
import { describe, expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import { upstashRestRedis } from "../../../edge/middleware/rate-limit/upstash.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { ReadCacheConsumer } from "./cache-consumer.ts";
import { cachedRead, inventoryCacheKey, orderCacheKey } from "./read-cache.ts";
import { MemoryReadCache } from "./read-cache-memory.ts";
import { RedisReadCache } from "./read-cache-redis.ts";
import { event } from "./testing.ts";

const target = "cache/reads";
const stockChanged = (version: number, available: number) =>
  event(
    "StockChanged",
    { sku: "SKU-1", version, available, reserved: 0, sold: 0, priceCents: 100 },
    { target },
  );

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    return error instanceof EdgewiseError ? String(error.code) : `not an EdgewiseError: ${error}`;
  }
  return "no error";
}

describe("ReadCacheConsumer", () => {
  test("StockChanged advances inventory:{sku}: the next read loads the new levels", async () => {
    const cache = new MemoryReadCache();
    const consumer = new ReadCacheConsumer(cache);
    let current = { version: 1, value: { sku: "SKU-1", available: 5 } };
    const load = async () => current;
    const key = inventoryCacheKey("SKU-1");
    expect((await cachedRead(cache, key, load)).hit).toBe(false);
    expect((await cachedRead(cache, key, load)).hit).toBe(true);

    current = { version: 2, value: { sku: "SKU-1", available: 4 } };
    expect(await consumer.receive(stockChanged(2, 4))).toEqual({
      duplicate: false,
      reply: { key: "inventory:SKU-1", version: 2 },
    });
    expect(await cachedRead(cache, key, load)).toEqual({ ...current, hit: false });
    // A redelivered or late event changes nothing.
    await consumer.receive(stockChanged(2, 4));
    await consumer.receive(stockChanged(1, 5));
    expect(await cachedRead(cache, key, load)).toEqual({ ...current, hit: true });
  });

  test("order events advance order:{orderId}; pending orders are never cached", async () => {
    const cache = new MemoryReadCache();
    const consumer = new ReadCacheConsumer(cache);
    const key = orderCacheKey("o-1");
    let order = { version: 3, value: { orderId: "o-1", status: "pending" } };
    const load = async () => order;
    const options = { cacheable: (value: { status: string }) => value.status !== "pending" };
    await cachedRead(cache, key, load, options);
    expect(await cache.get(key)).toBeUndefined();

    order = { version: 5, value: { orderId: "o-1", status: "confirmed" } };
    await cachedRead(cache, key, load, options);
    expect((await cache.get(key))?.version).toBe(5);

    await consumer.receive(
      event(
        "OrderCancelled",
        { orderId: "o-1", version: 6, customerId: "c", skus: ["S"], wasConfirmed: true, totalCents: 1 },
        { target },
      ),
    );
    expect(await cache.get(key)).toBeUndefined();
    // A read that loaded before the cancel and fills after it is refused.
    await cache.fill(key, 5, order.value, 60);
    expect(await cache.get(key)).toBeUndefined();
  });

  test("unknown types and invalid data are refused as poison (not retried)", async () => {
    const consumer = new ReadCacheConsumer(new MemoryReadCache());
    expect(await codeOf(consumer.receive(event("PaymentCaptured", {}, { target })))).toBe(
      "message.unknown_type",
    );
    expect(await codeOf(consumer.receive(event("StockChanged", { sku: "S" }, { target })))).toBe(
      "message.invalid",
    );
    expect(await codeOf(consumer.receive(event("OrderPlaced", { orderId: "o" }, { target })))).toBe(
      "message.invalid",
    );
  });

  test("Redis down: the delivery fails with unavailable (503), so the queue retries it", async () => {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    const port = server.port;
    server.stop(true);
    const cache = new RedisReadCache(upstashRestRedis(Redis, `http://127.0.0.1:${port}`, "token"));
    const consumer = new ReadCacheConsumer(cache);
    await expect(consumer.receive(stockChanged(3, 1))).rejects.toMatchObject({
      code: "unavailable",
      status: 503,
    });
  });
});
