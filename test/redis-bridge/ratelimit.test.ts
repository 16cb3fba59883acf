// @upstash/ratelimit over the bridge: under 200 concurrent limit() calls, exactly the documented number pass.
//
// ephemeralCache: false — the cache only ever refuses more (after a refusal it answers "cacheBlock" locally), so
// with it on a later call would not reach the bridge; off, every call is decided by the Lua script in Redis.
// timeout: 0 — the default 5 s timeout fails open (success: true, reason "timeout"), which would turn a slow or
// broken bridge into extra allowed requests instead of a failed test.
import { beforeAll, describe, expect, test } from "bun:test";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import type { RedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { uniquePrefix, useBridge } from "./helpers.ts";

type Limiter = ConstructorParameters<typeof Ratelimit>[0]["limiter"];
type Result = Awaited<ReturnType<Ratelimit["limit"]>>;

const WINDOW_MS = 10_000;
const CALLS = 200;
const prefix = uniquePrefix("ratelimit");
let bridge: RedisBridge;

useBridge(prefix, (fixture) => {
  ({ bridge } = fixture);
});

/** The windows are epoch-aligned; start a burst with at least `needMs` left in the current one. */
async function awayFromBoundary(needMs = 3000): Promise<void> {
  const left = WINDOW_MS - (Date.now() % WINDOW_MS);
  if (left < needMs) await Bun.sleep(left + 50);
}

async function burst(ratelimit: Ratelimit, identifier: string) {
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: CALLS }, () => ratelimit.limit(identifier)));
  return { results, started, finished: Date.now() };
}

/** Exactly `limit` pass, their `remaining` counts down limit-1 … 0, and everyone sees the same limit and reset. */
function expectExactly(results: Result[], limit: number): void {
  const allowed = results.filter((r) => r.success);
  expect(allowed.length).toBe(limit);
  expect(allowed.map((r) => r.remaining).sort((a, b) => a - b)).toEqual([...Array(limit).keys()]);
  for (const r of results) {
    expect(r.limit).toBe(limit);
    expect(r.reason).toBeUndefined(); // not "timeout" (fail-open), not "cacheBlock"
    if (!r.success) expect(r.remaining).toBe(0);
  }
  expect(new Set(results.map((r) => r.reset)).size).toBe(1);
}

describe.each([
  ["auto-pipelined", true],
  ["one request per command", false],
])("@upstash/ratelimit over the bridge (%s)", (mode, enableAutoPipelining) => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis({ url: bridge.url, token: bridge.token, enableTelemetry: false, enableAutoPipelining });
  });
  const make = (limiter: Limiter) =>
    new Ratelimit({
      redis,
      limiter,
      prefix: `${prefix}${mode}`,
      ephemeralCache: false,
      analytics: false,
      timeout: 0,
    });

  test("fixedWindow(10, 10 s): exactly 10 of 200 pass; reset is the window's end", async () => {
    const ratelimit = make(Ratelimit.fixedWindow(10, "10 s"));
    await awayFromBoundary();
    const { results, started, finished } = await burst(ratelimit, "fixed");
    expect(Math.floor(finished / WINDOW_MS)).toBe(Math.floor(started / WINDOW_MS)); // the window did not roll
    expectExactly(results, 10);
    expect(results[0]?.reset).toBe((Math.floor(started / WINDOW_MS) + 1) * WINDOW_MS);
    const left = await ratelimit.getRemaining("fixed");
    expect(left).toEqual({ remaining: 0, reset: results[0]?.reset ?? 0, limit: 10 });

    await ratelimit.resetUsedTokens("fixed"); // the reset script has no shebang: plain EVALSHA/EVAL
    expect((await ratelimit.limit("fixed")).success).toBe(true);
  }, 20_000);

  test("slidingWindow(10, 10 s): exactly 10 of 200 pass; identifiers do not share a budget", async () => {
    const ratelimit = make(Ratelimit.slidingWindow(10, "10 s"));
    await awayFromBoundary();
    const started = Date.now();
    const [a, b] = await Promise.all([burst(ratelimit, "slide-a"), burst(ratelimit, "slide-b")]);
    expect(Math.floor(Date.now() / WINDOW_MS)).toBe(Math.floor(started / WINDOW_MS));
    expectExactly(a.results, 10);
    expectExactly(b.results, 10);
    expect(a.results[0]?.reset).toBe((Math.floor(started / WINDOW_MS) + 1) * WINDOW_MS);
    expect((await ratelimit.getRemaining("slide-a")).remaining).toBe(0);
  }, 20_000);

  test("tokenBucket(5 per 10 s, max 10): exactly 10 of 200 pass; reset is one interval after the first", async () => {
    const ratelimit = make(Ratelimit.tokenBucket(5, "10 s", 10));
    const { results, started, finished } = await burst(ratelimit, "bucket");
    expectExactly(results, 10);
    const reset = results[0]?.reset ?? 0;
    expect(reset).toBeGreaterThanOrEqual(started + WINDOW_MS);
    expect(reset).toBeLessThanOrEqual(finished + WINDOW_MS);
    const left = await ratelimit.getRemaining("bucket");
    expect(left.remaining).toBe(0);
    expect(left.reset).toBe(reset);
  }, 20_000);
});
