// GET /metrics: Prometheus text. Today the breakers (state, calls by outcome, transitions); issue 7 adds the rest.
import { Hono } from "hono";
import type { Dependencies } from "../../shared/resilience/index.ts";
import type { GatewayEnv } from "../env.ts";

const states = ["closed", "open", "half-open"] as const;

/** Label values escaped as the text format requires. */
const label = (value: string) =>
  value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

export function renderBreakerMetrics(dependencies: Dependencies): string {
  const lines: string[] = [
    "# HELP edgewise_breaker_state 1 for the state each dependency's circuit breaker is in.",
    "# TYPE edgewise_breaker_state gauge",
  ];
  const snapshots = dependencies.snapshots();
  for (const snapshot of snapshots) {
    for (const state of states) {
      lines.push(
        `edgewise_breaker_state{dependency="${label(snapshot.name)}",state="${state}"} ${snapshot.state === state ? 1 : 0}`,
      );
    }
  }
  lines.push(
    "# HELP edgewise_breaker_calls_total Calls through each breaker, by outcome.",
    "# TYPE edgewise_breaker_calls_total counter",
  );
  for (const snapshot of snapshots) {
    for (const [outcome, count] of Object.entries(snapshot.totals)) {
      lines.push(
        `edgewise_breaker_calls_total{dependency="${label(snapshot.name)}",outcome="${outcome}"} ${count}`,
      );
    }
  }
  lines.push(
    "# HELP edgewise_breaker_transitions_total State changes of each breaker.",
    "# TYPE edgewise_breaker_transitions_total counter",
  );
  for (const { name, from, to, count } of dependencies.transitionCounts()) {
    lines.push(
      `edgewise_breaker_transitions_total{dependency="${label(name)}",from="${from}",to="${to}"} ${count}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export function metricsRoutes(dependencies: Dependencies): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  app.get("/metrics", (c) =>
    c.body(renderBreakerMetrics(dependencies), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    }),
  );
  return app;
}
