// The gateway app a node serves, configured from the node's parts: actors, deliveries, auth, limits, the console.
import type { Hono, MiddlewareHandler } from "hono";
import { createApp, type GatewayApp, securityReporters } from "../edge/app.ts";
import type { GatewayEnv } from "../edge/env.ts";
import { localInspector, topologyOf } from "../edge/console/local.ts";
import type { ApiKeyStore } from "../edge/middleware/auth/api-key-store.ts";
import { remoteKeySet } from "../edge/middleware/auth/jwks.ts";
import { jwtClaimChecks } from "../edge/middleware/auth/jwt.ts";
import { clientIp } from "../edge/middleware/client-ip/index.ts";
import { rateLimit } from "../edge/middleware/rate-limit/index.ts";
import type { DependencyCheck } from "../edge/routes/health.ts";
import { type Dependencies, guardedPort } from "../shared/resilience/index.ts";
import { errorFields, type Logger, type SecurityEvents } from "../shared/telemetry/log/index.ts";
import type { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import type { NodeActors } from "./node-actors.ts";
import type { HttpTraffic } from "./node-listener.ts";
import type { NodeExtension, NodeOptions } from "./node-options.ts";
import type { NodeQueue } from "./node-queue.ts";
import type { NodeRateLimit } from "./node-rate-limit.ts";
import type { JwtSecret } from "./secrets.ts";
import type { NodeTracing } from "./tracing.ts";

export interface NodeAppParts {
  options: NodeOptions;
  actors: NodeActors;
  extension: NodeExtension;
  queue: NodeQueue;
  /** The node's public URL, known once it serves. */
  publicUrl: () => string;
  secret: JwtSecret;
  apiKeys: ApiKeyStore;
  rateLimit: NodeRateLimit;
  readiness: DependencyCheck[];
  traffic: HttpTraffic;
  dependencies: Dependencies;
  metrics: EdgewiseMetrics;
  /** Refuses new orders while the embedded broker is too far behind (node-load.ts); none when it is off. */
  admission: MiddlewareHandler<GatewayEnv> | undefined;
  securityEvents: SecurityEvents;
  /** Ends the console's live streams when the node stops. */
  consoleShutdown: AbortController;
  tracing: NodeTracing | undefined;
  /** POST /v1/backup: the node's online backup (backup/online-route.ts). */
  backup: Hono<GatewayEnv>;
  logger: Logger;
}

export function createNodeApp(parts: NodeAppParts): GatewayApp {
  const { options, extension, secret, apiKeys, readiness, traffic, dependencies, metrics } = parts;
  const { securityEvents, consoleShutdown, tracing, logger } = parts;
  const { config } = options;
  const { actors, host, actorDb } = parts.actors;
  const { queue, queueFetch } = parts.queue;
  const { limiter } = parts.rateLimit;
  const security = securityReporters(securityEvents.emit);
  return createApp({
    actors,
    consumers: extension.consumers ?? [],
    routes: [...(extension.routes ?? []), parts.backup],
    ...(host
      ? {
          delivery: {
            currentSigningKey: queue.currentSigningKey,
            nextSigningKey: queue.nextSigningKey,
            publicUrl: parts.publicUrl,
          },
        }
      : {}),
    ...(host && config.ACTOR_HOST_SECRET
      ? { actorHost: { secret: config.ACTOR_HOST_SECRET, previousSecret: config.ACTOR_HOST_PREVIOUS_SECRET } }
      : {}),
    clientIp: clientIp({
      trustedProxies: config.TRUSTED_PROXIES,
      forwardedHeader: config.TRUSTED_PROXY_HEADER,
      platform: options.platform,
    }),
    auth: {
      secret: secret.value,
      ...(config.JWT_PREVIOUS_SECRET ? { previousSecret: config.JWT_PREVIOUS_SECRET } : {}),
      // One key set for the API and the console's logins; a provider outage is logged, once per failed round.
      ...(config.JWT_JWKS_URL
        ? {
            jwks: remoteKeySet(config.JWT_JWKS_URL, {
              report: (error) =>
                logger.warn("JWKS: the key set could not be fetched; the last one answers up to 1 h", {
                  error: errorFields(error),
                }),
            }),
          }
        : {}),
      ...jwtClaimChecks(config),
    },
    // Verifying a key may query Postgres: behind its breaker, so a dead database answers 503 at once. `create` gets
    // the call's signal (its timeout's, with the request's): a key whose caller was answered 504 is rolled back.
    apiKeys: guardedPort<ApiKeyStore>(
      apiKeys,
      ["create", "find", "revoke", "list"],
      dependencies,
      "postgres",
      { create: 2 },
    ),
    rateLimit: rateLimit({
      limiterFor: () => limiter,
      onDecision: (decision, routeClass) => metrics.rateLimit(decision, routeClass),
      onDenied: security.onDenied,
    }),
    ...(parts.admission ? { admission: parts.admission } : {}),
    readiness,
    draining: () => traffic.draining,
    dependencies,
    metrics,
    ...(config.METRICS_TOKEN ? { metricsToken: config.METRICS_TOKEN } : {}),
    ...(config.METRICS_PREVIOUS_TOKEN ? { metricsPreviousToken: config.METRICS_PREVIOUS_TOKEN } : {}),
    // Rendered at most once a second: /metrics is public unless METRICS_TOKEN is set, and a render costs ms of CPU
    // and the broker's counts on the one Postgres pool.
    metricsReuseMs: 1_000,
    corsOrigins: config.CORS_ORIGINS,
    bodyLimitBytes: config.BODY_LIMIT,
    requestTimeoutMs: config.REQUEST_TIMEOUT,
    logger,
    accessLog: options.accessLog ?? (options.logger !== undefined || options.log === undefined),
    securityEvents: securityEvents.emit,
    ...(extension.adminEvents ? { adminEvents: extension.adminEvents } : {}),
    ...(options.console === false
      ? {}
      : {
          console: {
            topology: topologyOf(
              host ? options.actors : [],
              extension.consumers ?? [],
              options.subscriptions ?? [],
            ),
            breakers: () => dependencies.snapshots(),
            broker: {
              url: queue.url,
              token: queue.token,
              fetch: queueFetch,
              guard: (call, signal) => dependencies.call("broker", call, signal),
            },
            ...(extension.activity ? { events: extension.activity } : {}),
            ...(extension.describeTarget ? { describeTarget: extension.describeTarget } : {}),
            signal: consoleShutdown.signal,
            live: {
              onError: (error) =>
                logger.warn("console: the live event stream cannot read the activity log; retrying", {
                  error: errorFields(error),
                }),
            },
            ...(host ? { inspect: localInspector((address) => host.inspect(address), actorDb) } : {}),
            ...(options.console?.traces
              ? { traces: options.console.traces }
              : tracing
                ? { traces: tracing.console }
                : {}),
          },
        }),
  });
}
