// /metrics and /readyz show each breaker: its state, its calls by outcome and its transitions; a render is reused.
import { expect, test } from "bun:test";
import { ManualClock } from "../../shared/clock/index.ts";
import { Dependencies } from "../../shared/resilience/index.ts";
import { EdgewiseMetrics, MetricsRegistry } from "../../shared/telemetry/metrics/index.ts";
import { createApp } from "../app.ts";
import { errorHandler } from "../errors.ts";
import { metricsRoutes } from "./metrics.ts";

test("a tripped breaker shows as open in /metrics and /readyz, and closed again after a good probe", async () => {
  const clock = new ManualClock(0);
  const dependencies = new Dependencies({ clock });
  let up = false;
  const postgres = () =>
    dependencies.call("postgres", async () => {
      if (!up) throw new Error("connection refused");
    });
  const app = createApp({
    actors: {
      ask: async () => ({ duplicate: false, reply: null }),
      receive: async () => ({ duplicate: false, reply: null }),
    },
    dependencies,
    readiness: [
      {
        name: "postgres",
        critical: true,
        check: () => postgres(),
        breaker: () => dependencies.state("postgres"),
      },
    ],
  });
  for (let i = 0; i < 5; i++) await postgres().catch(() => {});

  const metrics = await (await app.request("/metrics")).text();
  expect(metrics).toContain('edgewise_breaker_state{dependency="postgres",state="open"} 1');
  expect(metrics).toContain('edgewise_breaker_state{dependency="postgres",state="closed"} 0');
  expect(metrics).toContain('edgewise_breaker_calls_total{dependency="postgres",outcome="failure"} 5');
  expect(metrics).toContain(
    'edgewise_breaker_transitions_total{dependency="postgres",from="closed",to="open"} 1',
  );

  const ready = await app.request("/readyz");
  expect(ready.status).toBe(503);
  const body = (await ready.json()) as { dependencies: Record<string, { ok: boolean; breaker?: string }> };
  expect(body.dependencies.postgres).toMatchObject({ ok: false, breaker: "open" });

  up = true;
  clock.advance(5_000);
  expect((await app.request("/readyz")).status).toBe(200);
  expect(dependencies.state("postgres")).toBe("closed");
  expect(await (await app.request("/metrics")).text()).toContain(
    'edgewise_breaker_transitions_total{dependency="postgres",from="half-open",to="closed"} 1',
  );
});

test("with reuseMs, a flood of scrapes renders once per interval (in flight or within it); later ones see new values", async () => {
  const clock = new ManualClock(0);
  const registry = new MetricsRegistry();
  let reads = 0;
  registry.callbackGauge({
    name: "edgewise_test_source_reads",
    help: "How often the source was read.",
    observe: async (observe) => {
      await Bun.sleep(5);
      observe(++reads);
    },
  });
  const app = metricsRoutes({ registry, reuseMs: 1_000, clock, token: "scrape-token" });
  app.onError(errorHandler());
  const scrape = () => app.request("/metrics", { headers: { authorization: "Bearer scrape-token" } });
  const concurrent = await Promise.all(Array.from({ length: 50 }, async () => (await scrape()).text()));
  for (let i = 0; i < 50; i++) expect(await (await scrape()).text()).toBe(concurrent[0] as string);
  expect(reads).toBe(1);
  // The token is still checked on every scrape, reused or not.
  expect((await app.request("/metrics")).status).toBe(401);
  clock.advance(1_000);
  expect(await (await scrape()).text()).toContain("edgewise_test_source_reads 2");
  expect(reads).toBe(2);
});

test("createApp passes metricsReuseMs on: one collect however many scrapes", async () => {
  const metrics = new EdgewiseMetrics();
  let reads = 0;
  metrics.observeOutbox(() => ({ pending: ++reads, oldestAgeMs: 0 }));
  const app = createApp({
    actors: {
      ask: async () => ({ duplicate: false, reply: null }),
      receive: async () => ({ duplicate: false, reply: null }),
    },
    metrics,
    metricsReuseMs: 60_000,
  });
  for (let i = 0; i < 20; i++) expect((await app.request("/metrics")).status).toBe(200);
  expect(reads).toBe(1);
});

test("a wall clock stepped back an hour does not freeze the reused scrape", async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const registry = new MetricsRegistry();
  let reads = 0;
  registry.callbackGauge({
    name: "edgewise_test_source_reads",
    help: "How often the source was read.",
    observe: (observe) => observe(++reads),
  });
  const app = metricsRoutes({ registry, reuseMs: 1_000, clock });
  expect(await (await app.request("/metrics")).text()).toContain("edgewise_test_source_reads 1");
  clock.step(-3_600_000);
  clock.advance(1_000);
  expect(await (await app.request("/metrics")).text()).toContain("edgewise_test_source_reads 2");
});
