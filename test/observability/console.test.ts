// The console without a browser: who gets in, the headers it sends, and the trace waterfall from a traces port.
import { describe, expect, test } from "bun:test";
import type { ActorHost } from "../../actors/runtime/index.ts";
import { createApp } from "../../edge/app.ts";
import type { ConsoleOptions, ConsoleSpan } from "../../edge/console/index.tsx";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";

const secret = "console-test-secret-console-test-secret";
const topology: ConsoleOptions["topology"] = {
  actors: [
    { type: "order", messages: ["Place"] },
    { type: "inventory", messages: ["Put"] },
  ],
  consumers: ["readside"],
  subscriptions: [
    { event: "OrderPlaced", actor: "inventory" },
    { event: "OrderPlaced", actor: "readside" },
  ],
};
const t0 = 1_767_000_000_000;
const spans: ConsoleSpan[] = [
  { spanId: "a", name: "POST /v1/orders", kind: "SERVER", startTimeMs: t0, endTimeMs: t0 + 40 },
  { spanId: "b", parentSpanId: "a", name: "order turn", startTimeMs: t0 + 5, endTimeMs: t0 + 15 },
  {
    spanId: "c",
    parentSpanId: "b",
    name: "publish OrderPlaced",
    kind: "PRODUCER",
    startTimeMs: t0 + 12,
    endTimeMs: t0 + 14,
  },
  {
    spanId: "d",
    parentSpanId: "a",
    name: "billing",
    status: "ERROR",
    startTimeMs: t0 + 20,
    endTimeMs: t0 + 38,
  },
];

function app(extra: Partial<ConsoleOptions> = {}) {
  return createApp({
    actors: {} as unknown as ActorHost,
    auth: { secret },
    console: { topology, breakers: () => [], ...extra },
  });
}
const token = (scopes: string[]) => issueToken({ sub: "op", scopes, ttlSeconds: 600, secret });

describe("console access", () => {
  test("401 without a token, 403 without admin, 401 for a bad cookie", async () => {
    const gateway = app();
    const anonymous = await gateway.request("/_console");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toContain("text/html");
    const reader = await token(["orders:read"]);
    expect(
      (await gateway.request("/_console", { headers: { authorization: `Bearer ${reader}` } })).status,
    ).toBe(403);
    const forged = await gateway.request("/_console", { headers: { cookie: "edgewise_console=not-a-jwt" } });
    expect(forged.status).toBe(401);
    expect(forged.headers.get("set-cookie")).toContain("edgewise_console=;");
  });

  test("?token= sets an HttpOnly SameSite=Strict cookie and redirects without the token", async () => {
    const gateway = app();
    const admin = await token(["admin"]);
    const login = await gateway.request(`/_console/actors/order/x?token=${admin}&a=1`);
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/_console/actors/order/x?a=1");
    const cookie = login.headers.get("set-cookie") ?? "";
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/_console");
    const page = await gateway.request("/_console", { headers: { cookie: cookie.split(";")[0] as string } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("content-security-policy")).not.toContain("unsafe-inline");
    const html = await page.text();
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).not.toContain("<script>");
    expect(html).toContain('name="csrf"');
  });

  test("the static script and styles need no token; the API keeps its strict CSP", async () => {
    const gateway = app();
    const script = await gateway.request("/_console/static/console.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("text/javascript");
    const health = await gateway.request("/healthz");
    expect(health.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});

describe("traces", () => {
  test("without a traces port: tracing not configured", async () => {
    const admin = await token(["admin"]);
    const html = await (
      await app().request("/_console", { headers: { authorization: `Bearer ${admin}` } })
    ).text();
    expect(html).toContain("tracing not configured");
  });

  test("with one: recent traces, and each as a waterfall in tree order", async () => {
    const gateway = app({
      traces: {
        recentTraces: () => [
          { traceId: "t1", name: "POST /v1/orders", startTimeMs: t0, durationMs: 40, spanCount: 4 },
        ],
        spans: (traceId) => (traceId === "t1" ? spans : []),
      },
    });
    const headers = { authorization: `Bearer ${await token(["admin"])}` };
    const overview = await (await gateway.request("/_console", { headers })).text();
    expect(overview).toContain('href="/_console/traces/t1"');
    const waterfall = await gateway.request("/_console/traces/t1", { headers });
    expect(waterfall.status).toBe(200);
    const svg = await waterfall.text();
    const order = [...svg.matchAll(/data-span-id="(\w)"/g)].map((m) => m[1]);
    expect(order).toEqual(["a", "b", "c", "d"]);
    expect(svg).toContain("#d9534f"); // the failed span
    expect((await gateway.request("/_console/traces/nope", { headers })).status).toBe(404);
  });
});
