// The Workers entry behind `wrangler dev` / deploy: the gateway app, with actors as SQLite-backed Durable Objects.
import { counterActor } from "../../actors/examples/counter.ts";
import { DurableObjectHost, durableActor } from "../../actors/hosts/cloudflare/index.ts";
import {
  deliveryFromEnv,
  qstashTransportFromEnv,
  queueLimitFromEnv,
  relayTransportFromEnv,
} from "../../actors/hosts/cloudflare/queue.ts";
import { limitReportingTransport } from "../../actors/hosts/cloudflare/queue-limit.ts";
import { type IsolateMetrics, isolateMetrics } from "../../actors/hosts/cloudflare/metrics.ts";
import { type TracingEnv, workerTracing } from "../../actors/hosts/cloudflare/tracing.ts";
import { deliveryPath } from "../../actors/queue/qstash-transport.ts";
import { guardedTransport } from "../../actors/runtime/index.ts";
import type { CoordinatedDependencies } from "../../actors/hosts/cloudflare/coordinated-dependencies.ts";
import { rotationWarnings } from "../../shared/config/rotation.ts";
import { EdgewiseError, isEdgewiseError, problemResponse } from "../../shared/errors/index.ts";
import { type AppOptions, createApp, securityReporters } from "../app.ts";
import type { RateLimitOptions } from "../middleware/rate-limit/index.ts";
import { apiSecurityHeaders } from "../middleware/secure-headers/index.ts";
import { newId } from "../../shared/ids/index.ts";
import { createLogger } from "../../shared/telemetry/log/index.ts";
import type { DependencyCheck } from "../routes/health.ts";
import { type BreakersEnv, brokerCheck, redisCheck, workerDependencies } from "./cloudflare-breakers.ts";
import { workerConsole, workerEvents } from "./cloudflare-console.ts";
import { configGuard } from "./config-guard.ts";
import {
  type CommerceEnv,
  CommerceOnWorkers,
  commerceSubscriptions,
  databaseUrl,
} from "./cloudflare-commerce.ts";
import {
  gatewayFromEnv,
  type RemoteActorsEnv,
  remoteActorHostFromEnv,
  workerConfig,
} from "./cloudflare-gateway.ts";

export { Inventory, Loyalty, Order } from "./cloudflare-commerce.ts";
export { BreakerCoordinator } from "./cloudflare-breakers.ts";

/** Bindings, and the variables of the queue, commerce and tracing (see wrangler.toml; secrets are marked there). */
interface Env extends CommerceEnv, BreakersEnv, RemoteActorsEnv, TracingEnv {
  COUNTER: DurableObjectNamespace;
}

/**
 * The example counter. With QSTASH_URL set, its relay publishes committed messages through QStash (or the local
 * broker); without it, its outbox waits durably. It publishes no commerce event, so the registry drops any.
 */
export const Counter = durableActor<Env>(counterActor, {
  transport: (env) => relayTransportFromEnv(env),
  subscriptions: commerceSubscriptions,
});

/** What every request of an isolate shares: bindings and variables are the same for all of them. */
interface Isolate {
  options: AppOptions;
  /** Deliveries to these types reach a Durable Object and never touch Postgres. */
  actorPaths: string[];
  /** With Postgres (DATABASE_URL or HYPERDRIVE): the commerce consumers and routes. */
  commerce: CommerceOnWorkers | undefined;
  /** Without commerce, one app serves every request. */
  app: ReturnType<typeof createApp> | undefined;
  /**
   * The isolate's breakers (Postgres, the broker, Redis, webhook hosts), shared with the other isolates through
   * the BreakerCoordinator objects: tick() at the start and end of each request syncs them in waitUntil.
   */
  dependencies: CoordinatedDependencies;
  /** /readyz's checks besides Postgres (whose check needs the request's pool). */
  readiness: DependencyCheck[];
  /** The isolate's instruments: served at /metrics, pushed over OTLP when configured (one registry for every
   * request, so the commerce app built per request adds to it instead of starting afresh). */
  metrics: IsolateMetrics;
}

// Built on the first request (never at module scope: workerd allows no I/O there, and `env` is only known per
// request). Nothing in it holds a socket: the Postgres pool is per request (see CommerceOnWorkers).
let isolate: Isolate | undefined;

