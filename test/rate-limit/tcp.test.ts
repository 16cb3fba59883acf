// @upstash/ratelimit over TCP: tcpRedis (Bun's RedisClient) and nodeTcpRedis (ioredis, Deno's) → the real Redis.
import { afterAll, describe, expect, test } from "bun:test";
import {
  tcpRedis,
  type TcpRedis,
  type TcpRedisOptions,
} from "../../edge/middleware/rate-limit/redis-tcp-bun.ts";
import { nodeTcpRedis } from "../../edge/middleware/rate-limit/redis-tcp-node.ts";
import { memoryLimiter, resilientLimiter, upstashLimiter } from "../../edge/middleware/rate-limit/index.ts";
import { rateLimitStoreSuite } from "./cases.ts";
import { ManualClock } from "../../shared/clock/index.ts";
import { TcpForwarder } from "./forwarder.ts";
import { closedPort, deleteKeys, hungTcpServer, redisUrl, runPrefix } from "./support.ts";

const clients: TcpRedis[] = [];
const hung = hungTcpServer();
const closed = closedPort();

afterAll(() => {
  for (const client of clients) client.close();
  hung.stop();
});

const adapters: Array<[string, string, (options: TcpRedisOptions) => TcpRedis]> = [
  ["tcp", "tcpRedis (Bun)", tcpRedis],
  ["tcp-ioredis", "nodeTcpRedis (Deno)", nodeTcpRedis],
];

for (const [suite, name, connect] of adapters) {
  const open = (url: string) => {
    const client = connect({ url, connectTimeoutMs: 500 });
    clients.push(client);
    return client;
  };

  rateLimitStoreSuite(suite, {
    redis: () => open(redisUrl),
    unreachable: () => open(`redis://127.0.0.1:${closed}`),
    hung: () => open(`redis://127.0.0.1:${hung.port}`),
  });

  describe(name, () => {
    const prefix = runPrefix(`${suite}-adapter`);
    afterAll(async () => {
      await deleteKeys(prefix);
    });

    test("Upstash-only shebang flags are dropped, and EVALSHA by the client's hash then finds the script", async () => {
      const redis = open(redisUrl);
      const script = `#!lua flags=allow-key-locking\nreturn redis.call("INCR", KEYS[1]) -- ${prefix}`;
      const sha = new Bun.CryptoHasher("sha1").update(script).digest("hex");
      await expect(redis.evalsha(sha, [`${prefix}:n`], [])).rejects.toThrow(/NOSCRIPT/);
      expect(await redis.eval(script, [`${prefix}:n`], [])).toBe(1);
      expect(await redis.evalsha(sha, [`${prefix}:n`], [])).toBe(2);
    });

    test("get and set speak @upstash/redis's JSON", async () => {
      const redis = open(redisUrl);
      expect(await redis.set(`${prefix}:json`, { a: 1 }, { px: 60_000 })).toBe("OK");
      expect(await redis.get<{ a: number }>(`${prefix}:json`)).toEqual({ a: 1 });
      expect(await redis.get(`${prefix}:missing`)).toBeNull();
    });

    test("Redis goes away and comes back: fallback meanwhile, the shared counter again after", async () => {
      const forwarder = new TcpForwarder({ hostname: "127.0.0.1", port: 6379 });
      forwarder.start();
      try {
        const redis = connect({ url: `redis://127.0.0.1:${forwarder.port}`, reconnectBackoffMs: 200 });
        clients.push(redis);
        const limiter = resilientLimiter(
          // Timeouts well past the 2 s bound below: a call that waited for either instead of failing at once on
          // the refused connection fails it, while a loaded machine's stalls have most of 2 s.
          upstashLimiter({ redis, limit: 100, windowMs: 60_000, prefix, timeoutMs: 2_500 }),
          { fallback: memoryLimiter({ limit: 100, windowMs: 60_000 }), onFailure: "open", timeoutMs: 3_000 },
        );
        expect((await limiter.limit("flap")).reason).toBe("allowed");

        forwarder.stop();
        const started = performance.now();
        const during = await Promise.all(Array.from({ length: 10 }, () => limiter.limit("flap")));
        expect(performance.now() - started).toBeLessThan(2_000);
        expect(during.every((d) => d.reason === "fallback")).toBe(true);

        forwarder.start(); // the same port
        await Bun.sleep(300); // past the reconnect backoff
        expect((await limiter.limit("flap")).reason).toBe("allowed");
      } finally {
        forwarder.stop();
      }
    }, 15_000);

    test("a wall clock stepped back an hour after a failed connect does not stretch the reconnect backoff", async () => {
      const forwarder = new TcpForwarder({ hostname: "127.0.0.1", port: 6379 });
      forwarder.start();
      forwarder.stop(); // its port now refuses: Redis is away
      try {
        const clock = new ManualClock();
        const redis = connect({
          url: `redis://127.0.0.1:${forwarder.port}`,
          reconnectBackoffMs: 1_000,
          connectTimeoutMs: 500,
          clock,
        });
        clients.push(redis);
        await expect(redis.get(`${prefix}:step`)).rejects.toMatchObject({ code: "unavailable" });
        forwarder.start(); // Redis is back, on the same port
        clock.step(-3_600_000);
        clock.advance(999);
        await expect(redis.get(`${prefix}:step`)).rejects.toMatchObject({ code: "unavailable" }); // backing off
        clock.advance(1);
        expect(await redis.get(`${prefix}:step`)).toBeNull();
      } finally {
        forwarder.stop();
      }
    }, 15_000);
  });
}

