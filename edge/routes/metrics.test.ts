// /metrics and /readyz show each breaker: its state, its calls by outcome and its transitions.
import { expect, test } from "bun:test";
import { ManualClock } from "../../shared/clock/index.ts";
import { Dependencies } from "../../shared/resilience/index.ts";
import { createApp } from "../app.ts";

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