function isolateFor(env: Env): Isolate {
  if (isolate) return isolate;
  const namespaces = {
    counter: env.COUNTER,
    order: env.ORDER,
    inventory: env.INVENTORY,
    loyalty: env.LOYALTY,
  };
  const dependencies = workerDependencies(env);
  const metrics = isolateMetrics(env, "gateway");
  // A self-hosted actor host over mutual TLS (ACTOR_HOST_URL), or the Durable Objects bound below.
  const actors = remoteActorHostFromEnv(env, dependencies) ?? new DurableObjectHost(namespaces);
  const delivery = deliveryFromEnv(env);
  // With commerce (below), 429s are security events in its activity log, as on a node.
  let commerce: CommerceOnWorkers | undefined;
  const onDenied: RateLimitOptions["onDenied"] = (denial, c) => {
    if (commerce) securityReporters(commerce.securityEvents.emit).onDenied(denial, c);
  };
  const config = workerConfig(env);
  // JSON lines on the console, as a node writes them (Workers Logs keeps each console call, with its level): one
  // access line per request at info, through the same request-id middleware and the same redaction.
  const logger = createLogger({ level: config.LOG_LEVEL });
  const gateway = gatewayFromEnv(env, dependencies, {
    onDenied,
    onDecision: (decision, routeClass) => metrics.metrics.rateLimit(decision, routeClass),
  });
  const url = databaseUrl(env);
  const options: AppOptions = {
    actors,
    ...(delivery ? { delivery } : {}),
    ...gateway,
    dependencies,
    metrics: metrics.metrics,
    logger,
    // The console (edge/entries/cloudflare-console.ts); with commerce, each request adds its activity log.
    console: workerConsole(config, gateway.auth, actors, dependencies, url !== undefined),
  };
  const redis = redisCheck(config, dependencies);
  const readiness: DependencyCheck[] = redis ? [redis] : [];
  if (url) {
    // The queue's answers to billing's relay, reported to the broker's coordinator as the objects' relays report theirs.
    const limit = queueLimitFromEnv(env);
    const transport = qstashTransportFromEnv(env, { onRateLimit: (until) => limit.observe(until) });
    if (!transport || !delivery) {
      throw new EdgewiseError(
        "config.invalid",
        "commerce (DATABASE_URL) needs the queue: QSTASH_URL, QSTASH_TOKEN, both signing keys and PUBLIC_URL",
      );
    }
    // While the broker's breaker is open, the billing relay keeps its outbox and the cron retries it.
    const guarded = limitReportingTransport(guardedTransport(transport, dependencies, "broker"), limit);
    commerce = new CommerceOnWorkers(config, url, guarded, actors, dependencies, metrics.metrics, logger);
    readiness.unshift(brokerCheck(env, dependencies, guarded, limit));
    metrics.metrics.observeQueueRateLimit(() => limit.rateLimitedUntil());
  }
  // A node says these at every start; an isolate, once, when its first request builds it (ACTOR_HOST_PREVIOUS_SECRET
  // is an actor host's: a Worker only signs, with ACTOR_HOST_SECRET).
  for (const warning of rotationWarnings(config, [
    "JWT_PREVIOUS_SECRET",
    "METRICS_PREVIOUS_TOKEN",
    "CONSOLE_SESSION_PREVIOUS_SECRET",
  ]))
    logger.warn(warning);
  isolate = {
    options,
    actorPaths: Object.keys(namespaces).map((type) => deliveryPath({ type, key: "" })),
    commerce,
    app: commerce ? undefined : createApp({ ...options, readiness }),
    dependencies,
    readiness,
    metrics,
  };
  return isolate;
}

/** Everything but health checks, metrics and deliveries to actors may query Postgres, so needs its tables. */
function needsTables(path: string, worker: Isolate): boolean {
  if (path === "/healthz" || path === "/readyz" || path === "/metrics") return false;
  return !worker.actorPaths.some((prefix) => path.startsWith(prefix));
}

