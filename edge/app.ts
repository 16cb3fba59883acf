// The gateway app, portable across Bun, Deno and Workers: middleware in the order the README gives, then the routes.
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { describeRoute, openAPIRouteHandler } from "hono-openapi";
import { EdgewiseError } from "../shared/errors/index.ts";
import { actorHostPaths, actorHostPingPath } from "../actors/hosts/remote/protocol.ts";
import { type ActorHost, type MessageConsumer, withConsumers } from "../actors/runtime/index.ts";
import type { GatewayEnv } from "./env.ts";
import { allowedMethodsFor } from "./allowed-methods.ts";
import { canonicalLocation, withoutTrailingSlash } from "./trailing-slash.ts";
import { errorHandler } from "./errors.ts";
import { openApiOptions, publicRoute } from "./openapi.ts";
import { type CachedApiKeyVerifier, cachedApiKeyVerifier } from "./middleware/auth/api-key-cache.ts";
import type { ApiKeyStore } from "./middleware/auth/api-key-store.ts";
import { type AuthOptions, type AuthRefusal, auth } from "./middleware/auth/index.ts";
import { headContentLength } from "./middleware/head/index.ts";
import { jwtVerifier } from "./middleware/auth/jwt.ts";
import { bodyLimit } from "./middleware/body-limit/index.ts";
import { type ClientCertOptions, requireClientCert } from "./middleware/client-cert/index.ts";
import type { RefusalLimit } from "./middleware/rate-limit/index.ts";
import { defaultRequestLogger, requestId } from "./middleware/request-id/index.ts";
import { secureHeaders } from "./middleware/secure-headers/index.ts";
import { type RequestRecord, telemetry } from "./middleware/telemetry/index.ts";
import { timeout } from "./middleware/timeout/index.ts";
import type { AdminEvents } from "./audit/admin-events.ts";
import { type ConsoleOptions, consoleRoutes, isConsolePath } from "./console/index.tsx";
import { counterRoutes } from "./routes/counters.ts";
import { actorHostRoutes } from "./routes/actor-host.ts";
import { apiKeyRoutes } from "./routes/api-keys.ts";
import { type DeliveryOptions, type DeliveryRecord, deliveryRoutes } from "./routes/deliver.ts";
import { type DependencyCheck, healthRoutes } from "./routes/health.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import type { Dependencies } from "../shared/resilience/index.ts";
import { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import { methodText } from "../shared/telemetry/http-method.ts";
import { type Logger, maskSecrets, type SecurityEventSink } from "../shared/telemetry/log/index.ts";

export interface AppOptions {
  /** Where actors run: the local host in process, Durable Object stubs, or a remote actor host. */
  actors: ActorHost;
  /**
   * A HEAD answer gets its GET's Content-Length (default true; see middleware/head). Workers say false: Cloudflare
   * compresses answers for clients that accept it, so the uncompressed length would stand beside
   * `Content-Encoding: gzip` and be wrong, and workerd sends a HEAD with no length at all rather than Bun's 0.
   */
  headContentLength?: boolean;
  /** The broker's signing keys and the public URL it delivers to; without them, no delivery endpoint. */
  delivery?: Omit<DeliveryOptions, "actors">;
  /** Queue consumers that are not actors (billing, projections, webhooks), reached by the delivery endpoint. */
  consumers?: MessageConsumer[];
  /**
   * Serve this node's actors to gateways elsewhere (a split deployment): signed requests on
   * `/_edgewise/actors/*`, answered from `actors`.
   */
  /** `previousSecret`: during a rotation, the secret being replaced, still accepted (ACTOR_HOST_PREVIOUS_SECRET). */
  actorHost?: { secret: string; previousSecret?: string | undefined };
  /**
   * Workers behind API Shield mTLS: refuse requests without a client certificate Cloudflare verified (see
   * middleware/client-cert). Health checks, metrics and the signed delivery endpoint are mounted before it.
   */
  clientCert?: ClientCertOptions;
  /** Sets `clientIp` from the runtime's peer address (see middleware/client-ip). */
  clientIp?: MiddlewareHandler<GatewayEnv>;
  /** JWT settings (see middleware/auth). Without them and without `apiKeys`, every caller is anonymous. */
  auth?: Omit<AuthOptions, "apiKeys">;
  /** Where API keys live; enables `X-API-Key` and the admin routes that create and revoke keys. */
  apiKeys?: ApiKeyStore;
  /**
   * The X-API-Key verifier to use instead of one made here over `apiKeys`: where the app is built per request
   * (Workers with commerce), a verifier kept by the isolate keeps its cache, and the revocation bound, across them.
   */
  apiKeyVerifier?: CachedApiKeyVerifier;
  /**
   * Rate limiting per subject or client IP (see middleware/rate-limit). With `refusals` (as `rateLimit()` makes
   * it), refused credentials spend the caller's address budget too.
   */
  rateLimit?: MiddlewareHandler<GatewayEnv> & { refusals?: RefusalLimit };
  /** Load shedding after the rate limit, before the routes (see middleware/admission): refuses new work when behind. */
  admission?: MiddlewareHandler<GatewayEnv>;
  /** More routes, mounted after the gateway's own (API keys, the commerce API). */
  routes?: Array<Hono<GatewayEnv>>;
  readiness?: DependencyCheck[];
  /** True once the process is stopping: /readyz answers 503 `draining`. */
  draining?: () => boolean;
  /** The node's breakers: served at GET /metrics (Prometheus text), with `metrics`. */
  dependencies?: Dependencies;
  /**
   * The node's instruments, served at GET /metrics; the app feeds HTTP requests and deliveries into them. Without
   * it, an app given `dependencies` makes its own (HTTP, deliveries and breakers).
   */
  metrics?: EdgewiseMetrics;
  /** When set, GET /metrics needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** With `metricsToken`, during its rotation: the token being replaced, still accepted (METRICS_PREVIOUS_TOKEN). */
  metricsPreviousToken?: string;
  /** A scrape within this many ms of the last render of /metrics gets it again (see metricsRoutes). Default 0. */
  metricsReuseMs?: number;
  corsOrigins?: string[];
  bodyLimitBytes?: number;
  requestTimeoutMs?: number;
  onRequest?: (record: RequestRecord) => void;
  /** The structured logger; each request gets a child as `c.var.log`. Default: JSON lines on the console at warn. */
  logger?: Logger;
  /** One line per request at info (see middleware/request-id). Default true. */
  accessLog?: boolean;
  /**
   * Where auth failures and delivery signature failures are reported (give `rateLimit` the `onDenied` of
   * `securityReporters` for denials). Use `boundedSecurityEvents(…).emit`: it caps the rate per kind and
   * records off the request path.
   */
  securityEvents?: SecurityEventSink;
  /**
   * Records what administrators do (API keys here, dead letters in the console) as `admin.<action>` in the
   * activity log; the commerce routes take theirs from the commerce system. Without it, nothing is recorded. With
   * `writeIn`, a key is created in one transaction with its record (a revocation is recorded after it, never with
   * it): `apiKeys` must then be on the activity log's database.
   */
  adminEvents?: AdminEvents;
  /** The operator console at `/_console` (HTML, admins only; see edge/console). */
  console?: ConsoleOptions;
  /**
   * Work a request waits for before anything else of the app runs but the request id, telemetry, and secure
   * headers and CORS: on Workers, commerce's tables, made by an isolate's first request that needs them. A failure
   * is then answered as any error of the app is, with those headers.
   */
  prepare?: (c: Context<GatewayEnv>) => Promise<void> | undefined;
}

/** Deliveries are signed by the broker and may be as large as a QStash message (1 MiB). */
const deliveryBodyLimit = 1_048_576;

/** The gateway app; with `delivery`, also its delivery endpoint alone, for an embedded broker in the same process. */
export type GatewayApp = Hono<GatewayEnv> & {
  /**
   * The delivery route without the gateway's middleware (request id, telemetry, secure headers, body limit): the
   * same signed request, `Receiver` verification and actor commit, answered as the route answers it. For a broker
   * in this process, whose deliveries are not HTTP requests (no peer to identify, limit or send headers to; the
   * broker limits message sizes itself): skipping the middleware saves about a tenth of a delivery's CPU
   * (bench/queue/delivery.ts). Failures are logged with the app's logger and counted in the delivery metrics.
   * Anything from the network goes through the whole app.
   */
  deliverInProcess?: (request: Request, env?: GatewayEnv["Bindings"]) => Response | Promise<Response>;
};

function noRoute(c: Context<GatewayEnv>): never {
  throw new EdgewiseError("not_found", `no route for ${methodText(c.req.method)} ${c.req.path}`);
}

/**
 * No handler for this method: 405 with `Allow` when the path has handlers for others (RFC 9110), else 404. A path
 * the API has but for a trailing slash (`/v1/orders/`) is redirected there for a read (308, the query kept), and
 * named in the 404 of any other method, whose body a redirect would have the client send again.
 */
function noRouteIn(app: Hono<GatewayEnv>) {
  const allowedMethods = allowedMethodsFor(app.routes);
  return (c: Context<GatewayEnv>): Response => {
    const allowed = allowedMethods(c.req.path);
    if (allowed.length === 0) {
      const canonical = withoutTrailingSlash(c.req.path);
      const canonicalMethods = canonical === undefined ? [] : allowedMethods(canonical);
      if (canonicalMethods.length > 0) {
        const location = canonicalLocation(c.req.url);
        if (
          (c.req.method === "GET" || c.req.method === "HEAD") &&
          canonicalMethods.includes("GET") &&
          location
        )
          return c.body(null, 308, { location });
        throw new EdgewiseError(
          "not_found",
          `no route for ${methodText(c.req.method)} ${c.req.path}; the path is ${canonical}, without the trailing slash`,
        );
      }
      noRoute(c);
    }
    c.header("allow", allowed.join(", "));
    throw new EdgewiseError(
      "method_not_allowed",
      `${methodText(c.req.method)} is not allowed on ${c.req.path}; allowed: ${allowed.join(", ")}`,
    );
  };
}

/** The actor host's routes, which gateways call with their span's `traceparent`. */
const actorHostRoutePaths: ReadonlySet<string> = new Set([
  ...Object.values(actorHostPaths),
  actorHostPingPath,
]);

/** Health probes and metric scrapes: counted and logged, never traced. */
const operationalPaths: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/metrics"]);

export function createApp(options: AppOptions): GatewayApp {
  const app: GatewayApp = new Hono<GatewayEnv>();
  const onError = errorHandler(options.logger ? { logger: options.logger } : {});
  app.onError(onError);
  app.notFound(noRouteIn(app));

  const metrics = options.metrics ?? (options.dependencies ? new EdgewiseMetrics() : undefined);
  if (metrics && options.dependencies) metrics.observeDependencies(options.dependencies);
  const onRequest = metrics
    ? (record: RequestRecord) => {
        metrics.request(record);
        options.onRequest?.(record);
      }
    : options.onRequest;

  // Around everything: a HEAD answer gets its GET's Content-Length.
  if (options.headContentLength !== false) app.use(headContentLength());
  // 1. request id → 2. telemetry → 3. secure headers and CORS: for every request, internal ones included.
  app.use(requestId({ ...(options.logger ? { logger: options.logger } : {}), accessLog: options.accessLog }));
  const security = options.securityEvents ? securityReporters(options.securityEvents) : undefined;
  // Probes, scrapes and the console's own requests are not traced: a load balancer's probe every second, a
  // scrape every 15 s, the console's page loads and live streams would crowd the API's traffic out of the recent
  // traces, and take the API's sampling budget.
  const consoleMounted = Boolean(options.console);
  app.use(
    telemetry({
      ...(onRequest ? { onRequest } : {}),
      untraced: (path) => operationalPaths.has(path) || (consoleMounted && isConsolePath(path)),
      // Their SERVER span starts once the route has checked the signature (`traceSigned`): an outsider's call to
      // these records nothing, even where an actor host is reachable without mutual TLS.
      ...(options.actorHost ? { internal: (path: string) => actorHostRoutePaths.has(path) } : {}),
    }),
  );
  app.use(secureHeaders({ corsOrigins: options.corsOrigins ?? [] }));
  // 4. timeout, for every route: a body, the deliveries' and the actor host's included, must arrive by its deadline.
  app.use(timeout({ ms: options.requestTimeoutMs ?? 10_000 }));
  const prepare = options.prepare;
  if (prepare) {
    app.use(async (c, next) => {
      await prepare(c);
      await next();
    });
  }
  app.route(
    "/",
    healthRoutes({
      checks: options.readiness ?? [],
      ...(options.draining ? { draining: options.draining } : {}),
    }),
  );
  if (metrics) {
    app.route(
      "/",
      metricsRoutes({
        registry: metrics.registry,
        ...(options.metricsToken
          ? {
              token: options.metricsToken,
              previousToken: options.metricsPreviousToken,
              verifyJwt: options.auth ? jwtVerifier(options.auth) : undefined,
            }
          : {}),
        ...(options.metricsReuseMs ? { reuseMs: options.metricsReuseMs } : {}),
      }),
    );
  }

  // The delivery endpoint authenticates by the broker's signature, not by a caller's token or rate limit,
  // so it is mounted before them; it has its own body limit.
  if (options.delivery) {
    app.use("/_edgewise/deliver/*", bodyLimit({ maxBytes: deliveryBodyLimit }));
    const observe = options.delivery.onDelivery;
    const deliveries = deliveryRoutes({
      ...options.delivery,
      actors: withConsumers(options.actors, options.consumers ?? []),
      // A delivery handed over in process has no request logger: it logs where request-id would have.
      logger: options.logger ?? defaultRequestLogger,
      ...(security ? { onSignatureFailure: security.onSignatureFailure } : {}),
      ...(metrics
        ? {
            onDelivery: (record: DeliveryRecord) => {
              metrics.delivery(record);
              observe?.(record);
            },
          }
        : {}),
    });
    app.route("/", deliveries);
    // Mounted above, it answers with the app's handlers; alone, it needs the same ones.
    deliveries.onError(onError);
    deliveries.notFound(noRoute);
    app.deliverInProcess = (request, env) => deliveries.fetch(request, env);
  }
  if (options.actorHost) {
    app.use("/_edgewise/actors/*", bodyLimit({ maxBytes: deliveryBodyLimit }));
    app.route(
      "/",
      actorHostRoutes({
        actors: options.actors,
        secret: options.actorHost.secret,
        previousSecret: options.actorHost.previousSecret,
      }),
    );
  }
  app.all("/_edgewise/*", () => {
    throw new EdgewiseError("not_found", "no such internal endpoint");
  });

  if (options.clientCert) app.use(requireClientCert(options.clientCert));
  // The document is public: mounted before authentication, so a caller's credentials, good or bad, do not matter
  // (it is generated from the whole app, routes mounted below included, at its first request, then kept). A client
  // certificate, when required, it does need: every request does but probes, scrapes and the signed endpoints.
  app.get(
    "/openapi.json",
    describeRoute({
      summary:
        "This document: OpenAPI 3.1, generated from the schemas the gateway validates and answers with",
      tags: ["operations"],
      ...publicRoute,
      responses: {
        200: { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } },
      },
    }),
    openAPIRouteHandler(app, openApiOptions),
  );

  // 5. body limit → 6. authentication → 7. rate limit → 8. admission; 9. validation sits on each route.
  if (options.clientIp) app.use(options.clientIp);
  const apiBodyLimit = bodyLimit({ maxBytes: options.bodyLimitBytes ?? 64 * 1024 });
  if (options.console) {
    // The console's forms post urlencoded bodies, and small ones.
    const consoleBodyLimit = bodyLimit({ maxBytes: 16 * 1024 });
    app.use((c, next) => (isConsolePath(c.req.path) ? consoleBodyLimit : apiBodyLimit)(c, next));
  } else app.use(apiBodyLimit);
  const apiKeyCache =
    options.apiKeyVerifier ?? (options.apiKeys ? cachedApiKeyVerifier(options.apiKeys) : undefined);
  const refusals = options.rateLimit?.refusals;
  if (options.auth || apiKeyCache) {
    app.use(
      auth({
        ...options.auth,
        apiKeys: apiKeyCache,
        ...(security ? { onRefused: security.onRefused } : {}),
        // Refused credentials spend the caller's address budget, so guessing keys is rate limited too.
        ...(refusals ? { refusals } : {}),
      }),
    );
  }
  if (options.rateLimit) app.use(options.rateLimit);
  if (options.admission) app.use(options.admission);
  if (options.console) {
    app.route(
      "/",
      consoleRoutes({
        ...options.console,
        auth: options.auth,
        ...(options.adminEvents ? { adminEvents: options.adminEvents } : {}),
      }),
    );
  }

  app.route("/", counterRoutes(options.actors, { requireCaller: Boolean(options.auth || apiKeyCache) }));
  if (options.apiKeys)
    app.route(
      "/",
      apiKeyRoutes({ store: options.apiKeys, cache: apiKeyCache, adminEvents: options.adminEvents }),
    );
  for (const routes of options.routes ?? []) app.route("/", routes);

  return app;
}

