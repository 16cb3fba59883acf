// GET /metrics: every instrument of the node in Prometheus text (HTTP, actors, messaging, breakers, limits, caches).
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import { type Clock, systemClock } from "../../shared/clock/index.ts";
import { timingSafeEqual } from "../../shared/crypto/hmac.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import {
  type MetricsRegistry,
  prometheusContentType,
  renderPrometheus,
} from "../../shared/telemetry/metrics/index.ts";
import type { GatewayEnv } from "../env.ts";
import { bearerToken } from "../middleware/auth/index.ts";
import type { JwtVerifier } from "../middleware/auth/jwt.ts";
import { requireScope } from "../middleware/auth/principal.ts";
import { problem, publicRoute, unauthorized } from "../openapi.ts";

export interface MetricsRouteOptions {
  registry: MetricsRegistry;
  /**
   * When set, a scrape must send `Authorization: Bearer <token>` (API.md: "none, or admin where configured").
   * The route sits before authentication, so a scraper needs no JWT, only this shared secret.
   */
  token?: string;
  /**
   * With `token`, during a rotation of it (METRICS_PREVIOUS_TOKEN): the token being replaced, accepted beside it so
   * scrapers can move to the new one at any time before it is unset.
   */
  previousToken?: string | undefined;
  /**
   * With `token`: also admits a Bearer JWT with the `admin` scope (API.md's "admin where configured"), checked
   * by this verifier. JWTs only: they are checked in memory, while an API key would cost a store lookup on a
   * route that comes before the rate limit.
   */
  verifyJwt?: JwtVerifier | undefined;
  /**
   * A scrape within this many ms of the last render gets that render again, and scrapes arriving during a render
   * share it. Default 0: every scrape renders. See `reusedRender`.
   */
  reuseMs?: number;
  clock?: Clock;
}

/**
 * The scrape's text, rendered at most once per `reuseMs`. A render collects every instrument (each callback source
 * too: the broker's counts on Postgres, the outbox's on SQLite) and writes a few hundred KB of text, several ms of
 * CPU, while /metrics sits before the rate limit and needs no credential unless METRICS_TOKEN is set: without the
 * reuse, anyone could make a node render it thousands of times a second. A scraper every few seconds or more (as
 * Prometheus and the OTLP push are) sees the same values as before, at most `reuseMs` old. Measured in monotonic time:
 * in wall time, a clock stepped back an hour served the same text, every counter frozen, for the hour.
 */
function reusedRender(registry: MetricsRegistry, reuseMs: number, clock: Clock): () => Promise<string> {
  const render = async () => renderPrometheus(await registry.collect());
  if (reuseMs <= 0) return render;
  let last: { text: string; at: number } | undefined;
  let rendering: Promise<string> | undefined;
  return () => {
    if (last && clock.monotonic() - last.at < reuseMs) return Promise.resolve(last.text);
    rendering ??= (async () => {
      const at = clock.monotonic();
      try {
        const text = await render();
        last = { text, at };
        return text;
      } finally {
        rendering = undefined;
      }
    })();
    return rendering;
  };
}

export function metricsRoutes(options: MetricsRouteOptions): Hono<GatewayEnv> {
  const { registry, token } = options;
  // Every accepted header is compared, whichever matches: the time taken says nothing about which one did.
  const accepted = token
    ? [token, ...(options.previousToken ? [options.previousToken] : [])].map((t) => `Bearer ${t}`)
    : [];
  const admitted = (authorization: string) =>
    accepted.map((expected) => timingSafeEqual(authorization, expected)).includes(true);
  const scrape = reusedRender(registry, options.reuseMs ?? 0, options.clock ?? systemClock);
  const app = new Hono<GatewayEnv>();
  app.get(
    "/metrics",
    describeRoute({
      summary:
        "Prometheus metrics; when METRICS_TOKEN is configured, Bearer <METRICS_TOKEN> (or METRICS_PREVIOUS_TOKEN during its rotation) or an admin JWT",
      tags: ["operations"],
      ...(token ? {} : publicRoute),
      responses: {
        200: {
          description: "Prometheus text format",
          content: { [prometheusContentType]: { schema: { type: "string" } } },
        },
        ...(token
          ? {
              401: unauthorized("METRICS_TOKEN is set, and neither it nor a valid JWT was sent"),
              403: problem("A valid JWT without the admin scope"),
            }
          : {}),
      },
    }),
    async (c) => {
      const authorization = c.req.header("authorization") ?? "";
      if (token && !admitted(authorization)) await admitAdmin(authorization, options.verifyJwt);
      return c.body(await scrape(), 200, {
        "content-type": prometheusContentType,
      });
    },
  );
  return app;
}

/** A Bearer JWT with the admin scope passes; any other credential is 401, a valid one without admin 403. */
async function admitAdmin(authorization: string, verifyJwt: JwtVerifier | undefined): Promise<void> {
  const token = bearerToken(authorization);
  const outcome = token && verifyJwt ? await verifyJwt(token) : undefined;
  if (!outcome || !("principal" in outcome)) {
    throw new EdgewiseError("unauthorized", "/metrics needs the metrics token or an admin JWT");
  }
  requireScope(outcome.principal, "admin");
}
