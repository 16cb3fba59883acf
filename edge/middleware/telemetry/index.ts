// telemetry: times each request and reports it (route, status, duration) to whoever observes the gateway.
import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
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
      route: routePath(c),
      status: c.res.status,
      durationMs: performance.now() - started,
      requestId: c.var.requestId,
    });
  });
}
