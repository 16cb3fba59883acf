// The bridge's log never carries a command's arguments, a path's values or a token, and the redis breaker counts its
// 500s: a real 500 (its Redis changed password under it, so reconnecting is refused) on a redis-server of its own.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Redis } from "@upstash/redis";
import { parseRedisUrl, RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import { type RedisBridge, startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { upstashRestRedis } from "../../edge/middleware/rate-limit/upstash.ts";
import { redisCheckReason, redisIsFailure, redisReplyCode } from "../../shared/resilience/index.ts";
import { restartablePort } from "../support/ports.ts";
import { call, direct } from "./helpers.ts";

const port = restartablePort();
const password = `pw-${randomBytes(8).toString("hex")}`;
const redisUrl = `redis://default:${password}@127.0.0.1:${port}`;
let redisServer: ReturnType<typeof Bun.spawn> | undefined;
let bridge: RedisBridge;
const logged: string[] = [];

beforeAll(async () => {
  redisServer = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--requirepass", password].concat([
      "--save",
      "",
      "--appendonly",
      "no",
    ]),
    { stdout: "ignore", stderr: "ignore" },
  );
  for (let tries = 0; tries < 100; tries++) {
    const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).catch(
      () => undefined,
    );
    socket?.end();
    if (socket) break;
    await Bun.sleep(50);
  }
  bridge = await startRedisBridge({
    port: 0,
    redisUrl,
    token: `test-${randomBytes(16).toString("hex")}`,
    log: (line) => logged.push(line),
  });
});

afterAll(async () => {
  await bridge?.stop();
  redisServer?.kill();
  await redisServer?.exited;
});

test("an unexpected failure is logged by route and command, without arguments, values or tokens", async () => {
  expect(await call(bridge, "/", { body: ["SET", "k", "v"] })).toEqual({
    status: 200,
    body: { result: "OK" },
  });

  // Redis's password changes and its clients are dropped: the bridge's next connection is refused at AUTH, which
  // is no outage (a 503) but a failure of the bridge's setup (a 500, logged).
  const admin = await RespConnection.open(parseRedisUrl(redisUrl));
  await direct(admin, "CONFIG", "SET", "requirepass", `${password}-new`);
  await direct(admin, "CLIENT", "KILL", "TYPE", "normal");
  admin.close();
  for (let tries = 0; tries < 20; tries++) {
    if ((await call(bridge, "/", { body: ["GET", "k"] })).status === 500) break;
    await Bun.sleep(50);
  }
  logged.length = 0;

  // A token in a command's name, and short secrets no token shape recognizes in its arguments, path and body.
  const jwt = `eyJhbGciOiJIUzI1NiJ9.${Buffer.from('{"sub":"ops"}').toString("base64url")}.c2lnbmF0dXJlLWJ5dGVz`;
  const answers = [
    await call(bridge, "/set/session/hunter2PLANTED?EX=60"),
    await call(bridge, "/", { body: ["SET", "pw", "s3cr3tPLANTED"] }),
    await call(bridge, "/pipeline", { body: [["SET", "pw", "p1PLANTED"]] }),
    await call(bridge, "/multi-exec", { body: [["SET", "pw", "p2PLANTED"]] }),
    await call(bridge, `/${jwt}/argPLANTED`, { method: "PUT", body: "bodyPLANTED" }),
  ];
  expect(answers.map((answer) => answer.status)).toEqual([500, 500, 500, 500, 500]);
  expect(logged).toEqual([
    expect.stringMatching(/^GET \/set\/…: redis-bridge: Redis refused the connection setup: WRONGPASS/),
    expect.stringMatching(/^POST \/: redis-bridge: Redis refused the connection setup: WRONGPASS/),
    expect.stringMatching(/^POST \/pipeline: redis-bridge: Redis refused/),
    expect.stringMatching(/^POST \/multi-exec: redis-bridge: Redis refused/),
    expect.stringMatching(/^PUT \/\[redacted\]\/…: redis-bridge: Redis refused/),
  ]);
  for (const line of logged) {
    expect(line).not.toContain("PLANTED");
    expect(line).not.toContain(password);
    expect(line).not.toContain("eyJ");
  }
}, 30_000);

// The refused setup above is the bridge failing, not Redis answering: its 500 says `ERR redis-bridge: …`, which the
// redis breaker counts (redisIsFailure), where an `ERR …` reply of Redis's own would be Redis up.
test("the refused setup's 500 reaches the SDK as the bridge's failure, which the redis breaker counts", async () => {
  const rest = upstashRestRedis(Redis, bridge.url, bridge.token);
  const error = await rest.get("k").then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(String(error)).toMatch(/ERR redis-bridge: Redis refused the connection setup: WRONGPASS/);
  expect(redisReplyCode(error)).toBeUndefined();
  expect(redisIsFailure(error)).toBe(true);
  // /readyz names it as a node over TCP names Redis refusing its password (node and Worker use the same reason).
  expect(redisCheckReason(error)).toBe("refused");
}, 30_000);
