// request-id: every request gets an id (the caller's, if it is sane), echoed in X-Request-Id and kept for logs.
import type { MiddlewareHandler } from "hono";
import { newId } from "../../../shared/ids/index.ts";
import type { GatewayEnv } from "../../env.ts";

export interface RequestIdOptions {
  headerName?: string;
}

const acceptable = /^[A-Za-z0-9._~-]{1,128}$/;

/**
 * An incoming id is kept only if it is short and URL-safe (it lands in logs); otherwise a new one is made.
 * Hand-written rather than Hono's `requestId`: that one sets the header before the handler runs, which makes
 * every response copy a prepared-header list (about 2 µs a request on Bun); here it is set once on the
 * finished response, error responses included (Hono's compose has already put them on `c.res`).
 */
export function requestId(options: RequestIdOptions = {}): MiddlewareHandler<GatewayEnv> {
  const headerName = options.headerName ?? "X-Request-Id";
  return async function requestIdMiddleware(c, next) {
    const incoming = c.req.header(headerName);
    const id = incoming !== undefined && acceptable.test(incoming) ? incoming : newId();
    c.set("requestId", id);
    await next();
    c.res.headers.set(headerName, id);
  };
}
