// Redis losing its scripts (SCRIPT FLUSH, a restart, a failover): the `redis` breaker stays closed, limits hold.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import { ReadCacheConsumer } from "../actors/commerce/projections/cache-consumer.ts";
import { cachedRead, inventoryCacheKey } from "../actors/commerce/projections/read-cache.ts";
import { RedisReadCache } from "../actors/commerce/projections/read-cache-redis.ts";
import { event } from "../actors/commerce/projections/testing.ts";
import { configuredLimiter } from "../edge/middleware/rate-limit/configured.ts";
import { guardedRedis } from "../edge/middleware/rate-limit/guarded-redis.ts";
import { tcpRedis } from "../edge/middleware/rate-limit/redis-tcp-bun.ts";
import { TcpForwarder } from "../test/rate-limit/forwarder.ts";
import { type RatelimitRedis, upstashRestRedis } from "../edge/middleware/rate-limit/upstash.ts";
import { parseRedisUrl, RespConnection } from "./local/redis-bridge/connection.ts";
import { startRedisBridge } from "./local/redis-bridge/index.ts";
import { direct, uniquePrefix } from "../test/redis-bridge/helpers.ts";
import { restartablePort } from "../test/support/ports.ts";
import { Dependencies, redisIsFailure } from "../shared/resilience/index.ts";
import { nodeDependencyPolicies } from "./node-dependencies.ts";

const prefix = uniquePrefix("noscript");
/**
 * A real Redis of this file's own: SCRIPT FLUSH empties the script cache of the whole server, so on the shared test
 * Redis it would make another test file's EVALSHA, run meanwhile right after its EVAL or SCRIPT LOAD, meet NOSCRIPT.
 */
const port = restartablePort();
const redisUrl = `redis://127.0.0.1:${port}`;
let redisServer: ReturnType<typeof Bun.spawn> | undefined;
let raw: RespConnection;
const closers: Array<() => void | Promise<void>> = [];
beforeAll(async () => {
  redisServer = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdout: "ignore", stderr: "ignore" },
  );
  for (let tries = 0; ; tries++) {
    const connection = await RespConnection.open(parseRedisUrl(redisUrl)).catch(() => undefined);
    if (connection) {
      raw = connection;
      break;
    }
    if (tries > 100) throw new Error("redis-server did not start");
    await Bun.sleep(50);
  }
});
afterAll(async () => {
  for (const close of closers) await close();
  raw?.close();
  redisServer?.kill();
  await redisServer?.exited;
});

/** What a Redis restart (`--save ""`), a failover or an operator does to every client's loaded scripts. */
async function flushScripts(): Promise<void> {
  expect(await direct(raw, "SCRIPT", "FLUSH")).toEqual(expect.objectContaining({ text: "OK" }));
}

const links: Array<[string, () => Promise<RatelimitRedis>]> = [
  [
    "TCP (REDIS_URL)",
    async () => {
      const client = tcpRedis({ url: redisUrl });
      closers.push(() => client.close());
      return client;
    },
  ],
  [
    "REST bridge (UPSTASH_REDIS_REST_URL)",
    async () => {
      const bridge = await startRedisBridge({ port: 0, redisUrl, token: `noscript-token-${port}` });
      closers.push(() => bridge.stop());
      return upstashRestRedis(Redis, bridge.url, bridge.token);
    },
  ],
];

