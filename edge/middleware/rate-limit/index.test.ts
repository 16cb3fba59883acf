// rateLimit() in process with app.request(): headers, 429/503 problems, keys per subject, IP and route class.
import { beforeEach, describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { ManualClock } from "../../../shared/clock/index.ts";
import { EdgewiseError, problemContentType, toProblem } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";
import { clientIp } from "../client-ip/index.ts";
import {
  byRoute,
  ipKey,
  memoryLimiter,
  type RateLimiter,
  type RateLimitOptions,
  rateLimit,
  resilientLimiter,
} from "./index.ts";

const windowMs = 60_000;
let clock: ManualClock;
beforeEach(() => {
  // 15 s into a window: RateLimit-Reset is 45.
  clock = new ManualClock(1_000 * windowMs + 15_000);
});

/** The gateway's order: client IP → auth (a test stand-in: `x-test-sub`) → rate limit → routes; app.ts's error handler. */
function gateway(options: Partial<RateLimitOptions> & { limit?: number; trustedProxies?: string[] } = {}) {
  const { limit = 3, trustedProxies = [], ...rest } = options;
  const app = new Hono<GatewayEnv>();
  app.use(clientIp({ platform: "bun", trustedProxies }));
  app.use(async (c, next) => {
    const sub = c.req.header("x-test-sub");
    c.set("principal", sub ? { sub, scopes: new Set<string>(), via: "jwt" } : undefined);
    await next();
  });
  app.use(rateLimit({ limiterFor: () => memoryLimiter({ limit, windowMs, clock }), clock, ...rest }));
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/v1/things/:id", (c) => c.json({ id: c.req.param("id") }));
  app.post("/v1/things", (c) => c.json({ ok: true }, 201));
  app.post("/v1/search", (c) => c.json({ items: [] }));
  app.get("/v1/raw", () => new Response("raw"));
  app.get("/v1/missing", () => {
    throw new EdgewiseError("not_found", "no such thing");
  });
  app.onError((error, c) => {
    const problem = toProblem(error, c.req.path);
    return c.body(JSON.stringify(problem), problem.status as 500, { "content-type": problemContentType });
  });
  const call = (path: string, init: { method?: string; sub?: string; ip?: string; xff?: string } = {}) =>
    app.request(
      path,
      {
        method: init.method ?? "GET",
        headers: {
          ...(init.sub ? { "x-test-sub": init.sub } : {}),
          ...(init.xff ? { "x-forwarded-for": init.xff } : {}),
        },
      },
      { remoteAddress: init.ip ?? "203.0.113.1" },
    );
  return { app, call };
}

const rate = (res: Response) => [
  res.headers.get("ratelimit-limit"),
  res.headers.get("ratelimit-remaining"),
  res.headers.get("ratelimit-reset"),
];

async function spend(call: () => Response | Promise<Response>, times: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < times; i++) statuses.push((await call()).status);
  return statuses;
}

describe("headers", () => {
  test("on every response, consistent, counting down", async () => {
    const { call } = gateway();
    const responses = [await call("/v1/things/1"), await call("/v1/things/1"), await call("/v1/things/1")];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(responses.map(rate)).toEqual([
      ["3", "2", "45"],
      ["3", "1", "45"],
      ["3", "0", "45"],
    ]);
    expect(responses[0]!.headers.get("retry-after")).toBeNull();
  });

  test("429 after the limit: a problem with Retry-After and the same RateLimit-* headers", async () => {
    const { call } = gateway();
    await spend(() => call("/v1/things/1"), 3);
    clock.advance(4_500);
    const res = await call("/v1/things/1");
    expect(res.status).toBe(429);
    expect(res.headers.get("content-type")).toBe(problemContentType);
    expect(res.headers.get("retry-after")).toBe("41"); // 40.5 s left, rounded up
    expect(rate(res)).toEqual(["3", "0", "41"]);
    const problem = (await res.json()) as { code: string; status: number };
    expect(problem).toMatchObject({ code: "rate_limited", status: 429 });
  });

  test("the window rolls over: allowed again", async () => {
    const { call } = gateway();
    await spend(() => call("/v1/things/1"), 4);
    clock.advance(45_000);
    const res = await call("/v1/things/1");
    expect(res.status).toBe(200);
    expect(rate(res)).toEqual(["3", "2", "60"]);
  });

  test("also on a route's error response and on a route's own Response", async () => {
    const { call } = gateway();
    const missing = await call("/v1/missing");
    expect(missing.status).toBe(404);
    expect(rate(missing)).toEqual(["3", "2", "45"]);
    const raw = await call("/v1/raw");
    expect(await raw.text()).toBe("raw");
    expect(rate(raw)).toEqual(["3", "1", "45"]);
  });

  test("exempt paths are neither limited nor labelled", async () => {
    const { call } = gateway({ limit: 1 });
    const statuses = await spend(() => call("/healthz"), 5);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect((await call("/healthz")).headers.get("ratelimit-limit")).toBeNull();
  });
});

