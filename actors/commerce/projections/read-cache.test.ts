// The ReadCache rule on all three stores (memory, Redis over TCP, Redis over the Upstash REST bridge), and failures.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import { upstashRestRedis } from "../../../edge/middleware/rate-limit/upstash.ts";
import { ManualClock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { RedisBridge } from "../../../deploy/local/redis-bridge/index.ts";
import type { RespConnection } from "../../../deploy/local/redis-bridge/connection.ts";
import {
  cleanup,
  direct,
  openDirect,
  startTestBridge,
  text,
  uniquePrefix,
} from "../../../test/redis-bridge/helpers.ts";
import { cachedRead, type ReadCache } from "./read-cache.ts";
import { MemoryReadCache } from "./read-cache-memory.ts";
import { type TcpRedisOptions, tcpRedis } from "../../../edge/middleware/rate-limit/redis-tcp-bun.ts";
import { nodeTcpRedis } from "../../../edge/middleware/rate-limit/redis-tcp-node.ts";
import { RedisReadCache, type RedisReadCacheOptions } from "./read-cache-redis.ts";

import { TEST_REDIS_URL } from "./testing.ts";
import { TcpForwarder } from "../../../test/rate-limit/forwarder.ts";

/**
 * The node's own wiring: the read cache on the same TCP client the rate limiter uses (deploy/commerce.ts): Bun's
 * (`tcpRedis`) or Deno's (`nodeTcpRedis`, ioredis).
 */
function tcpReadCache(options: TcpRedisOptions & RedisReadCacheOptions, connect = tcpRedis) {
  const client = connect(options);
  return Object.assign(new RedisReadCache(client, options), { close: () => client.close() });
}

const prefix = uniquePrefix("readcache");
let bridge: RedisBridge;
let raw: RespConnection;
const closers: Array<() => void> = [];

beforeAll(async () => {
  bridge = await startTestBridge();
  raw = await openDirect();
});
afterAll(async () => {
  for (const close of closers) close();
  await cleanup(raw, prefix);
  raw.close();
  await bridge.stop();
});

interface Store {
  cache: ReadCache;
  /** Lets `ms` pass for the store's TTLs. */
  wait(ms: number): Promise<void>;
}

let instance = 0;
const stores: Array<[string, () => Store]> = [
  [
    "memory",
    () => {
      const clock = new ManualClock();
      return { cache: new MemoryReadCache({ clock }), wait: async (ms) => clock.advance(ms) };
    },
  ],
  [
    "Redis over TCP (tcpRedis, EVAL)",
    () => {
      const cache = tcpReadCache({ url: TEST_REDIS_URL, prefix: `${prefix}tcp${++instance}:` });
      closers.push(() => cache.close());
      return { cache, wait: (ms) => Bun.sleep(ms) };
    },
  ],
  [
    "Redis over TCP on Deno (nodeTcpRedis: ioredis, EVAL)",
    () => {
      const cache = tcpReadCache(
        { url: TEST_REDIS_URL, prefix: `${prefix}ioredis${++instance}:` },
        nodeTcpRedis,
      );
      closers.push(() => cache.close());
      return { cache, wait: (ms) => Bun.sleep(ms) };
    },
  ],
  [
    "Redis over the Upstash REST bridge (@upstash/redis)",
    () => ({
      cache: new RedisReadCache(upstashRestRedis(Redis, bridge.url, bridge.token), {
        prefix: `${prefix}rest${++instance}:`,
      }),
      wait: (ms) => Bun.sleep(ms),
    }),
  ],
];

describe.each(stores)("ReadCache: %s", (_name, make) => {
  let store: Store;
  let cache: ReadCache;
  beforeAll(() => {
    store = make();
    cache = store.cache;
  });

  test("miss, fill, hit; stats count hits and misses; a hit is a copy", async () => {
    const before = cache.stats();
    expect(await cache.get("inventory:a")).toBeUndefined();
    const value = { sku: "a", available: 3, tags: ["x"] };
    await cache.fill("inventory:a", 1, value, 60);
    value.tags.push("mutated");
    const hit = await cache.get("inventory:a");
    expect(hit).toEqual({ version: 1, value: { sku: "a", available: 3, tags: ["x"] } });
    expect(cache.stats()).toEqual({ hits: before.hits + 1, misses: before.misses + 1, errors: 0 });
  });

  test("the race: load v1, advance(v2), fill(v1) is refused; fill(v2) is stored", async () => {
    const key = "order:race";
    const loadedOld = { status: "confirmed", version: 1 };
    await cache.advance(key, 2);
    await cache.fill(key, 1, loadedOld, 60);
    expect(await cache.get(key)).toBeUndefined();
    await cache.fill(key, 2, { status: "cancelled" }, 60);
    expect(await cache.get(key)).toEqual({ version: 2, value: { status: "cancelled" } });
  });

  test("advance drops an older value, keeps the same or a newer one; the floor never goes down", async () => {
    const key = "inventory:b";
    await cache.fill(key, 3, "v3", 60);
    await cache.advance(key, 3);
    expect((await cache.get(key))?.version).toBe(3);
    await cache.advance(key, 2);
    expect((await cache.get(key))?.version).toBe(3);
    await cache.advance(key, 5);
    expect(await cache.get(key)).toBeUndefined();
    await cache.advance(key, 4); // a late, redelivered event
    await cache.fill(key, 4, "v4", 60);
    expect(await cache.get(key)).toBeUndefined();
    await cache.fill(key, 5, "v5", 60);
    expect(await cache.get(key)).toEqual({ version: 5, value: "v5" });
  });

  test("fill keeps the newest: an older or equal version does not replace what is stored", async () => {
    const key = "inventory:c";
    await cache.fill(key, 7, "seven", 60);
    await cache.fill(key, 6, "six", 60);
    await cache.fill(key, 7, "seven again", 60);
    expect(await cache.get(key)).toEqual({ version: 7, value: "seven" });
    await cache.fill(key, 8, "eight", 60);
    expect(await cache.get(key)).toEqual({ version: 8, value: "eight" });
  });

  test("concurrent fills in any order: the newest version is what stays", async () => {
    const versions = Array.from({ length: 20 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    await Promise.all(versions.map((version) => cache.fill("inventory:many", version, `v${version}`, 60)));
    expect(await cache.get("inventory:many")).toEqual({ version: 20, value: "v20" });
  });

  test("a value expires after its TTL; its floor stays", async () => {
    const key = "inventory:ttl";
    await cache.fill(key, 4, "four", 0.15);
    expect((await cache.get(key))?.version).toBe(4);
    await store.wait(300);
    expect(await cache.get(key)).toBeUndefined();
    await cache.fill(key, 3, "three", 60); // older than what was once stored: the floor refuses it
    expect(await cache.get(key)).toBeUndefined();
  });

  test("keys with braces and colons stay apart", async () => {
    await cache.fill("order:a{b}", 1, "one", 60);
    await cache.fill("order:a", 1, "other", 60);
    expect((await cache.get("order:a{b}"))?.value).toBe("one");
    expect((await cache.get("order:a"))?.value).toBe("other");
  });

  test("cachedRead: load on a miss, then hits; not cacheable → not stored; load errors propagate", async () => {
    let loads = 0;
    const load = async () => {
      loads++;
      return { version: 3, value: { orderId: "o", status: "confirmed" } };
    };
    const first = await cachedRead(cache, "order:cr", load);
    const second = await cachedRead(cache, "order:cr", load);
    expect(first).toEqual({ version: 3, value: { orderId: "o", status: "confirmed" }, hit: false });
    expect(second).toEqual({ ...first, hit: true });
    expect(loads).toBe(1);

    const pending = async () => ({ version: 1, value: { status: "pending" } });
    const options = { cacheable: (order: { status: string }) => order.status !== "pending" };
    expect((await cachedRead(cache, "order:pending", pending, options)).hit).toBe(false);
    expect((await cachedRead(cache, "order:pending", pending, options)).hit).toBe(false);

    const missing = () => Promise.reject(new EdgewiseError("not_found", "no such order"));
    await expect(cachedRead(cache, "order:missing", missing)).rejects.toMatchObject({ code: "not_found" });
    expect(await cache.get("order:missing")).toBeUndefined();
  });
});

describe("Redis layout", () => {
  test("the value is `<version>:<json>` and the floor is kept with a TTL, in one hash slot", async () => {
    const keyPrefix = `${prefix}layout:`;
    const cache = tcpReadCache({ url: TEST_REDIS_URL, prefix: keyPrefix, floorTtlSeconds: 120 });
    closers.push(() => cache.close());
    await cache.fill("order:o1", 2, { a: 1 }, 30);
    expect(text(await direct(raw, "GET", `${keyPrefix}{order:o1}`))).toBe('2:{"a":1}');
    expect(text(await direct(raw, "GET", `${keyPrefix}{order:o1}:floor`))).toBe("2");
    const valueTtl = Number(await direct(raw, "PTTL", `${keyPrefix}{order:o1}`));
    const floorTtl = Number(await direct(raw, "PTTL", `${keyPrefix}{order:o1}:floor`));
    expect(valueTtl).toBeGreaterThan(25_000);
    expect(valueTtl).toBeLessThanOrEqual(30_000);
    expect(floorTtl).toBeGreaterThan(115_000);
    await cache.advance("order:o1", 9);
    expect(await direct(raw, "GET", `${keyPrefix}{order:o1}`)).toBeNull();
    expect(text(await direct(raw, "GET", `${keyPrefix}{order:o1}:floor`))).toBe("9");
  });
});

/** A port with nothing listening on it. */
function deadPort(): number {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port as number;
  server.stop(true);
  return port;
}

describe("Redis failing: reads are served from load", () => {
  const failing: Array<[string, () => ReadCache]> = [
    [
      "TCP, connection refused",
      () => {
        const cache = tcpReadCache({ url: `redis://127.0.0.1:${deadPort()}`, cooldownMs: 50 });
        closers.push(() => cache.close());
        return cache;
      },
    ],
    [
      "REST, connection refused",
      () =>
        new RedisReadCache(upstashRestRedis(Redis, `http://127.0.0.1:${deadPort()}`, "token"), {
          cooldownMs: 50,
        }),
    ],
    [
      "REST, an endpoint that never answers",
      () => {
        const hung = Bun.serve({
          port: 0,
          hostname: "127.0.0.1",
          fetch: () => new Promise<Response>(() => {}),
        });
        closers.push(() => hung.stop(true));
        return new RedisReadCache(upstashRestRedis(Redis, `http://127.0.0.1:${hung.port}`, "token"), {
          timeoutMs: 100,
          cooldownMs: 50,
        });
      },
    ],
  ];

  test.each(failing)("%s", async (_name, make) => {
    const cache = make();
    let loads = 0;
    const load = async () => ({ version: 1, value: { sku: "s", available: ++loads } });
    const started = Date.now();
    expect(await cachedRead(cache, "inventory:s", load)).toEqual({
      version: 1,
      value: { sku: "s", available: 1 },
      hit: false,
    });
    // Within the cooldown Redis is not even tried.
    expect((await cachedRead(cache, "inventory:s", load)).value).toEqual({ sku: "s", available: 2 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(cache.stats()).toEqual({ hits: 0, misses: 0, errors: 2 });
    // After it, Redis is tried again (and fails again).
    await Bun.sleep(60);
    expect((await cachedRead(cache, "inventory:s", load)).hit).toBe(false);
    expect(cache.stats().errors).toBe(3);
    // An advance is never skipped: it fails loudly, so the cache consumer's delivery is retried.
    await expect(cache.advance("inventory:s", 2)).rejects.toMatchObject({ code: "unavailable", status: 503 });
  });
});

test("a wall clock stepped back an hour after a failure does not keep Redis skipped for the hour", async () => {
  const target = new URL(TEST_REDIS_URL);
  const forwarder = new TcpForwarder({ hostname: target.hostname, port: Number(target.port || 6379) });
  forwarder.start();
  forwarder.stop(); // Redis is away
  try {
    const clock = new ManualClock();
    const cache = tcpReadCache({
      url: `redis://127.0.0.1:${forwarder.port}`,
      prefix: `${prefix}stepped:`,
      cooldownMs: 1_000,
      reconnectBackoffMs: 1_000,
      clock,
    });
    closers.push(() => cache.close());
    const load = async () => ({ version: 1, value: { sku: "s", available: 1 } });
    expect((await cachedRead(cache, "inventory:s", load)).hit).toBe(false);
    expect(cache.stats().errors).toBe(1);
    forwarder.start(); // back, on the same port
    clock.step(-3_600_000);
    clock.advance(1_000);
    await cachedRead(cache, "inventory:s", load);
    expect(cache.stats()).toEqual({ hits: 0, misses: 1, errors: 1 });
    expect((await cachedRead(cache, "inventory:s", load)).hit).toBe(true);
  } finally {
    forwarder.stop();
  }
});
