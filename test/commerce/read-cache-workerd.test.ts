// The read cache on workerd: an invalidation that failed while Redis was away is applied by the isolate's next request.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type RedisBridge, startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { TcpForwarder } from "../rate-limit/forwarder.ts";
import { cleanup, direct, openDirect, TEST_REDIS_URL, text } from "../redis-bridge/helpers.ts";
import { eventually, uniqueName } from "./client.ts";
import { type CommerceWorker, startCommerceWorker } from "./workerd-node.ts";

const prefix = `${uniqueName("rc-workerd")}:`;
const target = new URL(TEST_REDIS_URL);
/** Between the REST bridge and Redis: cut and restored on its port, the bridge (and its script aliases) kept. */
const forwarder = new TcpForwarder({ hostname: target.hostname, port: Number(target.port || 6379) });
let bridge: RedisBridge | undefined;
let running: CommerceWorker | undefined;

beforeAll(async () => {
  forwarder.start();
  bridge = await startRedisBridge({
    port: 0,
    redisUrl: `redis://127.0.0.1:${forwarder.port}`,
    token: `test-${crypto.randomUUID()}`,
  });
  // The broker at its real backoff: its first retry of the failed StockChanged comes 12 s on, after this test.
  running = await startCommerceWorker(
    "read_cache_cf",
    { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token, REDIS_KEY_PREFIX: prefix },
    [],
    1,
  );
}, 60_000);

afterAll(async () => {
  await running?.stop();
  await bridge?.stop();
  forwarder.stop();
  const redis = await openDirect();
  await cleanup(redis, prefix);
  redis.close();
});

test("a failed advance is applied by the next request of the isolate, whatever it reads, once Redis is back", async () => {
  const api = (running as CommerceWorker).client;
  const sku = uniqueName("mug");
  await api.putSku(sku, 5, 100);
  await eventually(async () => {
    const read = await api.call("GET", `/v1/inventory/${sku}`);
    return read.headers.get("x-cache") === "hit" && read.body.available === 5;
  }, "stock 5 cached");
  const valueKey = `${prefix}read:{inventory:${sku}}`;
  const redis = await openDirect();
  try {
    const stored = async () => text(await direct(redis, "GET", valueKey));
    expect(await stored()).toStartWith("1:");

    forwarder.stop();
    // Its read-your-writes advance fails, and so does StockChanged's delivery (the broker retries it in 12 s).
    expect(
      (await api.call("PUT", `/v1/inventory/${sku}`, { body: { available: 7, priceCents: 100 } })).status,
    ).toBe(200);
    forwarder.start();
    // The advance's retry timer was set in a request that has ended: workerd never runs it. Before, v1 stayed
    // stored (7 s measured, until the broker's retry) for every isolate that reads it; this isolate alone applied it
    // before its own next read of that key. Now any request of the isolate applies it.
    await Bun.sleep(1_500);
    expect((await api.call("GET", `/v1/inventory/${uniqueName("other")}`)).status).toBe(404);
    await eventually(async () => (await stored()) === null, "the stale stock dropped", 3_000);
    const read = await api.call("GET", `/v1/inventory/${sku}`);
    expect(read.body.available).toBe(7);
  } finally {
    redis.close();
  }
}, 40_000);
