// The first start after a restore clears only its deployment's read-cache keys, over TCP and REST, and survives Redis away.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "@upstash/redis";
import type { RedisBridge } from "./local/redis-bridge/index.ts";
import { tcpRedis } from "../edge/middleware/rate-limit/redis-tcp-bun.ts";
import { nodeTcpRedis } from "../edge/middleware/rate-limit/redis-tcp-node.ts";
import { upstashRestRedis } from "../edge/middleware/rate-limit/upstash.ts";
import { captureSink, createLogger } from "../shared/telemetry/log/index.ts";
import { startClusterRedis } from "../test/support/redis-cluster-server.ts";
import { parseRedisUrl, RespConnection } from "./local/redis-bridge/connection.ts";
import {
  cleanup,
  direct,
  openDirect,
  startTestBridge,
  TEST_REDIS_URL,
  text,
  uniquePrefix,
} from "../test/redis-bridge/helpers.ts";
import { clearReadCacheAfterRestore, markRestored, restoredMarker } from "./read-cache-restored.ts";

const run = uniquePrefix("restored");
const work = mkdtempSync(join(tmpdir(), "edgewise-restored-"));
let bridge: RedisBridge;
beforeAll(async () => {
  bridge = await startTestBridge();
});
afterAll(async () => {
  await bridge?.stop();
  const redis = await openDirect();
  await cleanup(redis, run);
  redis.close();
  rmSync(work, { recursive: true, force: true });
});

const clients = {
  tcp: () => tcpRedis({ url: TEST_REDIS_URL }),
  // Deno's client (node:net), which Bun runs too.
  "node-tcp": () => nodeTcpRedis({ url: TEST_REDIS_URL }),
  rest: () => ({ ...upstashRestRedis(Redis, bridge.url, bridge.token), close() {} }),
};

for (const [name, open] of Object.entries(clients)) {
  test(`over ${name}: every key of this deployment's read cache goes, in batches, and no other key`, async () => {
    const dataDir = mkdtempSync(join(work, `${name}-`));
    const mine = `${run}${name}:`;
    const redis = await openDirect();
    // 1,200 keys: more than one SCAN batch; a value and a floor of the same cache key.
    const own = Array.from({ length: 600 }, (_, i) => `${mine}read:{inventory:sku-${i}}`);
    const keep = [
      `${mine}rl:ada:1`, // this deployment's rate limiter
      `${mine}read:read:{inventory:sku-1}`, // a deployment whose prefix is `${mine}read:`
      `${run}${name}-other:read:{inventory:sku-1}`,
    ];
    for (const key of [...own, ...own.map((key) => `${key}:floor`), ...keep])
      await direct(redis, "SET", key, "7:{}", "PX", "600000");
    markRestored(dataDir, new Date().toISOString());
    const sink = captureSink();
    const client = open();
    await clearReadCacheAfterRestore({
      dataDir,
      redis: client,
      prefix: `${mine}read:`,
      logger: createLogger({ sink: sink.sink }),
    });
    client.close();
    expect(sink.records().map((r) => [r.msg, r.deleted])).toEqual([
      [`restored data dir: cleared the read cache's keys in Redis (${mine}read:{*)`, 1200],
    ]);
    expect(existsSync(join(dataDir, restoredMarker))).toBe(false);
    for (const key of own.slice(0, 3)) expect(await direct(redis, "EXISTS", key)).toBe(0);
    for (const key of keep) expect(text(await direct(redis, "GET", key))).toBe("7:{}");
    redis.close();
  });
}

test("Redis away: the node is told what to run, and the marker stays for the next start; without Redis it goes", async () => {
  const dataDir = mkdtempSync(join(work, "away-"));
  markRestored(dataDir, new Date().toISOString());
  const sink = captureSink();
  const client = tcpRedis({ url: "redis://127.0.0.1:1" });
  const started = Date.now();
  await clearReadCacheAfterRestore({
    dataDir,
    redis: client,
    prefix: `${run}away:read:`,
    logger: createLogger({ sink: sink.sink }),
  });
  client.close();
  expect(Date.now() - started).toBeLessThan(5_000);
  const [warning] = sink.records();
  expect(warning?.level).toBe("warn");
  expect(String(warning?.msg)).toContain(`redis-cli -u <REDIS_URL> --scan --pattern '${run}away:read:{*'`);
  expect(existsSync(join(dataDir, restoredMarker))).toBe(true);

  // A node without Redis keeps its read cache in memory, empty at start: nothing to clear.
  await clearReadCacheAfterRestore({
    dataDir,
    redis: undefined,
    prefix: `${run}away:read:`,
    logger: createLogger({ sink: sink.sink }),
  });
  expect(existsSync(join(dataDir, restoredMarker))).toBe(false);
});

test("on a Redis Cluster node, whose scripts may not touch keys of two slots, every key goes and no other", async () => {
  // Each cache key is its own hash tag (`read:{inventory:sku-1}` and its `:floor` share one slot, two cache keys do
  // not): one script over a SCAN batch of them was refused CROSSSLOT, and the marker stayed at every start.
  const cluster = await startClusterRedis();
  try {
    const dataDir = mkdtempSync(join(work, "cluster-"));
    const admin = await RespConnection.open(parseRedisUrl(cluster.url));
    const own = Array.from({ length: 600 }, (_, i) => `edgewise:read:{inventory:sku-${i}}`);
    const keep = ["edgewise:rl:ada:1", "other:read:{inventory:sku-1}"];
    for (const key of [...own, ...own.map((key) => `${key}:floor`), ...keep])
      await direct(admin, "SET", key, "7:{}", "PX", "600000");
    markRestored(dataDir, new Date().toISOString());
    const sink = captureSink();
    const client = tcpRedis({ url: cluster.url });
    await clearReadCacheAfterRestore({
      dataDir,
      redis: client,
      prefix: "edgewise:read:",
      logger: createLogger({ sink: sink.sink }),
    });
    client.close();
    expect(sink.records().map((r) => [r.level, r.msg, r.deleted])).toEqual([
      ["info", "restored data dir: cleared the read cache's keys in Redis (edgewise:read:{*)", 1200],
    ]);
    expect(existsSync(join(dataDir, restoredMarker))).toBe(false);
    expect(await direct(admin, "DBSIZE")).toBe(keep.length);
    for (const key of keep) expect(text(await direct(admin, "GET", key))).toBe("7:{}");
    admin.close();
  } finally {
    await cluster.stop();
  }
}, 30_000);