describe("keys", () => {
  test("per subject: two callers behind one IP have their own budgets", async () => {
    const { call } = gateway({ limit: 2 });
    expect(await spend(() => call("/v1/things/1", { sub: "alice" }), 3)).toEqual([200, 200, 429]);
    expect(await spend(() => call("/v1/things/1", { sub: "bob" }), 2)).toEqual([200, 200]);
  });

  test("per subject: one caller from many IPs has one budget", async () => {
    const { call } = gateway({ limit: 2 });
    const ips = ["198.51.100.1", "198.51.100.2", "2001:db8::1"];
    const statuses = [];
    for (const ip of ips) statuses.push((await call("/v1/things/1", { sub: "alice", ip })).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  test("anonymous callers are keyed by client IP, apart from signed-in callers", async () => {
    const { call } = gateway({ limit: 2 });
    expect(await spend(() => call("/v1/things/1", { ip: "198.51.100.7" }), 3)).toEqual([200, 200, 429]);
    expect((await call("/v1/things/1", { ip: "198.51.100.8" })).status).toBe(200);
    expect((await call("/v1/things/1", { ip: "::ffff:198.51.100.7" })).status).toBe(429);
    expect((await call("/v1/things/1", { ip: "198.51.100.7", sub: "alice" })).status).toBe(200);
  });

  test("anonymous IPv6 callers share their /64", async () => {
    const { call } = gateway({ limit: 2 });
    await call("/v1/things/1", { ip: "2001:db8:1:2::1" });
    await call("/v1/things/1", { ip: "2001:db8:1:2:ffff::9" });
    expect((await call("/v1/things/1", { ip: "2001:db8:1:2::abcd" })).status).toBe(429);
    expect((await call("/v1/things/1", { ip: "2001:db8:1:3::1" })).status).toBe(200);
    expect(ipKey("2001:db8:1:2:3:4:5:6")).toBe("2001:db8:1:2::/64");
    expect(ipKey("2001:db8:1:2:3:4:5:6", 128)).toBe("2001:db8:1:2:3:4:5:6");
    expect(ipKey("::ffff:10.0.0.1")).toBe("10.0.0.1");
  });

  test("route classes are independent: read and write budgets", async () => {
    const { call } = gateway({ limit: 2 });
    expect(await spend(() => call("/v1/things", { method: "POST", sub: "alice" }), 3)).toEqual([
      201, 201, 429,
    ]);
    expect(await spend(() => call("/v1/things/1", { sub: "alice" }), 2)).toEqual([200, 200]);
  });

  test("a route can have a class of its own", async () => {
    const seen: string[] = [];
    const { call } = gateway({
      limit: 1,
      classify: byRoute({ "POST /v1/search": "search" }),
      limiterFor: (routeClass) => {
        seen.push(routeClass);
        return memoryLimiter({ limit: 1, windowMs, clock });
      },
    });
    expect((await call("/v1/search", { method: "POST" })).status).toBe(200);
    expect((await call("/v1/things", { method: "POST" })).status).toBe(201);
    expect((await call("/v1/search", { method: "POST" })).status).toBe(429);
    expect(seen).toEqual(["search", "write"]); // each class's limiter asked for once
  });
});

describe("spoofing", () => {
  test("rotating X-Forwarded-For from an untrusted peer does not dodge the limit", async () => {
    const { call } = gateway({ limit: 2, trustedProxies: ["10.0.0.0/8"] });
    const statuses = [];
    for (let i = 1; i <= 5; i++) statuses.push((await call("/v1/things/1", { xff: `192.0.2.${i}` })).status);
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
  });

  test("from a trusted proxy, X-Forwarded-For names the client", async () => {
    const { call } = gateway({ limit: 2, trustedProxies: ["10.0.0.0/8"] });
    const viaProxy = (xff: string) => call("/v1/things/1", { ip: "10.0.0.5", xff });
    expect((await spend(() => viaProxy("192.0.2.1"), 3)).at(-1)).toBe(429);
    expect((await viaProxy("192.0.2.2")).status).toBe(200);
    // The client behind the proxy prepends a fake hop: the proxy's appended hop still decides.
    expect((await viaProxy("192.0.2.99, 192.0.2.1")).status).toBe(429);
  });
});

describe("a broken store", () => {
  const broken: RateLimiter = { limit: () => Promise.reject(new Error("ECONNREFUSED 127.0.0.1:1")) };

  test("open: the fallback limits, with its headers", async () => {
    const { call } = gateway({
      limiterFor: () =>
        resilientLimiter(broken, {
          fallback: memoryLimiter({ limit: 2, windowMs, clock }),
          onFailure: "open",
          report: () => {},
        }),
    });
    const responses = [await call("/v1/things/1"), await call("/v1/things/1"), await call("/v1/things/1")];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(rate(responses[0]!)).toEqual(["2", "1", "45"]);
  });

  test("closed: 503 problem with a short Retry-After, within the timeout when the store hangs", async () => {
    const hanging: RateLimiter = { limit: () => new Promise(() => {}) };
    const { call } = gateway({
      limiterFor: () =>
        resilientLimiter(hanging, {
          fallback: memoryLimiter({ limit: 2, windowMs, clock }),
          onFailure: "closed",
          timeoutMs: 50,
          retryAfterMs: 1_000,
          clock,
        }),
    });
    const started = performance.now();
    const res = await call("/v1/things/1");
    // Below the 1 s default timeout (a timeoutMs left unused fails), with 650 ms over the 50 ms one for a loaded
    // machine's stalls.
    expect(performance.now() - started).toBeLessThan(700);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("ratelimit-limit")).toBeNull();
    expect(((await res.json()) as { code: string }).code).toBe("unavailable");
  });
});

describe("refused credentials", () => {
  /** client IP → the real auth middleware (HS256) with the limiter's refusal hooks → rate limit → a route. */
  async function withAuth(limit: number) {
    const { auth } = await import("../auth/index.ts");
    const limiter = rateLimit({ limiterFor: () => memoryLimiter({ limit, windowMs, clock }), clock });
    const app = new Hono<GatewayEnv>();
    app.use(clientIp({ platform: "bun", trustedProxies: [] }));
    app.use(auth({ secret: "a-secret-of-enough-length-0123456789", refusals: limiter.refusals }));
    app.use(limiter);
    app.get("/v1/things/:id", (c) => c.json({ id: c.req.param("id") }));
    app.onError((error, c) => {
      const problem = toProblem(error, c.req.path);
      return c.body(JSON.stringify(problem), problem.status as 500, { "content-type": problemContentType });
    });
    return (token: string, ip = "203.0.113.7", header = "authorization") =>
      app.request(
        "/v1/things/1",
        { headers: { [header]: header === "authorization" ? `Bearer ${token}` : token } },
        { remoteAddress: ip },
      );
  }

  test("its 429s carry the same RateLimit-* headers as any other 429, the lockout's too", async () => {
    const call = await withAuth(2);
    await call("bad-1");
    await call("bad-2");
    clock.advance(4_500);
    const spent = await call("bad-3"); // the refusal that ends the budget
    expect(spent.status).toBe(429);
    expect([...rate(spent), spent.headers.get("retry-after")]).toEqual(["2", "0", "41", "41"]);
    clock.advance(1_000);
    const locked = await call("ew_anything", undefined, "x-api-key"); // refused before any lookup
    expect(locked.status).toBe(429);
    expect([...rate(locked), locked.headers.get("retry-after")]).toEqual(["2", "0", "40", "40"]);
  });

  test("each refusal spends the address's budget; past it, 429 before any credential is checked", async () => {
    const call = await withAuth(3);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call(`not-a-jwt-${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const denied = await call("still-not-a-jwt");
    expect(denied.headers.get("retry-after")).toBe("45");
    // Another address is not affected, and the lockout ends with the window.
    expect((await call("bad", "198.51.100.1")).status).toBe(401);
    clock.advance(45_000);
    expect((await call("bad-again")).status).toBe(401);
  });

  test("a lockout ends with its window though the wall clock steps back an hour meanwhile", async () => {
    const call = await withAuth(1);
    expect((await call("bad-1")).status).toBe(401);
    expect((await call("bad-2")).status).toBe(429);
    clock.step(-3_600_000);
    clock.advance(44_000);
    const locked = await call("ew_anything", undefined, "x-api-key");
    expect([locked.status, locked.headers.get("retry-after")]).toEqual([429, "1"]);
    clock.advance(1_000);
    // Looked up again (and refused as unknown), no longer held by the lockout.
    expect((await call("ew_anything", undefined, "x-api-key")).status).toBe(401);
  });
});