describe.each(links)("the redis breaker after SCRIPT FLUSH, %s", (name, open) => {
  test("requests at once are limited by Redis, the breaker stays closed, the read cache and its consumer work", async () => {
    const keys = `${prefix}${name.split(" ")[0]}:`;
    const dependencies = new Dependencies({ policies: nodeDependencyPolicies });
    const redis = guardedRedis(await open(), dependencies);
    const failures: unknown[] = [];
    // `closed`: a request that Redis did not decide is refused (503), never admitted by a local count.
    const limiter = configuredLimiter({
      rate: { limit: 5, windowMs: 60_000 },
      onRedisFailure: "closed",
      redis,
      prefix: `${keys}rl`,
      report: (error) => failures.push(error),
    });
    const cache = new RedisReadCache(redis, { prefix: `${keys}read:`, cooldownMs: 100 });
    closers.push(() => cache.close());
    const consumer = new ReadCacheConsumer(cache);
    const key = inventoryCacheKey("SKU-NOSCRIPT");
    let current = { version: 1, value: { sku: "SKU-NOSCRIPT", available: 5 } };
    const load = async () => current;

    // Scripts loaded, as on a node that has served for a while.
    expect((await limiter.limit("warm")).success).toBe(true);
    await cachedRead(cache, key, load);
    expect((await cachedRead(cache, key, load)).hit).toBe(true);

    await flushScripts();

    // A burst, as a node under load sends at once: every EVALSHA meets NOSCRIPT before an EVAL reloads the script.
    const decisions = await Promise.allSettled(Array.from({ length: 12 }, () => limiter.limit("burst")));
    expect(failures).toEqual([]);
    expect(decisions.filter((d) => d.status === "rejected")).toEqual([]);
    const admitted = decisions.filter((d) => d.status === "fulfilled" && d.value.success).length;
    expect(admitted).toBe(5);
    expect(dependencies.state("redis")).toBe("closed");

    // Flushed again, then one request at a time: each still decided by Redis.
    await flushScripts();
    for (let i = 0; i < 3; i++) expect((await limiter.limit(`one-${i}`)).success).toBe(true);
    expect(failures).toEqual([]);

    // The read cache: a StockChanged delivery advances the key, and the next read fills it again.
    current = { version: 2, value: { sku: "SKU-NOSCRIPT", available: 4 } };
    const stockChanged = event(
      "StockChanged",
      { sku: "SKU-NOSCRIPT", version: 2, available: 4, reserved: 0, sold: 0, priceCents: 100 },
      { target: "cache/reads" },
    );
    expect(await consumer.receive(stockChanged)).toEqual({
      duplicate: false,
      reply: { key, version: 2 },
    });
    expect(await cachedRead(cache, key, load)).toEqual({ ...current, hit: false });
    expect(await cachedRead(cache, key, load)).toEqual({ ...current, hit: true });
    expect(cache.stats().errors).toBe(0);
    expect(dependencies.state("redis")).toBe("closed");
  });
});

/** The error a call gave, or undefined. */
async function errorOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe.each(links)("what the redis breaker counts, %s", (_name, open) => {
  test("Redis's error replies do not count; Redis unreachable does", async () => {
    const client = await open();
    const sha = "0".repeat(40);
    const noscript = await errorOf(() => client.evalsha(sha, [], []));
    expect(String(noscript)).toContain("NOSCRIPT");
    expect(redisIsFailure(noscript)).toBe(false);
    expect(await direct(raw, "SET", `${prefix}string`, "text")).toEqual(
      expect.objectContaining({ text: "OK" }),
    );
    const wrongTypeNow = await errorOf(() =>
      client.eval("return redis.call('HGET', KEYS[1], 'f')", [`${prefix}string`], []),
    );
    expect(String(wrongTypeNow)).toContain("WRONGTYPE");
    expect(redisIsFailure(wrongTypeNow)).toBe(false);
    const scriptError = await errorOf(() => client.eval("return redis.call('NOSUCHCOMMAND')", [], []));
    expect(String(scriptError)).toContain("ERR");
    expect(redisIsFailure(scriptError)).toBe(false);
  });
});

test("Redis unreachable counts, over TCP and through the bridge", async () => {
  // A port nothing listens on: taken, then freed.
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const deadUrl = `redis://127.0.0.1:${listener.port}`;
  listener.stop(true);
  const tcp = tcpRedis({ url: deadUrl, connectTimeoutMs: 300 });
  closers.push(() => tcp.close());
  const tcpError = await errorOf(() => tcp.evalsha("0".repeat(40), [], []));
  expect(tcpError).toBeDefined();
  expect(redisIsFailure(tcpError)).toBe(true);

  // The bridge reaches Redis through a forwarder, cut once the bridge has started.
  const forwarder = new TcpForwarder({ hostname: "127.0.0.1", port });
  forwarder.start();
  const bridge = await startRedisBridge({
    port: 0,
    redisUrl: `redis://127.0.0.1:${forwarder.port}`,
    token: "noscript-dead-redis-token",
  });
  closers.push(() => bridge.stop());
  forwarder.stop();
  const rest = upstashRestRedis(Redis, bridge.url, bridge.token);
  const restError = await errorOf(() => rest.evalsha("0".repeat(40), [], []));
  expect(String(restError)).toContain("redis-bridge");
  expect(redisIsFailure(restError)).toBe(true);
});
