// The gateway's own middleware, in process (app.request): ids, headers, limits, validation, timeouts, errors.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { counterActor } from "../actors/examples/counter.ts";
import { LocalActorHost } from "../actors/hosts/local/index.ts";
import { openBunSqlite } from "../actors/hosts/local/sqlite-bun.ts";
import { sleeper } from "../test/conformance/fixtures.ts";
import { createApp } from "./app.ts";
import type { GatewayEnv } from "./env.ts";

const host = new LocalActorHost({
  actors: [counterActor, sleeper],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-app-")), "actors.db")),
});
afterAll(() => host.stop());

const extra = new Hono<GatewayEnv>();
extra.post("/test/nap", async (c) => {
  const { ms } = await c.req.json<{ ms: number }>();
  return c.json(
    (await host.ask({ type: "sleeper", key: "s" }, "Nap", { ms }, { signal: c.var.signal })).reply,
  );
});
extra.get("/test/boom", () => {
  throw new Error("database password is hunter2");
});

let ready = true;
const app = createApp({
  actors: host,
  routes: [extra],
  corsOrigins: ["https://shop.example"],
  bodyLimitBytes: 1024,
  requestTimeoutMs: 300,
  readiness: [
    { name: "store", critical: true, check: async () => {} },
    {
      name: "cache",
      critical: false,
      check: async () => {
        throw new Error("down");
      },
    },
    {
      name: "database",
      critical: true,
      check: async () => {
        if (!ready) throw new Error("down");
      },
    },
  ],
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  app.request(path, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });

describe("gateway app (in process)", () => {
  test("GET /healthz answers 200", async () => {
    const response = await app.request("/healthz");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  test("/readyz names each dependency, and a critical one down makes it 503", async () => {
    const up = await app.request("/readyz");
    expect(up.status).toBe(200);
    const body = (await up.json()) as { dependencies: Record<string, { ok: boolean }> };
    expect(body.dependencies.store?.ok).toBe(true);
    expect(body.dependencies.cache?.ok).toBe(false);
    ready = false;
    const down = await app.request("/readyz");
    ready = true;
    expect(down.status).toBe(503);
    expect(
      ((await down.json()) as { dependencies: Record<string, { ok: boolean }> }).dependencies.database?.ok,
    ).toBe(false);
  });

  test("request ids: generated, or kept when the caller's is sane", async () => {
    const generated = (await app.request("/healthz")).headers.get("x-request-id");
    expect(generated).toMatch(/^[A-Za-z0-9._~-]{21}$/);
    const kept = await app.request("/healthz", { headers: { "x-request-id": "trace-123" } });
    expect(kept.headers.get("x-request-id")).toBe("trace-123");
    const replaced = await app.request("/healthz", { headers: { "x-request-id": "<script>" } });
    expect(replaced.headers.get("x-request-id")).not.toBe("<script>");
  });

  test("secure headers on every response; CORS only for configured origins", async () => {
    const response = await app.request("/healthz", { headers: { origin: "https://shop.example" } });
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("strict-transport-security")).toContain("max-age=");
    expect(response.headers.get("access-control-allow-origin")).toBe("https://shop.example");
    // A browser reads only what is exposed: the 202's Location above all, and the ids and limits.
    const exposed = (response.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(",");
    for (const name of [
      "location",
      "x-request-id",
      "x-cache",
      "www-authenticate",
      "ratelimit-remaining",
      "retry-after",
    ])
      expect(exposed).toContain(name);
    const other = await app.request("/healthz", { headers: { origin: "https://evil.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await app.request("/v1/counters/a/increment", {
      method: "OPTIONS",
      headers: { origin: "https://shop.example", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(204);
    // An OPTIONS that asks nothing of CORS is no preflight: the route answers it, as without CORS.
    const plainOptions = await app.request("/v1/counters/a/increment", {
      method: "OPTIONS",
      headers: { origin: "https://shop.example" },
    });
    expect(plainOptions.status).toBe(405);
    expect((await app.request("/nope", { method: "OPTIONS" })).status).toBe(404);
  });

  test("an increment is durable, and an Idempotency-Key makes a retry return the same reply", async () => {
    expect(await (await post("/v1/counters/a/increment", '{"by":2}')).json()).toEqual({ count: 2 });
    const first = await (
      await post("/v1/counters/a/increment", '{"by":5}', { "idempotency-key": "k1" })
    ).json();
    const retry = await (
      await post("/v1/counters/a/increment", '{"by":5}', { "idempotency-key": "k1" })
    ).json();
    expect(first).toEqual({ count: 7 });
    expect(retry).toEqual({ count: 7 });
    expect(host.inspect({ type: "counter", key: "a" }).state).toEqual({ count: 7 });
  });

  test("bad input gets its exact status and problem+json, with field paths, and changes nothing", async () => {
    const rows: Array<[string, string, Record<string, string>, number, string, string?]> = [
      ["malformed JSON", "{not json", {}, 400, "request.invalid"],
      ["wrong type", '{"by":"x"}', {}, 400, "request.invalid", "by"],
      ["out of range", '{"by":0}', {}, 400, "request.invalid", "by"],
      ["unknown field (rejected, not stripped)", '{"by":1,"extra":true}', {}, 400, "request.invalid"],
      [
        "wrong content type",
        "by=1",
        { "content-type": "application/x-www-form-urlencoded" },
        415,
        "request.unsupported_media_type",
      ],
      ["oversized body", JSON.stringify({ by: 1, pad: "x".repeat(2048) }), {}, 413, "request.too_large"],
    ];
    for (const [name, body, headers, status, code, path] of rows) {
      const response = await post("/v1/counters/b/increment", body, headers);
      expect({ name, status: response.status }).toEqual({ name, status });
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      const problem = (await response.json()) as { code: string; errors?: Array<{ path: string }> };
      expect({ name, code: problem.code }).toEqual({ name, code });
      if (path) expect(problem.errors?.[0]?.path).toBe(path);
    }
    const badKey = await post("/v1/counters/b%20c/increment", "{}");
    expect(badKey.status).toBe(400);
    expect(((await badKey.json()) as { errors: Array<{ path: string }> }).errors[0]?.path).toBe("key");
    expect(host.inspect({ type: "counter", key: "b" }).state).toBeUndefined();
  });

  test("a request past its time gets 504; work still queued behind it is dropped, not run", async () => {
    const slow = post("/test/nap", '{"ms":600}');
    const queued = post("/test/nap", '{"ms":1}');
    const [first, second] = await Promise.all([slow, queued]);
    expect(first.status).toBe(504);
    expect(second.status).toBe(504);
    expect(((await second.json()) as { code: string }).code).toBe("timeout");
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The running turn is atomic and committed; the queued one never ran.
    expect(host.inspect({ type: "sleeper", key: "s" }).state).toEqual({ naps: 1 });
  });

  test("unknown routes are 404 problems; internal errors never leak their message", async () => {
    const missing = await app.request("/nope");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { code: string }).code).toBe("not_found");
    // `instance` is the path as sent, percent-encoding kept: a URI reference, never a decoded NUL or slash.
    for (const path of ["/nope/%00", "/nope/a%2Fb", "/nope/%E2%9C%93"]) {
      const problem = (await (await app.request(path)).json()) as { instance: string };
      expect(problem.instance).toBe(path);
    }
    const internal = await app.request("/_edgewise/anything");
    expect(internal.status).toBe(404);
    const boom = await app.request("/test/boom");
    expect(boom.status).toBe(500);
    const text = await boom.text();
    expect(text).not.toContain("hunter2");
    expect(JSON.parse(text)).toMatchObject({ code: "internal", title: "Internal error" });
  });

  test("a known path asked with a method it does not take: 405 problem with Allow, not 404", async () => {
    const cases: Array<[string, string, string]> = [
      ["POST", "/healthz", "GET, HEAD"],
      ["DELETE", "/test/nap", "POST"],
      ["GET", "/v1/counters/k1/increment", "POST"],
      ["PATCH", "/openapi.json", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const response = await app.request(path, { method });
      expect({ method, path, status: response.status, allow: response.headers.get("allow") }).toEqual({
        method,
        path,
        status: 405,
        allow,
      });
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect(await response.json()).toMatchObject({ status: 405, code: "method_not_allowed" });
    }
    // A path no route has stays a 404, whatever the method.
    expect((await app.request("/v1/counters/k1/nope", { method: "DELETE" })).status).toBe(404);
  });

  test("a known path with a trailing slash: a read is redirected there (308), any other method's 404 names it", async () => {
    for (const method of ["GET", "HEAD"]) {
      const redirected = await app.request("/v1/counters/k%20one/?x=1&y=%2F", { method });
      expect({ method, status: redirected.status, location: redirected.headers.get("location") }).toEqual({
        method,
        status: 308,
        location: "/v1/counters/k%20one?x=1&y=%2F",
      });
      expect(redirected.headers.get("cache-control")).toBe("no-store");
    }
    expect((await app.request("/healthz//")).headers.get("location")).toBe("/healthz");
    // Not redirected: a write (the redirect would have the client send its body again), and a path whose canonical
    // form takes no GET; both a 404 that names the path to use.
    for (const [method, path, canonical] of [
      ["POST", "/v1/counters/k1/increment/", "/v1/counters/k1/increment"],
      ["GET", "/v1/counters/k1/increment/", "/v1/counters/k1/increment"],
    ] as const) {
      const refused = await app.request(path, { method, body: method === "POST" ? "{}" : null });
      expect({ method, status: refused.status }).toEqual({ method, status: 404 });
      expect(refused.headers.get("location")).toBeNull();
      const problem = (await refused.json()) as { code: string; detail: string };
      expect(problem.code).toBe("not_found");
      expect(problem.detail).toContain(`the path is ${canonical}, without the trailing slash`);
    }
    // A path the API does not have stays a plain 404, and nothing redirects off this origin or to "/".
    for (const path of ["/nope/", "//evil.example/", "/", "///"]) {
      const response = await app.request(path);
      expect({ path, status: response.status, location: response.headers.get("location") }).toEqual({
        path,
        status: 404,
        location: null,
      });
    }
  });

  test("GET /openapi.json is OpenAPI 3.1 generated from the schemas the routes validate with", async () => {
    const spec = (await (await app.request("/openapi.json")).json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>
      >;
    };
    expect(spec.openapi).toBe("3.1.0");
    const increment = spec.paths["/v1/counters/{key}/increment"]?.post;
    expect(JSON.stringify(increment?.requestBody?.content["application/json"]?.schema)).toContain('"by"');
  });
});

describe("content type", () => {
  test("a JSON body without a Content-Type is refused, not read as {}", async () => {
    const response = await app.request("/v1/counters/ct/increment", { method: "POST", body: '{"by":3}' });
    expect(response.status).toBe(415);
    expect(host.inspect({ type: "counter", key: "ct" }).state).toBeUndefined();
  });
});

describe("authentication in the app", async () => {
  const { issueToken } = await import("./middleware/auth/tokens.ts");
  const secret = "a-jwt-secret-for-the-app-test-0123456789";
  const secured = createApp({ actors: host, auth: { secret } });

  test("no token on a route that needs a caller: 401 with WWW-Authenticate: Bearer", async () => {
    const response = await secured.request("/v1/counters/auth1");
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe("Bearer");
  });

  test("a bad token: 401 with the invalid_token challenge, and the actor is not touched", async () => {
    const response = await secured.request("/v1/counters/auth1", {
      headers: { authorization: "Bearer not.a.token" },
    });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
    expect(host.inspect({ type: "counter", key: "auth1" }).state).toBeUndefined();
  });

  test("a valid token reaches the actor", async () => {
    const token = await issueToken({ sub: "u1", scopes: [], ttlSeconds: 60, secret });
    const response = await secured.request("/v1/counters/auth1", {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ count: 0 });
  });
});
