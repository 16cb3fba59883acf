// The bridge's REST protocol with raw fetch: bearer and ?_token= auth, Upstash-Encoding: base64, binary values.
import { describe, expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import type { RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import type { RedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { b64, call, direct, uniquePrefix, useBridge } from "./helpers.ts";

const prefix = uniquePrefix("protocol");
const k = (name: string) => `${prefix}${name}`;
const BASE64 = { "upstash-encoding": "base64" };
let bridge: RedisBridge;
let raw: RespConnection;

useBridge(prefix, (fixture) => {
  ({ bridge, raw } = fixture);
});

describe("auth", () => {
  test("a missing or wrong token is 401 with Upstash's WRONGPASS error, and runs nothing", async () => {
    const attempts = [
      call(bridge, "/", { body: ["SET", k("auth"), "x"], token: null }),
      call(bridge, "/", { body: ["SET", k("auth"), "x"], token: "wrong" }),
      call(bridge, "/", { body: ["SET", k("auth"), "x"], token: `${bridge.token}x` }),
      call(bridge, "/pipeline", { body: [["SET", k("auth"), "x"]], token: "" }),
      call(bridge, "/multi-exec", {
        body: [["SET", k("auth"), "x"]],
        headers: { authorization: "Basic abc" },
        token: null,
      }),
      call(bridge, `/set/${k("auth")}/x?_token=wrong`, { token: null }),
      // A wrong header is not rescued by a right ?_token=.
      call(bridge, `/set/${k("auth")}/x?_token=${encodeURIComponent(bridge.token)}`, { token: "wrong" }),
    ];
    for (const { status, body } of await Promise.all(attempts)) {
      expect(status).toBe(401);
      // Upstash's own words: code that recognizes an auth failure by "WRONGPASS" must see it here too.
      expect(body).toEqual({ error: "WRONGPASS invalid or missing auth token" });
    }
    const wrong = new Redis({ url: bridge.url, token: "wrong", enableTelemetry: false, retry: false });
    await expect(wrong.get(k("auth"))).rejects.toThrow("WRONGPASS invalid or missing auth token");
    expect(await direct(raw, "EXISTS", k("auth"))).toBe(0);
  }, 10_000);

  test("?_token= works where headers cannot be set", async () => {
    const set = await call(bridge, `/set/${k("qt")}/v?_token=${encodeURIComponent(bridge.token)}`, {
      token: null,
    });
    expect(set).toEqual({ status: 200, body: { result: "OK" } });
  }, 10_000);
});

describe("Upstash-Encoding: base64", () => {
  test("strings are base64, the top-level OK status stays plain; numbers and nil are untouched", async () => {
    expect((await call(bridge, "/", { body: ["SET", k("b"), "bar"], headers: BASE64 })).body).toEqual({
      result: "OK",
    });
    expect((await call(bridge, "/", { body: ["GET", k("b")], headers: BASE64 })).body).toEqual({
      result: "YmFy",
    });
    expect((await call(bridge, "/", { body: ["GET", k("b")] })).body).toEqual({ result: "bar" });
    expect((await call(bridge, "/", { body: ["PING"], headers: BASE64 })).body).toEqual({
      result: b64("PONG"),
    });
    expect((await call(bridge, "/", { body: ["TYPE", k("b")], headers: BASE64 })).body).toEqual({
      result: b64("string"),
    });
    expect((await call(bridge, "/", { body: ["INCR", k("n")], headers: BASE64 })).body).toEqual({
      result: 1,
    });
    expect((await call(bridge, "/", { body: ["GET", k("none")], headers: BASE64 })).body).toEqual({
      result: null,
    });
    // A stored value "OK" is a bulk string: encoded, unlike the status reply.
    await call(bridge, "/", { body: ["SET", k("ok"), "OK"] });
    expect((await call(bridge, "/", { body: ["GET", k("ok")], headers: BASE64 })).body).toEqual({
      result: "T0s=",
    });
  }, 10_000);

  test("inside arrays every string is encoded, OK included (the SDK decodes all of them)", async () => {
    const script = "return {1, redis.status_reply('OK'), 'x', {'y', false}}";
    const { body } = await call(bridge, "/", { body: ["EVAL", script, 0], headers: BASE64 });
    expect(body).toEqual({ result: [1, b64("OK"), b64("x"), [b64("y"), null]] });
    const pipeline = await call(bridge, "/pipeline", {
      body: [
        ["SET", k("p"), "v"],
        ["GET", k("p")],
      ],
      headers: BASE64,
    });
    expect(pipeline.body).toEqual([{ result: "OK" }, { result: b64("v") }]);
  }, 10_000);

  test("bytes that are not UTF-8 round-trip in base64, and become U+FFFD without it", async () => {
    const bytes = new Uint8Array([0, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x24, 0xc3]);
    await direct(raw, "SET", k("bin"), bytes);
    const encoded = await call(bridge, "/", { body: ["GET", k("bin")], headers: BASE64 });
    expect(Buffer.from((encoded.body as { result: string }).result, "base64")).toEqual(Buffer.from(bytes));
    const plain = await call(bridge, "/", { body: ["GET", k("bin")] });
    expect((plain.body as { result: string }).result).toContain("\uFFFD");

    // The path form takes a raw request body as the value, bytes as sent.
    expect((await call(bridge, `/set/${k("bin2")}`, { body: bytes })).status).toBe(200);
    expect(Buffer.from((await direct(raw, "GET", k("bin2"))) as Uint8Array)).toEqual(Buffer.from(bytes));
  }, 10_000);
});
