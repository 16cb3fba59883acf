// The bridge while Redis cannot be reached (connections reset or closed, the port closed): 503 {error}, logged once.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Redis } from "@upstash/redis";
import { parseRedisUrl } from "../../deploy/local/redis-bridge/connection.ts";
import { type RedisBridge, startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { type FaultProxy, Modes, startFaultProxy } from "../chaos/fault-proxy.ts";
import { cleanup, openDirect, TEST_REDIS_URL, uniquePrefix } from "./helpers.ts";

const prefix = uniquePrefix("unreachable");
const key = `${prefix}k`;
const target = parseRedisUrl(TEST_REDIS_URL);
let proxy: FaultProxy;
let bridge: RedisBridge;
const logged: string[] = [];

beforeAll(async () => {
  proxy = await startFaultProxy({ target });
  bridge = await startRedisBridge({
    port: 0,
    redisUrl: `redis://${proxy.address}`,
    token: `test-${randomBytes(16).toString("hex")}`,
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

/** `POST path` with a JSON body; a hang fails the test after 10 s instead of holding it. */
async function post(path: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${bridge.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${bridge.token}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: await response.json() };
}

/** Every route, raw and through the SDK, answers 503 with Upstash's `{error}` shape naming what happened. */
async function expectUnavailable(error: RegExp): Promise<void> {
  for (const [path, body] of [
    ["/", ["GET", key]],
    ["/pipeline", [["GET", key]]],
    ["/multi-exec", [["GET", key]]],
  ] as const) {
    const answer = await post(path, body);
    expect({ path, ...answer }).toEqual({ path, status: 503, body: { error: expect.stringMatching(error) } });
  }
  const sdk = new Redis({ url: bridge.url, token: bridge.token, automaticDeserialization: false });
  await expect(sdk.get(key)).rejects.toThrow(error);
}

async function expectServed(): Promise<void> {
  expect(await post("/", ["GET", key])).toEqual({ status: 200, body: { result: "v" } });
}

test("connections reset, closed, or refused at a closed port: 503 {error}, then served again once Redis is back", async () => {
  expect(await post("/", ["SET", key, "v"])).toEqual({ status: 200, body: { result: "OK" } });

  proxy.setMode(Modes.reset);
  await expectUnavailable(/^ERR redis-bridge: Redis connection lost \(/);
  proxy.setMode(Modes.pass);
  await expectServed();

  proxy.setMode(Modes.drop);
  await expectUnavailable(/^ERR redis-bridge: Redis connection lost \(/);
  proxy.setMode(Modes.pass);
  await expectServed();

  // Nothing listens on the port: every connection attempt is refused.
  const { port } = proxy;
  await proxy.close();
  await expectUnavailable(
    new RegExp(`^ERR redis-bridge: cannot connect to 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
  );
  proxy = await startFaultProxy({ target, port });
  await expectServed();

  // An outage is not an internal failure of the bridge: no request is logged as one (`POST /: …`, the 500s'
  // line), and each of the three outages is told once, with its end, however many requests it refused.
  expect(logged.filter((line) => /^(GET|POST|PUT|HEAD) /.test(line))).toEqual([]);
  expect(logged).toEqual([
    expect.stringMatching(/^Redis unavailable, requests get 503 until it is back: .*connection lost/),
    "Redis answers again",
    expect.stringMatching(/^Redis unavailable, requests get 503 until it is back: .*connection lost/),
    "Redis answers again",
    expect.stringMatching(/^Redis unavailable, requests get 503 until it is back: .*cannot connect/),
    "Redis answers again",
  ]);
}, 30_000);