/** What a client chose (a raw path, a forged delivery's target) as a security event keeps it: cut, then masked. */
const clientText = (text: string): string => maskSecrets(text.slice(0, 256));

/**
 * The middleware hooks that turn refusals into security events. Each carries a reason, the route and the
 * caller's address, never a credential or a body; the raw path and a delivery's target are cut and masked (an
 * attacker chose them).
 */
export function securityReporters(sink: SecurityEventSink) {
  const report: SecurityEventSink = (event) => {
    try {
      sink(event);
    } catch {
      // A security event is never why a request fails.
    }
  };
  const request = (c: Context<GatewayEnv>) => ({
    method: methodText(c.req.method),
    path: clientText(c.req.path),
    requestId: c.var.requestId,
  });
  return {
    onRefused: (refusal: AuthRefusal, c: Context<GatewayEnv>) =>
      report({
        kind: "auth_failed",
        subject: `ip:${c.var.clientIp || "unknown"}`,
        data: { ...refusal, clientIp: c.var.clientIp, ...request(c) },
      }),
    onDenied: (denial: { subject: string; routeClass: string }, c: Context<GatewayEnv>) =>
      report({
        kind: "rate_limited",
        subject: denial.subject,
        data: { routeClass: denial.routeClass, clientIp: c.var.clientIp, ...request(c) },
      }),
    onSignatureFailure: (
      failure: { target: string; reason: "missing" | "invalid" },
      c: Context<GatewayEnv>,
    ) => {
      // The path's `type/key`, before either is validated: a forged delivery's can be as long as a URL may be.
      const target = clientText(failure.target);
      report({
        kind: "signature_failed",
        subject: target,
        data: { ...failure, target, peer: c.env?.remoteAddress, ...request(c) },
      });
    },
  };
}
