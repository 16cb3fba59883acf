// The official @upstash/redis client, unpatched and with its default base64 encoding, against the bridge.
// Since 1.3x the SDK auto-pipelines by default (commands of one tick go to /pipeline together), so the suite runs
// once that way and once with enableAutoPipelining: false, which sends each command to POST /.
import { beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import type { RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import type { RedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { direct, text, uniquePrefix, useBridge } from "./helpers.ts";

const prefix = uniquePrefix("sdk");
let bridge: RedisBridge;
let raw: RespConnection;

useBridge(prefix, (fixture) => {
  ({ bridge, raw } = fixture);
});

describe.each([
  ["auto-pipelined", true],
  ["one request per command", false],
])("@upstash/redis against the bridge (%s)", (mode, enableAutoPipelining) => {
  const k = (name: string) => `${prefix}${mode}:${name}`;
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis({ url: bridge.url, token: bridge.token, enableTelemetry: false, enableAutoPipelining });
  });

  test("strings, counters and expiry", async () => {
    expect(await redis.set(k("s"), "hello")).toBe("OK");
    expect(await redis.get<string>(k("s"))).toBe("hello");
    expect(await redis.set(k("s"), "again", { nx: true })).toBeNull();
    expect(await redis.append(k("s"), " world")).toBe(11);
    expect(await redis.incr(k("n"))).toBe(1);
    expect(await redis.incrby(k("n"), 41)).toBe(42);
    expect(await redis.incrbyfloat(k("n"), 0.5)).toBe(42.5);
    expect(await redis.mset({ [k("m1")]: "a", [k("m2")]: 2 })).toBe("OK");
    expect(await redis.mget<[string, number, null]>(k("m1"), k("m2"), k("none"))).toEqual(["a", 2, null]);
    expect(await redis.ttl(k("s"))).toBe(-1);
    expect(await redis.expire(k("s"), 100)).toBe(1);
    const ttl = await redis.ttl(k("s"));
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
    await redis.set(k("ex"), "v", { px: 60_000 });
    expect(await redis.pttl(k("ex"))).toBeGreaterThan(50_000);
    expect(await redis.persist(k("ex"))).toBe(1);
    expect(await redis.exists(k("s"), k("ex"), k("none"))).toBe(2);
    expect(await redis.del(k("ex"))).toBe(1);
    expect(await redis.type(k("s"))).toBe("string");
    expect(await redis.ping()).toBe("PONG");
  }, 10_000);

  test("hashes, lists, sets and sorted sets", async () => {
    expect(await redis.hset(k("h"), { name: "ada", age: 36, tags: ["x", "y"] })).toBe(3);
    expect(await redis.hget<string>(k("h"), "name")).toBe("ada");
    expect(await redis.hgetall(k("h"))).toEqual({ name: "ada", age: 36, tags: ["x", "y"] });
    expect(await redis.hincrby(k("h"), "age", 1)).toBe(37);
    expect(await redis.hdel(k("h"), "tags")).toBe(1);
    expect(await redis.hlen(k("h"))).toBe(2);

    expect(await redis.rpush(k("l"), "a", "b", "c")).toBe(3);
    expect(await redis.lpush(k("l"), "z")).toBe(4);
    expect(await redis.lrange(k("l"), 0, -1)).toEqual(["z", "a", "b", "c"]);
    expect(await redis.lpop<string>(k("l"))).toBe("z");
    expect(await redis.llen(k("l"))).toBe(3);

    expect(await redis.sadd(k("set"), "a", "b", "c")).toBe(3);
    expect(await redis.sismember(k("set"), "b")).toBe(1);
    expect((await redis.smembers(k("set"))).sort()).toEqual(["a", "b", "c"]);
    expect(await redis.srem(k("set"), "a")).toBe(1);
    expect(await redis.scard(k("set"))).toBe(2);

    expect(await redis.zadd(k("z"), { score: 2, member: "two" }, { score: 1.5, member: "one" })).toBe(2);
    expect(await redis.zscore(k("z"), "one")).toBe(1.5);
    expect(await redis.zincrby(k("z"), 10, "one")).toBe(11.5);
    expect(await redis.zrange(k("z"), 0, -1)).toEqual(["two", "one"]);
    expect(await redis.zrange(k("z"), 0, -1, { withScores: true })).toEqual(["two", 2, "one", 11.5]);
    expect(await redis.zrank(k("z"), "one")).toBe(1);
  }, 10_000);

  test("objects are serialized by the SDK and deserialized on the way back", async () => {
    const value = { id: 7, name: "Zoë", nested: { list: [1, "two", null], ok: true } };
    await redis.set(k("json"), value);
    expect(await redis.get(k("json"))).toEqual(value);
    expect(text(await direct(raw, "GET", k("json")))).toBe(JSON.stringify(value));
    await redis.set(k("num-text"), "123");
    expect(await redis.get(k("num-text"))).toBe(123); // the SDK's automatic deserialization, not the bridge

    const plain = new Redis({
      url: bridge.url,
      token: bridge.token,
      automaticDeserialization: false,
      enableTelemetry: false,
      enableAutoPipelining,
    });
    expect(await plain.get(k("json"))).toBe(JSON.stringify(value));
    expect(await plain.get(k("num-text"))).toBe("123");
  }, 10_000);

  test("awkward strings round-trip unchanged", async () => {
    const values = [
      "line\r\nbreak",
      "*2\r\n$3\r\nfoo\r\n",
      "nul\u0000byte",
      "emoji 🎉 and 𝄞",
      "ÿþ latin-1 look-alikes",
      'quotes " and \\ backslash',
      "OK", // the one status the SDK does not base64-decode: as a bulk value it must still round-trip
      "T0s=",
      "",
    ];
    for (const [i, value] of values.entries()) {
      await redis.set(k(`awk${i}`), value);
      expect(await redis.get(k(`awk${i}`))).toBe(value);
      expect(text(await direct(raw, "GET", k(`awk${i}`)))).toBe(value);
    }
  }, 10_000);

  test("pipeline: results in order; a Redis error names the command", async () => {
    const results = await redis
      .pipeline()
      .set(k("p"), "v")
      .get(k("p"))
      .incr(k("pn"))
      .hset(k("ph"), { a: 1 })
      .exec();
    expect(results).toEqual(["OK", "v", 1, 1]);

    const failing = redis.pipeline().set(k("p2"), "text").incr(k("p2")).get(k("p2"));
    await expect(failing.exec()).rejects.toThrow(
      "Command 2 [ incr ] failed: ERR value is not an integer or out of range",
    );
    const kept = await redis
      .pipeline()
      .set(k("p3"), "text")
      .incr(k("p3"))
      .get(k("p3"))
      .exec({ keepErrors: true });
    expect(kept.map((r) => r.error)).toEqual([
      undefined,
      "ERR value is not an integer or out of range",
      undefined,
    ]);
    expect(kept[2]?.result).toBe("text");
  }, 10_000);

  test("multi: a transaction, and concurrent transactions never interleave", async () => {
    expect(await redis.multi().set(k("t"), 1).incr(k("t")).get(k("t")).exec()).toEqual(["OK", 2, 2]);
    const runs = await Promise.all(
      Array.from({ length: 50 }, () => redis.multi().incr(k("ta")).incr(k("tb")).exec<[number, number]>()),
    );
    for (const [a, b] of runs) expect(a).toBe(b);
    expect(new Set(runs.map(([a]) => a)).size).toBe(50);
  }, 15_000);

  test("a Redis error surfaces as UpstashError with Redis's message", async () => {
    await redis.set(k("wrong"), "text");
    const error = await redis.hget(k("wrong"), "f").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe("UpstashError");
    // "Command failed: <redis error>" when auto-pipelined, "<redis error>, command was: …" otherwise.
    expect((error as Error).message).toContain(
      "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    await expect(redis.exec(["FOO", "bar"])).rejects.toThrow("ERR unknown command 'FOO'");
  }, 10_000);

  test("scripts: eval, scriptLoad and evalsha", async () => {
    const script = "return {KEYS[1], ARGV[1], 42}";
    expect(await redis.eval(script, [k("e")], ["arg"])).toEqual([k("e"), "arg", 42]);
    const sha = await redis.scriptLoad(script);
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await redis.evalsha(sha, [k("e")], ["x"])).toEqual([k("e"), "x", 42]);
  }, 10_000);
});
