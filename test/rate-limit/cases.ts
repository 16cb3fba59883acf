// The cases every Redis transport must pass: the exact fixed-window bound under concurrency, and outage policy.
import { afterAll, describe, expect, test } from "bun:test";
import { Ratelimit } from "@upstash/ratelimit";
import { Hono } from "hono";
import { EdgewiseError, problemContentType, toProblem } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../../edge/env.ts";
import {
  memoryLimiter,
  type RatelimitRedis,
  type RateLimiter,
  rateLimit,
  resilientLimiter,
  upstashLimiter,
} from "../../edge/middleware/rate-limit/index.ts";
import { awayFromBoundary, deleteKeys, elapsedSince, redisGet, runPrefix } from "./support.ts";

export interface StoreUnderTest {
  /** A client for the real Redis at 127.0.0.1:6379. */
  redis(): RatelimitRedis;
  /** A client for a Redis that is not there: a closed port. */
  unreachable(): RatelimitRedis;
  /** A client for a Redis that accepts and never answers. */
  hung(): RatelimitRedis;
}

const windowMs = 60_000;
const timeoutMs = 250;
/** What a call may take past `timeoutMs` on a busy two-core machine before it counts as hanging. */
const slackMs = 750;

function failing(redis: RatelimitRedis, onFailure: "open" | "closed", prefix: string): RateLimiter {
  return resilientLimiter(upstashLimiter({ redis, limit: 50, windowMs, prefix, timeoutMs }), {
    fallback: memoryLimiter({ limit: 2, windowMs }),
    onFailure,
    timeoutMs: timeoutMs * 4,
  });
}

function gateway(limiter: RateLimiter) {
  const app = new Hono<GatewayEnv>();
  app.use(async (c, next) => {
    c.set("clientIp", "198.51.100.1");
    c.set("principal", undefined);
    await next();
  });
  app.use(rateLimit({ limiterFor: () => limiter }));
  app.get("/v1/things", (c) => c.json({ ok: true }));
  app.onError((error, c) => {
    const problem = toProblem(error);
    return c.body(JSON.stringify(problem), problem.status as 500, { "content-type": problemContentType });
  });
  return app;
}

export function rateLimitStoreSuite(name: string, store: StoreUnderTest): void {
  const prefix = runPrefix(name);
  afterAll(async () => {
    await deleteKeys(prefix);
  });

  describe(`${name}: @upstash/ratelimit fixedWindow against the real Redis`, () => {
    test("200 concurrent calls for one identifier: exactly `limit` (50) allowed", async () => {
      await awayFromBoundary(windowMs, 10_000);
      const limiter = upstashLimiter({ redis: store.redis(), limit: 50, windowMs, prefix, timeoutMs: 5_000 });
      const bucket = Math.floor(Date.now() / windowMs);
      const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.limit("burst")));
      const allowed = decisions.filter((d) => d.success);
      expect(allowed).toHaveLength(50);
      expect(allowed.map((d) => d.remaining).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 50 }, (_, i) => i),
      );
      for (const d of decisions.filter((d) => !d.success))
        expect(d).toMatchObject({ reason: "limited", remaining: 0 });
      for (const d of decisions) expect(d).toMatchObject({ limit: 50, reset: (bucket + 1) * windowMs });
      // Every call of the burst reached Redis (INCRBY counts denied calls too)…
      expect(await redisGet(`${prefix}:burst:${bucket}`)).toBe("200");
      // …but once denied, the ephemeral cache answers this isolate without a round trip.
      const again = await Promise.all(Array.from({ length: 20 }, () => limiter.limit("burst")));
      expect(again.every((d) => !d.success && d.reason === "limited")).toBe(true);
      expect(await redisGet(`${prefix}:burst:${bucket}`)).toBe("200");
    }, 30_000);

    test("identifiers are counted apart", async () => {
      await awayFromBoundary(windowMs, 5_000);
      const limiter = upstashLimiter({ redis: store.redis(), limit: 2, windowMs, prefix, timeoutMs: 5_000 });
      const a = await Promise.all([1, 2, 3].map(() => limiter.limit("read:ip:198.51.100.1")));
      const b = await Promise.all([1, 2, 3].map(() => limiter.limit("read:ip:198.51.100.2")));
      expect(a.filter((d) => d.success)).toHaveLength(2);
      expect(b.filter((d) => d.success)).toHaveLength(2);
    }, 20_000);
  });

  describe(`${name}: Redis unreachable or hung`, () => {
    const cases = [
      ["unreachable (closed port)", () => store.unreachable()],
      ["hung (accepts, never answers)", () => store.hung()],
    ] as const;

    for (const [what, client] of cases) {
      test(`${what}, open: the local fallback decides, and no call outlives the timeout`, async () => {
        const limiter = failing(client(), "open", prefix);
        const started = performance.now();
        const decisions = await Promise.all(Array.from({ length: 20 }, () => limiter.limit("outage")));
        expect(elapsedSince(started)).toBeLessThan(timeoutMs + slackMs);
        expect(decisions.every((d) => d.reason === "fallback")).toBe(true);
        expect(decisions.filter((d) => d.success)).toHaveLength(2);
      }, 10_000);

      test(`${what}, closed: unavailable, and no call outlives the timeout`, async () => {
        const limiter = failing(client(), "closed", prefix);
        const started = performance.now();
        const decisions = await Promise.all(Array.from({ length: 20 }, () => limiter.limit("outage")));
        expect(elapsedSince(started)).toBeLessThan(timeoutMs + slackMs);
        expect(decisions.every((d) => d.reason === "unavailable" && !d.success)).toBe(true);
      }, 10_000);
    }

    test("over HTTP: closed → 503 with Retry-After; open → served by the fallback", async () => {
      const closed = gateway(failing(store.unreachable(), "closed", prefix));
      let started = performance.now();
      const refused = await closed.request("/v1/things");
      expect(elapsedSince(started)).toBeLessThan(timeoutMs + slackMs);
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("1");
      expect(((await refused.json()) as { code: string }).code).toBe("unavailable");

      const open = gateway(failing(store.unreachable(), "open", prefix));
      started = performance.now();
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await open.request("/v1/things")).status);
      expect(elapsedSince(started)).toBeLessThan(3 * (timeoutMs + slackMs));
      expect(statuses).toEqual([200, 200, 429]);
    }, 15_000);

    test("why the adapter exists: the library alone answers a hung store with success", async () => {
      const ratelimit = new Ratelimit({
        redis: store.hung(),
        limiter: Ratelimit.fixedWindow(1, "60 s"),
        prefix,
        timeout: timeoutMs,
        ephemeralCache: false,
        enableTelemetry: false,
      });
      const raw = await Promise.all([1, 2, 3].map(() => ratelimit.limit("hung")));
      expect(raw.map((r) => [r.success, r.reason, r.limit])).toEqual([
        [true, "timeout", 0],
        [true, "timeout", 0],
        [true, "timeout", 0],
      ]);
      const adapted = upstashLimiter({ redis: store.hung(), limit: 1, windowMs, prefix, timeoutMs });
      const error = await adapted.limit("hung").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EdgewiseError);
      expect((error as EdgewiseError).code).toBe("unavailable");
    }, 10_000);
  });
}
