// The bridge over a Redis that stops answering without closing the connection (a blackhole fault proxy in between).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Redis } from "@upstash/redis";
import { parseRedisUrl } from "../../deploy/local/redis-bridge/connection.ts";
import { type RedisBridge, startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { type FaultProxy, Modes, startFaultProxy } from "../chaos/fault-proxy.ts";
import { cleanup, openDirect, TEST_REDIS_URL, uniquePrefix } from "./helpers.ts";

const prefix = uniquePrefix("blackhole");
const key = `${prefix}k`;
const REPLY_TIMEOUT_MS = 500;
let proxy: FaultProxy;
let bridge: RedisBridge;
const logged: string[] = [];

beforeAll(async () => {
  const { host, port } = parseRedisUrl(TEST_REDIS_URL);
  proxy = await startFaultProxy({ target: { host, port } });
  bridge = await startRedisBridge({
    port: 0,
    redisUrl: `redis://${proxy.address}`,
    token: `test-${randomBytes(16).toString("hex")}`,
    replyTimeoutMs: REPLY_TIMEOUT_MS,
    log: (line) => logged.push(line),
  });
});

afterAll(async () => {
  await bridge?.stop();
  await proxy?.close();
  const raw = await openDirect();
  await cleanup(raw, prefix);
  raw.close();
});

/** `POST /` with a JSON command; a hang fails the test after 10 s instead of holding it. */
async function command(...args: string[]): Promise<{ status: number; body: unknown }> {
  const response = await fetch(bridge.url, {
    method: "POST",
    headers: { authorization: `Bearer ${bridge.token}` },
    body: JSON.stringify(args),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: await response.json() };
}

test("Redis silent: 503 {error} at the deadline, the dead connection is dropped, and the next request works", async () => {
  expect(await command("SET", key, "v")).toEqual({ status: 200, body: { result: "OK" } });
  proxy.setMode(Modes.blackhole);

  // Raw HTTP and the SDK (auto-pipelined, as the node uses it) both get an answer instead of waiting forever.
  const error = `ERR redis-bridge: Redis did not answer within ${REPLY_TIMEOUT_MS} ms; the connection was dropped, and the next request opens a new one`;
  expect(await command("GET", key)).toEqual({ status: 503, body: { error } });
  const sdk = new Redis({ url: bridge.url, token: bridge.token, automaticDeserialization: false });
  // A failed HTTP request, as Upstash's own 5xx answers are: UpstashError "<error>, command was: …".
  await expect(sdk.get(key)).rejects.toThrow(`${error}, command was:`);
  expect(logged.some((line) => line.includes("did not answer"))).toBe(true);

  // The bridge let go of the connection Redis stopped answering on; it does not wait for Redis to close it.
  const deadline = Date.now() + 5_000;
  while (proxy.stats().active > 0 && Date.now() < deadline) await Bun.sleep(20);
  expect(proxy.stats().active).toBe(0);

  const opened = proxy.stats().connections;
  proxy.setMode(Modes.pass);
  expect(await command("GET", key)).toEqual({ status: 200, body: { result: "v" } });
  expect(proxy.stats().connections).toBe(opened + 1);
}, 30_000);

test("a reply slower than usual but within the deadline is still answered", async () => {
  proxy.setMode(Modes.delay(REPLY_TIMEOUT_MS / 5));
  try {
    expect(await command("GET", key)).toEqual({ status: 200, body: { result: "v" } });
  } finally {
    proxy.setMode(Modes.pass);
  }
}, 30_000);