/** One request. With tracing, `ctx` tracks its waitUntil promises: the spans are exported once they settle. */
async function handle(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const worker = isolateFor(env);
  const { dependencies } = worker;
  // The breakers sync with their coordinators in this request's background, never in its way.
  const waitUntil = (promise: Promise<unknown>) => ctx.waitUntil(promise);
  dependencies.tick(waitUntil);
  try {
    if (!worker.commerce) return await (worker.app as ReturnType<typeof createApp>).fetch(request, env, ctx);
    // The commerce parts hold this request's pool, so the app that routes to them is built per request too.
    const scope = worker.commerce.open(ctx);
    try {
      const app = createApp({
        ...worker.options,
        // Inside the app, so that a Postgres outage is answered with its headers (CORS included) and counted in its
        // metrics; before authentication and the delivery endpoint, which may need the tables (API keys, billing).
        prepare: (c) => (needsTables(c.req.path, worker) ? scope.ready() : undefined),
        apiKeys: scope.apiKeys,
        apiKeyVerifier: worker.commerce.apiKeyVerifier,
        securityEvents: worker.commerce.securityEvents.emit,
        // API keys created and revoked, and the console's dead letters, as on a node (`admin.*`).
        adminEvents: scope.system.adminEvents,
        consumers: scope.system.consumers,
        routes: [scope.system.routes],
        ...(worker.options.console
          ? {
              console: {
                ...worker.options.console,
                events: workerEvents(scope.system.activity, dependencies),
                describeTarget: scope.system.describeTarget,
              },
            }
          : {}),
        readiness: [
          {
            name: "postgres",
            critical: true,
            check: () => scope.ping(),
            breaker: () => dependencies.state("postgres"),
          },
          ...worker.readiness,
        ],
      });
      return await app.fetch(request, env, ctx);
    } catch (error) {
      // Outside the app (it could not be built): as its error handler does, a breaker's fast failure says when to
      // come back, with the API's security headers and a request id a caller can quote.
      const retryAfter = isEdgewiseError(error) ? error.meta?.retryAfterSeconds : undefined;
      return problemResponse(error, {
        instance: new URL(request.url).pathname,
        headers: {
          ...Object.fromEntries(apiSecurityHeaders),
          "x-request-id": newId(),
          ...(typeof retryAfter === "number" ? { "retry-after": String(retryAfter) } : {}),
        },
      });
    } finally {
      // The security events this request reported are written after its answer, on connections of their own.
      ctx.waitUntil(worker.commerce.securityEvents.settled());
      scope.close();
    }
  } finally {
    dependencies.tick(waitUntil);
    worker.metrics.pushIfDue(waitUntil);
  }
}

/**
 * The cron trigger ([triggers] in wrangler.toml): drains what the relay after each commit left in the billing
 * outbox (a failed publish backing off, a commit that landed after its request's pool ended), and runs the
 * retentions.
 */
async function drain(env: Env, ctx: ExecutionContext): Promise<void> {
  const { commerce, dependencies } = isolateFor(env);
  if (!commerce) return;
  const waitUntil = (promise: Promise<unknown>) => ctx.waitUntil(promise);
  dependencies.tick(waitUntil);
  const scope = commerce.open(ctx);
  try {
    await scope.ready();
    await scope.drainBilling();
    await commerce.pruneActivity(Date.now());
    await commerce.pruneWebhookAttempts(Date.now());
    await commerce.pruneInboundIds(Date.now());
  } finally {
    scope.close();
    dependencies.tick(waitUntil);
    isolateFor(env).metrics.pushIfDue(waitUntil);
  }
}

/** A variable missing or malformed: problem+json naming it, logged once, instead of workerd's 1101 page. */
const guard = configGuard();

export default {
  // With OTEL_EXPORTER_OTLP_ENDPOINT, the isolate's tracing records the request and exports it in waitUntil.
  fetch(request, env, ctx) {
    return guard.fetch(request, async () => {
      const tracing = workerTracing(env);
      if (!tracing) return handle(request, env, ctx);
      return tracing.then((on) => on.around(ctx, (traced) => handle(request, env, traced)));
    });
  },

  scheduled(_controller, env, ctx) {
    return guard.run(async () => {
      const tracing = workerTracing(env);
      if (!tracing) return drain(env, ctx);
      return tracing.then((on) => on.around(ctx, (traced) => drain(env, traced)));
    });
  },
} satisfies ExportedHandler<Env>;
