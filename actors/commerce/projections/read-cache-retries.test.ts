// Failed read-cache advances are retried a bounded number at a time: on Workers each is a subrequest of some request.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import type { RedisBridge } from "../../../deploy/local/redis-bridge/index.ts";
import type { RespConnection } from "../../../deploy/local/redis-bridge/connection.ts";
import { ManualClock } from "../../../shared/clock/index.ts";
import { upstashRestRedis } from "../../../edge/middleware/rate-limit/upstash.ts";
import { cleanup, openDirect, startTestBridge, uniquePrefix } from "../../../test/redis-bridge/helpers.ts";
import { RedisReadCache, retriesPerRequest, type ScriptRedis } from "./read-cache-redis.ts";

const prefix = uniquePrefix("readcache-retries");
/** External subrequests a Worker invocation may make on the Workers Free plan. */
const freePlanSubrequests = 50;
let raw: RespConnection;
let bridge: RedisBridge;

beforeAll(async () => {
  raw = await openDirect();
  bridge = await startTestBridge();
});
afterAll(async () => {
  await bridge.stop();
  await cleanup(raw, prefix);
  raw.close();
});

/** Upstash Redis over REST, as a Worker reaches it (each call one HTTP request), counted, and cut at will. */
function link() {
  const rest = upstashRestRedis(Redis, bridge.url, bridge.token);
  const state = { down: false, calls: 0 };
  const redis: ScriptRedis = {
    eval: async (script, keys, args) => {
      if (state.down) throw new Error("fetch failed: Redis unreachable");
      state.calls++;
      return rest.eval(script, keys, args);
    },
  };
  return { redis, state };
}

test("after an outage, each request's retry applies at most 16 failed advances; none is served stale meanwhile", async () => {
  const { redis, state } = link();
  const clock = new ManualClock();
  // The Worker's settings; a cooldown long enough that the retry timer never fires during the test.
  const cache = new RedisReadCache(redis, {
    prefix: `${prefix}${crypto.randomUUID()}:`,
    cooldownMs: 60_000,
    clock,
    retriesPerDrain: retriesPerRequest,
  });
  const keys = Array.from({ length: 200 }, (_, i) => `inventory:sku-${i}`);
  for (const key of keys) await cache.fill(key, 1, { available: 1 }, 60);

  // Redis away while 200 StockChanged events are delivered: each advance fails and is remembered.
  state.down = true;
  for (const key of keys) await expect(cache.advance(key, 2)).rejects.toMatchObject({ code: "unavailable" });
  expect(cache.pendingAdvances()).toBe(keys.length);
  state.down = false;
  clock.advance(61_000);

  // Each request's background retry (`retryPending`, in its waitUntil) stays well within a Free plan request's 50.
  state.calls = 0;
  await cache.retryPending();
  expect(state.calls).toBeLessThanOrEqual(retriesPerRequest);
  expect(retriesPerRequest).toBeLessThan(freePlanSubrequests / 2);
  expect(cache.pendingAdvances()).toBe(keys.length - retriesPerRequest);

  // A key whose advance is still waiting is never served at version 1: a read applies it first.
  const last = keys.at(-1) as string;
  expect(await cache.get(last)).toBeUndefined();

  // Later requests apply the rest, a bounded number each.
  let requests = 1;
  while (cache.pendingAdvances() > 0 && requests < 100) {
    state.calls = 0;
    await cache.retryPending();
    expect(state.calls).toBeLessThanOrEqual(retriesPerRequest);
    requests++;
  }
  expect(cache.pendingAdvances()).toBe(0);
  expect(requests).toBe(Math.ceil((keys.length - 1) / retriesPerRequest));
  // What users rely on: no sku's version 1 is served after the outage.
  for (const key of keys) expect(await cache.get(key)).toBeUndefined();
  cache.close();
});
