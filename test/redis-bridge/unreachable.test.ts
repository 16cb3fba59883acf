// The bridge while Redis cannot be reached (connections reset or closed, the port closed): 503 {error}, logged once.
import { expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import { parseRedisUrl } from "../../deploy/local/redis-bridge/connection.ts";
import { Modes, startFaultProxy } from "../chaos/fault-proxy.ts";
import { call, TEST_REDIS_URL, uniquePrefix, useBridgeBehindProxy } from "./helpers.ts";

const prefix = uniquePrefix("unreachable");
const key = `${prefix}k`;
const fixture = useBridgeBehindProxy(prefix);

/** `POST path` with a JSON body. */
const post = (path: string, body: unknown) => call(fixture.bridge, path, { body, timeoutMs: 10_000 });

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
  const sdk = new Redis({
    url: fixture.bridge.url,
    token: fixture.bridge.token,
    automaticDeserialization: false,
  });
  await expect(sdk.get(key)).rejects.toThrow(error);
}

async function expectServed(): Promise<void> {
  expect(await post("/", ["GET", key])).toEqual({ status: 200, body: { result: "v" } });
}

test("connections reset, closed, or refused at a closed port: 503 {error}, then served again once Redis is back", async () => {
  expect(await post("/", ["SET", key, "v"])).toEqual({ status: 200, body: { result: "OK" } });

  fixture.proxy.setMode(Modes.reset);
  await expectUnavailable(/^ERR redis-bridge: Redis connection lost \(/);
  fixture.proxy.setMode(Modes.pass);
  await expectServed();

  fixture.proxy.setMode(Modes.drop);
  await expectUnavailable(/^ERR redis-bridge: Redis connection lost \(/);
  fixture.proxy.setMode(Modes.pass);
  await expectServed();

  // Nothing listens on the port: every connection attempt is refused.
  const { port } = fixture.proxy;
  await fixture.proxy.close();
  await expectUnavailable(
    new RegExp(`^ERR redis-bridge: cannot connect to 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
  );
  fixture.proxy = await startFaultProxy({ target: parseRedisUrl(TEST_REDIS_URL), port });
  await expectServed();

  // An outage is not an internal failure of the bridge: no request is logged as one (`POST /: …`, the 500s'
  // line), and each of the three outages is told once, with its end, however many requests it refused.
  expect(fixture.logged.filter((line) => /^(GET|POST|PUT|HEAD) /.test(line))).toEqual([]);
  expect(fixture.logged).toEqual([
    expect.stringMatching(/^Redis unavailable, requests get 503 until it is back: .*connection lost/),
    "Redis answers again",
    expect.stringMatching(/^Redis unavailable, requests get 503 until it is back: .*connection lost/),
    "Redis answers again",
    expect.stringMatching(/^Redis unavailable, requests get 503 until it is back: .*cannot connect/),
    "Redis answers again",
  ]);
}, 30_000);
