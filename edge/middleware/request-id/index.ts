// request-id: each request gets an id (echoed in X-Request-Id), a logger bound to it, and one access line.
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes, routePath } from "hono/route";
import { newId } from "../../../shared/ids/index.ts";
import { methodText } from "../../../shared/telemetry/http-method.ts";
import { createLogger, type Logger, traceIdFromTraceparent } from "../../../shared/telemetry/log/index.ts";
import type { GatewayEnv } from "../../env.ts";

export interface RequestIdOptions {
  headerName?: string;
  /**
   * The app's logger. Each request gets `c.var.log`, a child bound to `request_id` and, when the caller sent a
   * W3C `traceparent`, its `trace_id` (the telemetry middleware then binds the request's own trace and span ids).
   * Default: JSON lines on the console at warn.
   */
  logger?: Logger;
  /**
   * One line per request at info, once it is answered: method, route pattern, status, duration, client address
   * and subject. Never the query, headers or body. Default true.
   */
  accessLog?: boolean;
  /** Paths whose successful requests are logged at debug only: probes and the broker's deliveries. */
  quietPaths?: readonly string[];
}

const acceptable = /^[A-Za-z0-9._~-]{1,128}$/;

/** A request's id: the caller's, when it is short and URL-safe (it lands in logs), else a new one. */
export function requestIdFor(incoming: string | null | undefined): string {
  return incoming !== undefined && incoming !== null && acceptable.test(incoming) ? incoming : newId();
}

/** The logger requests get when the app has none: JSON lines on the console at warn. */
export const defaultRequestLogger = createLogger({ level: "warn" });
const defaultQuietPaths = ["/healthz", "/readyz", "/_edgewise/*"] as const;

/**
 * An incoming id is kept only if it is short and URL-safe (it lands in logs); otherwise a new one is made.
 * Hand-written rather than Hono's `requestId`: that one sets the header before the handler runs, which makes
 * every response copy a prepared-header list (about 2 µs a request on Bun); here it is set once on the
 * finished response, error responses included (Hono's compose has already put them on `c.res`).
 */
export function requestId(options: RequestIdOptions = {}): MiddlewareHandler<GatewayEnv> {
  const headerName = options.headerName ?? "X-Request-Id";
  const logger = options.logger ?? defaultRequestLogger;
  const accessLog = options.accessLog !== false && logger.isEnabled("info");
  const isQuiet = pathMatcher(options.quietPaths ?? defaultQuietPaths);
  return async function requestIdMiddleware(c, next) {
    const id = requestIdFor(c.req.header(headerName));
    c.set("requestId", id);
    const traceId = traceIdFromTraceparent(c.req.header("traceparent"));
    c.set("log", logger.child(traceId ? { request_id: id, trace_id: traceId } : { request_id: id }));
    const started = accessLog ? performance.now() : 0;
    await next();
    c.res.headers.set(headerName, id);
    if (accessLog) logAccess(c, started, isQuiet(c.req.path));
  };
}

/** `c.var.log` as it is now: a later middleware (tracing) may have bound more to it. */
function logAccess(c: Context<GatewayEnv>, started: number, quiet: boolean): void {
  const status = c.res.status;
  const fields = {
    method: methodText(c.req.method),
    route: routePattern(c),
    status,
    duration_ms: Math.round((performance.now() - started) * 10) / 10,
    client_ip: c.var.clientIp ?? c.env?.remoteAddress,
    sub: c.var.principal?.sub,
  };
  if (quiet && status < 400) c.var.log.debug("request", fields);
  else c.var.log.info("request", fields);
}

/**
 * The pattern of the route the request was for (`/v1/orders/:orderId`), even when a middleware answered it
 * first (a 401, a 429); never the raw path, which may carry ids without end.
 */
function routePattern(c: Context<GatewayEnv>): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i];
    if (route && route.method !== "ALL") return route.path;
  }
  return routePath(c, -1);
}

function pathMatcher(patterns: readonly string[]): (path: string) => boolean {
  const exact = new Set(patterns.filter((pattern) => !pattern.endsWith("/*")));
  const prefixes = patterns
    .filter((pattern) => pattern.endsWith("/*"))
    .map((pattern) => pattern.slice(0, -1));
  return (path) => exact.has(path) || prefixes.some((prefix) => path.startsWith(prefix));
}