// Both clients report a refused AUTH as "Connection closed", like a Redis that is down; the adapter asks Redis why.
describe("a Redis that requires a password", () => {
  let redisServer: ReturnType<typeof Bun.spawn> | undefined;
  const port = closedPort();
  const started = (async () => {
    redisServer = Bun.spawn(
      [
        "redis-server",
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--requirepass",
        "right-password",
      ].concat(["--save", "", "--appendonly", "no"]),
      { stdout: "ignore", stderr: "ignore" },
    );
    for (let tries = 0; tries < 100; tries++) {
      const up = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
        (socket) => (socket.end(), true),
        () => false,
      );
      if (up) return;
      await Bun.sleep(50);
    }
    throw new Error("redis-server did not start");
  })();
  afterAll(async () => {
    redisServer?.kill();
    await redisServer?.exited;
  });

  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => error as Error & { meta?: { reason?: string } },
    );

  test("a refusal that is not about credentials (max clients) is quoted without the password hint", async () => {
    const full = closedPort();
    const server = Bun.spawn(
      ["redis-server", "--port", String(full), "--bind", "127.0.0.1", "--maxclients", "1"].concat([
        "--save",
        "",
        "--appendonly",
        "no",
      ]),
      { stdout: "ignore", stderr: "ignore" },
    );
    let holder: Awaited<ReturnType<typeof Bun.connect>> | undefined;
    try {
      for (let tries = 0; tries < 100 && !holder; tries++) {
        holder = await Bun.connect({ hostname: "127.0.0.1", port: full, socket: { data() {} } }).catch(
          () => undefined,
        );
        if (!holder) await Bun.sleep(50);
      }
      for (const [, , connect] of adapters) {
        const client = connect({ url: `redis://127.0.0.1:${full}`, connectTimeoutMs: 500 });
        clients.push(client);
        const error = await failure(client.get("k"));
        expect(error?.message).toContain("Redis refused the connection (ERR max number of clients reached)");
        expect(error?.message).not.toContain("password");
      }
    } finally {
      holder?.end();
      server.kill();
      await server.exited;
    }
  });

  for (const [, name, connect] of adapters) {
    test(`${name}: a wrong or missing password is "refused", quoting Redis; the right one works`, async () => {
      await started;
      const open = (url: string) => {
        const client = connect({ url, connectTimeoutMs: 500, reconnectBackoffMs: 0 });
        clients.push(client);
        return client;
      };
      const wrong = await failure(open(`redis://default:wrong-PLANTED@127.0.0.1:${port}`).get("k"));
      expect(wrong?.message).toContain("Redis refused the connection (WRONGPASS");
      expect(wrong?.message).not.toContain("PLANTED");
      expect(wrong?.meta?.reason).toBe("refused");
      const missing = await failure(open(`redis://127.0.0.1:${port}`).get("k"));
      expect(missing?.message).toContain("Redis refused the connection (NOAUTH");
      expect(await open(`redis://default:right-password@127.0.0.1:${port}`).get("k")).toBeNull();
      // A port nothing listens on is still "unreachable", with no reason of its own.
      const away = await failure(open(`redis://127.0.0.1:${closed}`).get("k"));
      expect(away?.message).toBe("Redis is unreachable");
      expect(away?.meta?.reason).toBeUndefined();
    });
  }
});
