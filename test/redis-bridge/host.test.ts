// A Host that is no authority: the bridge answers the nodes' 400 before its routes, never a 500 and a log line.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { type RedisBridge, startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { rawExchange } from "../support/raw-http.ts";
import { TEST_REDIS_URL } from "./helpers.ts";

const token = `test-${randomBytes(16).toString("hex")}`;
const logged: string[] = [];
let bridge: RedisBridge;

beforeAll(async () => {
  bridge = await startRedisBridge({
    port: 0,
    redisUrl: TEST_REDIS_URL,
    token,
    log: (line) => logged.push(line),
  });
});
afterAll(() => bridge.stop());

const get = (host: string) =>
  rawExchange(bridge.port, {
    head: `GET /ping HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    closeWaitMs: 100,
  });

test("a Host a URL parser refuses, or one with a delimiter, is 400 problem+json, and nothing is logged", async () => {
  // Bun built request.url from these (`http://999.1.1.1/ping`), or kept the bare target: the routes' new URL threw.
  for (const host of ["999.1.1.1", "a.1", "[ffff]", "%80", "xn--a", "x/y", "user@x"]) {
    const answer = await get(host);
    expect([host, answer.status, answer.headers.get("content-type")]).toEqual([
      host,
      400,
      "application/problem+json",
    ]);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "request.invalid", instance: "/ping" });
  }
  expect(logged).toEqual([]);
});

test("a Host that is a host name or address, with or without a port, is served as before", async () => {
  for (const host of [`127.0.0.1:${bridge.port}`, "localhost", "[::1]", "example.com:443"]) {
    const answer = await get(host);
    expect([host, answer.status, answer.body]).toEqual([host, 200, '{"result":"PONG"}']);
  }
});
