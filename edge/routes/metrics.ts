// GET /metrics: every instrument of the node in Prometheus text (HTTP, actors, messaging, breakers, limits, caches).
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import { timingSafeEqual } from "../../shared/crypto/hmac.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import {
  type MetricsRegistry,
  prometheusContentType,
  renderPrometheus,
} from "../../shared/telemetry/metrics/index.ts";
import type { GatewayEnv } from "../env.ts";
import { publicRoute } from "../openapi.ts";

export interface MetricsRouteOptions {
  registry: MetricsRegistry;
  /**
   * When set, a scrape must send `Authorization: Bearer <token>` (API.md: "none, or admin where configured").
   * The route sits before authentication, so a scraper needs no JWT, only this shared secret.
   */
  token?: string;
}

export function metricsRoutes(options: MetricsRouteOptions): Hono<GatewayEnv> {
  const { registry, token } = options;
  const expected = token ? `Bearer ${token}` : undefined;
  const app = new Hono<GatewayEnv>();
  app.get(
    "/metrics",
    describeRoute({
      summary: "Prometheus metrics; Authorization: Bearer <METRICS_TOKEN> when one is configured",
      tags: ["operations"],
      ...(token ? {} : publicRoute),
      responses: { 200: { description: "Prometheus text format" } },
    }),
    async (c) => {
      if (expected && !timingSafeEqual(c.req.header("authorization") ?? "", expected)) {
        throw new EdgewiseError("unauthorized", "/metrics needs the metrics token");
      }
      return c.body(renderPrometheus(await registry.collect()), 200, {
        "content-type": prometheusContentType,
      });
    },
  );
  return app;
}
