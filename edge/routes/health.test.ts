// /readyz answers within its bound even when a dependency's check hangs and ignores its abort signal.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { healthRoutes } from "./health.ts";

test("a check blocked on a blackholed socket is reported as timed out, within the timeout", async () => {
  const app = new Hono().route(
    "/",
    healthRoutes({
      timeoutMs: 100,
      checks: [
        { name: "redis", critical: false, check: () => new Promise(() => {}) },
        { name: "postgres", critical: true, check: async () => {} },
      ],
    }),
  );
  const started = performance.now();
  const response = await app.request("/readyz");
  expect(performance.now() - started).toBeLessThan(1_000);
  expect(response.status).toBe(200);
  const body = (await response.json()) as { dependencies: Record<string, { ok: boolean; reason?: string }> };
  expect(body.dependencies.redis).toMatchObject({ ok: false, reason: "timed out" });
  expect(body.dependencies.postgres).toMatchObject({ ok: true });
});
