// The bridge's routes with raw fetch: errors passed through, malformed input, refusals, path form, multi-exec, scripts.
import { describe, expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import type { RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import { type RedisBridge, startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { ErrorReply } from "../../deploy/local/redis-bridge/resp.ts";
import { b64, call, direct, TEST_REDIS_URL, text, uniquePrefix, useBridge } from "./helpers.ts";

const prefix = uniquePrefix("routes");
const k = (name: string) => `${prefix}${name}`;
const BASE64 = { "upstash-encoding": "base64" };
let bridge: RedisBridge;
let raw: RespConnection;

useBridge(prefix, (fixture) => {
  ({ bridge, raw } = fixture);
});

describe("errors", () => {
  test("Redis errors pass through verbatim with 400", async () => {
    const expected = (await direct(raw, "FOO", "bar")) as ErrorReply;
    expect(expected).toBeInstanceOf(ErrorReply);
    expect(await call(bridge, "/", { body: ["FOO", "bar"] })).toEqual({
      status: 400,
      body: { error: expected.message },
    });
    await call(bridge, "/", { body: ["SET", k("str"), "x"] });
    const wrongType = await call(bridge, "/", { body: ["LPUSH", k("str"), "y"] });
    expect(wrongType).toEqual({
      status: 400,
      body: { error: "WRONGTYPE Operation against a key holding the wrong kind of value" },
    });
  }, 10_000);

  test("malformed requests are 400 {error}; other methods 405", async () => {
    for (const [path, body] of [
      ["/", "not json"],
      ["/", { set: 1 }],
      ["/", []],
      ["/", ["SET", k("x"), { nested: true }]],
      ["/", ["SET", k("x"), null]],
      ["/pipeline", ["SET", k("x"), "v"]],
      ["/pipeline", []],
      ["/multi-exec", "{"],
    ] as const) {
      const response = await call(bridge, path, { body });
      expect(response.status).toBe(400);
      expect(typeof (response.body as { error: unknown }).error).toBe("string");
    }
    expect(await direct(raw, "EXISTS", k("x"))).toBe(0);
    expect((await call(bridge, "/", { method: "DELETE" })).status).toBe(405);
    expect((await call(bridge, "/pipeline", { method: "GET" })).status).toBe(405);
    const resp2 = await call(bridge, "/", {
      body: ["PING"],
      headers: { "upstash-response-format": "resp2" },
    });
    expect(resp2.status).toBe(400);
  }, 10_000);

  test("blocking and connection-state commands are refused, alone or in a pipeline", async () => {
    for (const command of [
      ["BLPOP", k("l"), "0"],
      ["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", k("s"), "$"],
      ["MULTI"],
      ["SELECT", "1"],
      ["SUBSCRIBE", "chan"],
      ["CLIENT", "REPLY", "OFF"],
    ]) {
      const response = await call(bridge, "/", { body: command });
      expect(response.status).toBe(400);
      expect((response.body as { error: string }).error).toStartWith("ERR ");
    }
    expect((await call(bridge, "/", { body: ["XREAD", "COUNT", "1", "STREAMS", k("s"), "0"] })).body).toEqual(
      {
        result: null,
      },
    );
    const pipeline = await call(bridge, "/pipeline", {
      body: [
        ["SET", k("pl"), "1"],
        ["BLPOP", k("l"), "0"],
        ["INCR", k("pl")],
      ],
    });
    expect(pipeline.status).toBe(200);
    const [first, second, third] = pipeline.body as { result?: unknown; error?: string }[];
    expect(first).toEqual({ result: "OK" });
    expect(second?.error).toContain("BLPOP");
    expect(third).toEqual({ result: 2 });
  }, 10_000);
});

describe("routes", () => {
  test("path form: /cmd/arg…, query pairs appended", async () => {
    expect((await call(bridge, `/set/${k("path")}/hello%20world?EX=100`)).body).toEqual({ result: "OK" });
    expect((await call(bridge, `/get/${k("path")}`)).body).toEqual({ result: "hello world" });
    const ttl = (await call(bridge, `/ttl/${k("path")}`)).body as { result: number };
    expect(ttl.result).toBeGreaterThan(90);
    // Trailing slashes are cut, in one pass: a path of many slashes is refused as fast as any other.
    expect((await call(bridge, `/get/${k("path")}///`)).body).toEqual({ result: "hello world" });
    const started = performance.now();
    expect((await call(bridge, `${"/".repeat(50_000)}x`)).status).toBe(400);
    expect(performance.now() - started).toBeLessThan(1_000);
  }, 10_000);

  test("multi-exec: runtime errors are per command; a queueing error discards everything", async () => {
    const ran = await call(bridge, "/multi-exec", {
      body: [
        ["SET", k("m"), "x"],
        ["INCR", k("m")],
        ["GET", k("m")],
      ],
      headers: BASE64,
    });
    expect(ran).toEqual({
      status: 200,
      body: [
        { result: "OK" },
        { error: "ERR value is not an integer or out of range" },
        { result: b64("x") },
      ],
    });
    const discarded = await call(bridge, "/multi-exec", {
      body: [
        ["SET", k("m2"), "x"],
        ["SET", k("m2")],
      ],
    });
    expect(discarded).toEqual({
      status: 400,
      body: { error: "ERR wrong number of arguments for 'set' command" },
    });
    const refused = await call(bridge, "/multi-exec", {
      body: [
        ["SET", k("m2"), "x"],
        ["BLPOP", k("l"), "0"],
      ],
    });
    expect(refused.status).toBe(400);
    expect(await direct(raw, "EXISTS", k("m2"))).toBe(0);
  }, 10_000);

  test("Upstash's allow-key-locking shebang flag is dropped for Redis; EVALSHA uses the client's hash", async () => {
    const script = "#!lua flags=allow-key-locking\nreturn redis.call('INCR', KEYS[1])";
    const refused = await direct(raw, "EVAL", script, "1", k("lua"));
    expect(refused).toBeInstanceOf(ErrorReply); // why the shim exists: plain Redis rejects the flag
    expect((refused as ErrorReply).message).toContain("allow-key-locking");

    const clientSha = new Bun.CryptoHasher("sha1").update(script).digest("hex");
    expect((await call(bridge, "/", { body: ["EVAL", script, 1, k("lua")] })).body).toEqual({ result: 1 });
    expect((await call(bridge, "/", { body: ["EVALSHA", clientSha, 1, k("lua")] })).body).toEqual({
      result: 2,
    });
    expect((await call(bridge, "/", { body: ["SCRIPT", "LOAD", script] })).body).toEqual({
      result: clientSha,
    });
    expect((await call(bridge, "/", { body: ["SCRIPT", "EXISTS", clientSha] })).body).toEqual({
      result: [1],
    });
    expect(text(await direct(raw, "GET", k("lua")))).toBe("2");
  }, 10_000);
});

describe("request size", () => {
  test("a body over maxBodyBytes is a JSON {error} the SDK can read, declared or streamed", async () => {
    const small = await startRedisBridge({
      port: 0,
      redisUrl: TEST_REDIS_URL,
      token: "size-token",
      maxBodyBytes: 1024,
    });
    try {
      const redis = new Redis({ url: small.url, token: small.token, enableTelemetry: false, retry: false });
      // Before: Bun's bare 413 with an empty body, which the SDK reports as UpstashJSONParseError.
      const error = await redis.set(k("big"), "x".repeat(2048)).catch((e: unknown) => e);
      expect((error as Error).name).toBe("UpstashError");
      expect((error as Error).message).toContain("ERR max request size exceeded");
      const streamed = await fetch(`${small.url}/set/${k("big")}`, {
        method: "POST",
        headers: { authorization: `Bearer ${small.token}` },
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(new Uint8Array(2048));
            controller.close();
          },
        }),
        duplex: "half",
      } as RequestInit);
      expect(streamed.status).toBe(413);
      expect(((await streamed.json()) as { error: string }).error).toContain("ERR max request size exceeded");
      expect(await redis.set(k("small"), "x".repeat(512))).toBe("OK");
      expect(await direct(raw, "EXISTS", k("big"))).toBe(0);
    } finally {
      await small.stop();
    }
  }, 10_000);
});
