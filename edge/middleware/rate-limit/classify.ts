// Route classes: which budget a request spends. By method by default; overridable per registered route.
import type { Context } from "hono";
import { matchedRoutes } from "hono/route";
import type { GatewayEnv } from "../../env.ts";

export type Classify = (c: Context<GatewayEnv>) => string;

const readMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/** `read` for GET, HEAD and OPTIONS; `write` for everything else. */
export const byMethod: Classify = (c) => (readMethods.has(c.req.method) ? "read" : "write");

/**
 * Classes for particular routes, keyed `METHOD /path` exactly as registered (`"POST /v1/orders"`,
 * `"GET /v1/orders/:orderId"`); other requests go to `otherwise`. Works from a global middleware because Hono
 * matches every route of a request before the first middleware runs.
 */
export function byRoute(classes: Readonly<Record<string, string>>, otherwise: Classify = byMethod): Classify {
  const table = new Map(Object.entries(classes));
  return (c) => {
    for (const route of matchedRoutes(c)) {
      const routeClass = table.get(`${route.method} ${route.path}`);
      if (routeClass !== undefined) return routeClass;
    }
    return otherwise(c);
  };
}
