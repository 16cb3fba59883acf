// An invalidation that failed while Redis was away: once Redis is back, the value it dropped is not served again.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import { type RedisBridge, startRedisBridge } from "../../../deploy/local/redis-bridge/index.ts";
import type { RespConnection } from "../../../deploy/local/redis-bridge/connection.ts";
import { tcpRedis } from "../../../edge/middleware/rate-limit/redis-tcp-bun.ts";
import { upstashRestRedis } from "../../../edge/middleware/rate-limit/upstash.ts";
import { TcpForwarder } from "../../../test/rate-limit/forwarder.ts";
import { cleanup, openDirect, startTestBridge, uniquePrefix } from "../../../test/redis-bridge/helpers.ts";
import { cachedRead } from "./read-cache.ts";
import { RedisReadCache } from "./read-cache-redis.ts";
import { TEST_REDIS_URL } from "./testing.ts";

const prefix = uniquePrefix("readcache-outage");
let raw: RespConnection;
const closers: Array<() => void | Promise<void>> = [];
beforeAll(async () => {
  raw = await openDirect();
});
afterAll(async () => {
  for (const close of closers) await close();
  await cleanup(raw, prefix);
  raw.close();
});

/** A node's way to Redis that the test can cut and restore (same address), and another node's, never cut. */
interface Link {
  cache: RedisReadCache;
  cut(): Promise<void>;
  restore(): Promise<void>;
  other: RedisReadCache;
}

// The cut refuses connections, so its failures come at once; 2 s (not 300 ms) keeps a loaded machine's slow but
// working Redis call from being one.
const options = (keys: string) => ({ prefix: keys, cooldownMs: 100, timeoutMs: 2_000 });

const links: Array<[string, (keys: string) => Promise<Link>]> = [
  [
    "TCP (tcpRedis), Redis going away and coming back",
    async (keys) => {
      const target = new URL(TEST_REDIS_URL);
      const forwarder = new TcpForwarder({ hostname: target.hostname, port: Number(target.port || 6379) });
      forwarder.start();
      const client = tcpRedis({ url: `redis://127.0.0.1:${forwarder.port}`, reconnectBackoffMs: 50 });
      const otherClient = tcpRedis({ url: TEST_REDIS_URL });
      const cache = new RedisReadCache(client, options(keys));
      const other = new RedisReadCache(otherClient, options(keys));
      closers.push(() => {
        cache.close();
        client.close();
        otherClient.close();
        forwarder.stop();
      });
      return {
        cache,
        other,
        cut: async () => forwarder.stop(),
        restore: async () => forwarder.start(),
      };
    },
  ],
  [
    "REST (@upstash/redis), the bridge closed and started again on its port",
    async (keys) => {
      let bridge: RedisBridge = await startTestBridge();
      const { port, url, token } = bridge;
      const other = new RedisReadCache(upstashRestRedis(Redis, url, token), options(keys));
      const cache = new RedisReadCache(upstashRestRedis(Redis, url, token), options(keys));
      closers.push(async () => {
        cache.close();
        await bridge.stop();
      });
      return {
        cache,
        other,
        cut: () => bridge.stop(),
        restore: async () => {
          bridge = await startRedisBridge({ port, redisUrl: TEST_REDIS_URL, token });
        },
      };
    },
  ],
];

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await check()) return performance.now() - started;
    await Bun.sleep(20);
  }
  return Number.POSITIVE_INFINITY;
}

describe.each(links)("%s", (_name, connect) => {
  test("the advance is applied once Redis answers: v1 is not served again, on this node or another", async () => {
    const link = await connect(`${prefix}${crypto.randomUUID()}:`);
    const key = "inventory:mug";
    const old = { sku: "mug", available: 5 };
    await link.cache.fill(key, 1, old, 60);
    expect(await link.other.get(key)).toEqual({ version: 1, value: old });

    await link.cut();
    // StockChanged v2's delivery (or the PUT's read-your-writes advance) fails: the queue will retry it, 12 s on.
    await expect(link.cache.advance(key, 2)).rejects.toMatchObject({ code: "unavailable", status: 503 });
    expect(link.cache.pendingAdvances()).toBe(1);
    // Meanwhile reads go to the actor.
    const fresh = { sku: "mug", available: 7 };
    const read = await cachedRead(link.cache, key, async () => ({ version: 2, value: fresh }));
    expect(read).toEqual({ version: 2, value: fresh, hit: false });

    await link.restore();
    // Another node, whose Redis never failed, stops serving v1 once this node's retry reaches Redis (cooldown 100 ms).
    const gone = await until(async () => (await link.other.get(key)) === undefined, 10_000);
    expect(gone).toBeLessThan(10_000);
    // This node: v1 is never served again; the next read loads v2 and fills it.
    await Bun.sleep(150);
    const after = await cachedRead(link.cache, key, async () => ({ version: 2, value: fresh }));
    expect(after).toEqual({ version: 2, value: fresh, hit: false });
    expect(await link.other.get(key)).toEqual({ version: 2, value: fresh });
    expect(link.cache.pendingAdvances()).toBe(0);
  });

  test("the failing node never serves v3 again once Redis is back, and an older fill is refused", async () => {
    const link = await connect(`${prefix}${crypto.randomUUID()}:`);
    const key = "order:o-1";
    await link.cache.fill(key, 3, { status: "confirmed" }, 60);
    await link.cut();
    await expect(link.cache.advance(key, 4)).rejects.toMatchObject({ code: "unavailable" });
    await link.restore();
    // The first read that reaches Redis (past the cooldown and the reconnect) finds nothing to serve.
    let served: unknown;
    const deadline = performance.now() + 10_000;
    while (performance.now() < deadline) {
      try {
        served = await link.cache.get(key);
        break;
      } catch {
        await Bun.sleep(10); // still cooling down, or reconnecting
      }
    }
    expect(served).toBeUndefined();
    // An older fill (a load that raced with the change) is refused as before.
    await link.cache.fill(key, 3, { status: "confirmed" }, 60);
    expect(await link.other.get(key)).toBeUndefined();
  });
});

test("the failed advances kept are bounded: past the bound the oldest is forgotten", async () => {
  const forwarder = new TcpForwarder({
    hostname: "127.0.0.1",
    port: Number(new URL(TEST_REDIS_URL).port || 6379),
  });
  forwarder.start();
  forwarder.stop();
  const client = tcpRedis({ url: `redis://127.0.0.1:${forwarder.port}` });
  const cache = new RedisReadCache(client, {
    prefix: `${prefix}bounded:`,
    maxPendingAdvances: 3,
    timeoutMs: 200,
  });
  closers.push(() => {
    cache.close();
    client.close();
  });
  for (const id of ["a", "b", "c", "d"]) await expect(cache.advance(`order:${id}`, 2)).rejects.toThrow();
  await expect(cache.advance("order:b", 5)).rejects.toThrow();
  expect(cache.pendingAdvances()).toBe(3);
});
