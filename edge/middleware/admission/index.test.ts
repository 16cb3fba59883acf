// admission() in process with app.request(): a refusal's Retry-After is whole seconds, never under the catch-up time,
// and spread so a burst refused together does not come back together.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { problemContentType } from "../../../shared/errors/index.ts";
import type { GatewayEnv } from "../../env.ts";
import { errorHandler } from "../../errors.ts";
import { admission, jitteredRetryAfter, retryAfterSeconds } from "./index.ts";

/** A node `behindMs` behind with a 2 s limit, refusing `POST /v1/orders`, and the gateway's error handler. */
function node(behindMs: number, random?: () => number) {
  const app = new Hono<GatewayEnv>();
  app.use(
    admission({
      behindMs: () => behindMs,
      maxBehindMs: 2_000,
      startsWork: (method, path) => method === "POST" && path === "/v1/orders",
      ...(random ? { random } : {}),
    }),
  );
  app.post("/v1/orders", (c) => c.json({ ok: true }, 202));
  app.onError(errorHandler());
  return (init: RequestInit = { method: "POST" }) => app.request("/v1/orders", init);
}

test("a burst refused at one backlog is told different whole-second waits, none under the catch-up time", async () => {
  const base = retryAfterSeconds(6_000, 2_000);
  expect(base).toBe(5);
  const call = node(6_000);
  const waits = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const response = await call();
    expect(response.status).toBe(503);
    expect(response.headers.get("content-type")).toBe(problemContentType);
    waits.add(response.headers.get("retry-after") ?? "");
  }
  for (const wait of waits) expect(wait).toMatch(/^[0-9]+$/);
  const seconds = [...waits].map(Number);
  expect(Math.min(...seconds)).toBeGreaterThanOrEqual(base);
  expect(Math.max(...seconds)).toBeLessThanOrEqual(base + Math.ceil(base / 2));
  // 200 draws over 4 values: missing any is about 4 × (3/4)^200 likely.
  expect(seconds.sort((a, b) => a - b)).toEqual([5, 6, 7, 8]);
});

test("the jitter's bounds: at least 1 s of spread, at most half the base again, 1 to 45 in all", async () => {
  expect(jitteredRetryAfter(1, () => 0)).toBe(1);
  expect(jitteredRetryAfter(1, () => 0.999)).toBe(2);
  expect(jitteredRetryAfter(30, () => 0)).toBe(30);
  expect(jitteredRetryAfter(30, () => 0.999)).toBe(45);
  const refused = await node(120_000, () => 0.999)();
  expect(refused.headers.get("retry-after")).toBe("45");
  expect(((await refused.json()) as { code: string }).code).toBe("overloaded");
  // Not behind: the order passes.
  expect((await node(1_000)()).status).toBe(202);
});
