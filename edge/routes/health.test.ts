// /readyz answers within its bound even when a check hangs, and a flood of probes runs the checks once.
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

test("a flood of /readyz runs the checks once: concurrent probes share them, and a healthy result is reused", async () => {
  let calls = 0;
  let up = true;
  const app = new Hono().route(
    "/",
    healthRoutes({
      // 1 s, so that 50 probes fit in it on a loaded machine too (a stall of 200 ms broke a 200 ms window).
      reuseMs: 1_000,
      checks: [
        {
          name: "postgres",
          critical: true,
          check: async () => {
            calls++;
            await Bun.sleep(20);
            if (!up) throw new Error("connection refused");
          },
        },
      ],
    }),
  );
  const statuses = await Promise.all(Array.from({ length: 200 }, () => app.request("/readyz")));
  expect(statuses.map((response) => response.status)).toEqual(Array(200).fill(200));
  expect(calls).toBe(1);
  // Within reuseMs of a healthy result: the same answer, no new check.
  for (let i = 0; i < 50; i++) expect((await app.request("/readyz")).status).toBe(200);
  expect(calls).toBe(1);

  // After it, checks run again; a failure is never reused, so recovery shows at the next probe.
  await Bun.sleep(1_050);
  up = false;
  expect((await app.request("/readyz")).status).toBe(503);
  expect((await app.request("/readyz")).status).toBe(503);
  expect(calls).toBe(3);
  up = true;
  expect((await app.request("/readyz")).status).toBe(200);
  expect(calls).toBe(4);
});
