// telemetry: times each request and reports it (route, status, duration) to whoever observes the gateway.
import { createMiddleware } from "hono/factory";
import type { Context } from "hono";
import { matchedRoutes, routePath } from "hono/route";
import type { GatewayEnv } from "../../env.ts";

export interface RequestRecord {
  method: string;
  /** The matched route pattern (`/v1/orders/:id`), never the raw path, so metrics stay low-cardinality. */
  route: string;
  status: number;
  durationMs: number;
  requestId: string;
}

export interface TelemetryOptions {
  onRequest?: (record: RequestRecord) => void;
}

export function telemetry(options: TelemetryOptions = {}) {
  const onRequest = options.onRequest;
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const started = performance.now();
    await next();
    onRequest?.({
      method: c.req.method,
      route: matchedRoute(c),
      status: c.res.status,
      durationMs: performance.now() - started,
      requestId: c.var.requestId,
    });
  });
}

/**
 * The handler's route pattern. When middleware answered first (401, 413, 429), the route of the handler the
 * request would have reached, so errors count against their route; `/*` when no handler matched (404).
 */
export function matchedRoute(c: Context<GatewayEnv>): string {
  const current = routePath(c);
  if (current !== "/*" && current !== "*") return current;
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i];
    // Middleware is registered for every method (`ALL`); a handler names its own.
    if (route && route.method !== "ALL") return route.path;
  }
  return current;
}
