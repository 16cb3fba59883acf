// The bridge over a Redis that stops answering without closing the connection (a blackhole fault proxy in between).
import { expect, test } from "bun:test";
import { Redis } from "@upstash/redis";
import { Modes } from "../chaos/fault-proxy.ts";
import { call, uniquePrefix, useBridgeBehindProxy } from "./helpers.ts";

const prefix = uniquePrefix("blackhole");
const key = `${prefix}k`;
const REPLY_TIMEOUT_MS = 500;
const fixture = useBridgeBehindProxy(prefix, { replyTimeoutMs: REPLY_TIMEOUT_MS });

/** `POST /` with a JSON command. */
const command = (...args: string[]) => call(fixture.bridge, "/", { body: args, timeoutMs: 10_000 });

test("Redis silent: 503 {error} at the deadline, the dead connection is dropped, and the next request works", async () => {
  expect(await command("SET", key, "v")).toEqual({ status: 200, body: { result: "OK" } });
  fixture.proxy.setMode(Modes.blackhole);

  // Raw HTTP and the SDK (auto-pipelined, as the node uses it) both get an answer instead of waiting forever.
  const error = `ERR redis-bridge: Redis did not answer within ${REPLY_TIMEOUT_MS} ms; the connection was dropped, and the next request opens a new one`;
  expect(await command("GET", key)).toEqual({ status: 503, body: { error } });
  const sdk = new Redis({
    url: fixture.bridge.url,
    token: fixture.bridge.token,
    automaticDeserialization: false,
  });
  // A failed HTTP request, as Upstash's own 5xx answers are: UpstashError "<error>, command was: …".
  await expect(sdk.get(key)).rejects.toThrow(`${error}, command was:`);
  expect(fixture.logged.some((line) => line.includes("did not answer"))).toBe(true);

  // The bridge let go of the connection Redis stopped answering on; it does not wait for Redis to close it.
  const deadline = Date.now() + 5_000;
  while (fixture.proxy.stats().active > 0 && Date.now() < deadline) await Bun.sleep(20);
  expect(fixture.proxy.stats().active).toBe(0);

  const opened = fixture.proxy.stats().connections;
  fixture.proxy.setMode(Modes.pass);
  expect(await command("GET", key)).toEqual({ status: 200, body: { result: "v" } });
  expect(fixture.proxy.stats().connections).toBe(opened + 1);
}, 30_000);

test("a reply slower than usual but within the deadline is still answered", async () => {
  fixture.proxy.setMode(Modes.delay(REPLY_TIMEOUT_MS / 5));
  try {
    expect(await command("GET", key)).toEqual({ status: 200, body: { result: "v" } });
  } finally {
    fixture.proxy.setMode(Modes.pass);
  }
}, 30_000);
