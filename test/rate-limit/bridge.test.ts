// @upstash/ratelimit over REST: @upstash/redis → the local Upstash REST bridge → the real Redis at 127.0.0.1:6379.
import { afterAll, beforeAll } from "bun:test";
import { Redis } from "@upstash/redis";
import { type RedisBridge, startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { rateLimitStoreSuite } from "./cases.ts";
import { closedPort, hungHttpServer, redisUrl } from "./support.ts";

const token = `test-${crypto.randomUUID()}`;
let bridge: RedisBridge;
const hung = hungHttpServer();
const closedUrl = `http://127.0.0.1:${closedPort()}`;

beforeAll(async () => {
  bridge = await startRedisBridge({ port: 0, token, redisUrl, log: () => {} });
});
afterAll(async () => {
  await bridge?.stop();
  await hung.stop();
});

// The SDK's default retry (5 attempts, exponential backoff: ~4 s) stays on for the failure cases, to show the
// limiter's timeout bounds it anyway.
const client = (url: string) => new Redis({ url, token, enableTelemetry: false });

rateLimitStoreSuite("rest-bridge", {
  redis: () => client(bridge.url),
  unreachable: () => client(closedUrl),
  hung: () => client(hung.url),
});
