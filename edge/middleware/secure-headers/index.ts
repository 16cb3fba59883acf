// secure-headers: the security headers an API response needs, and CORS only for the origins configured.
import type { Context, Next } from "hono";
import { cors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import type { GatewayEnv } from "../../env.ts";

/**
 * OWASP's REST Security Cheat Sheet set for JSON APIs (with its `Cache-Control: no-store`, set below unless the
 * route chose its own). Hono's `secureHeaders` also sends headers that only
 * matter to HTML pages or are deprecated (X-XSS-Protection, X-Download-Options, X-DNS-Prefetch-Control,
 * X-Permitted-Cross-Domain-Policies, Origin-Agent-Cluster); each costs a header write on every response, so
 * this list is fixed once and written in one loop. A route that serves HTML sets its own CSP.
 */
export const apiSecurityHeaders: ReadonlyArray<readonly [string, string]> = [
  // An API: nothing may frame it or run scripts in its name.
  ["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"],
  ["Strict-Transport-Security", "max-age=31536000; includeSubDomains"],
  ["X-Content-Type-Options", "nosniff"],
  ["X-Frame-Options", "DENY"],
  ["Referrer-Policy", "no-referrer"],
  ["Cross-Origin-Resource-Policy", "same-site"],
  ["Cross-Origin-Opener-Policy", "same-origin"],
];

/** The headers a route that serves HTML (it sets its own CSP) keeps where it set them. */
const ownHeaders = new Set(["Content-Security-Policy", "Cross-Origin-Resource-Policy"]);

export interface SecureHeadersOptions {
  /** Allowed origins; `["*"]` for any; empty for no CORS headers at all. */
  corsOrigins?: string[];
}

export function secureHeaders(options: SecureHeadersOptions = {}) {
  const origins = options.corsOrigins ?? [];
  const headers = async (c: Context<GatewayEnv>, next: Next) => {
    await next();
    const target = c.res.headers;
    // An HTML route (the console) brings its own CSP, and may narrow Cross-Origin-Resource-Policy to same-origin;
    // every other header is the same everywhere.
    const ownPolicy = target.has("content-security-policy");
    for (const [name, value] of apiSecurityHeaders) {
      if (ownPolicy && ownHeaders.has(name) && target.has(name)) continue;
      target.set(name, value);
    }
    // Answers are per caller (balances, orders) and X-API-Key is no credential to a shared cache, which could
    // otherwise keep one under its URL and serve it to the next caller. A route that may be cached says so itself.
    if (!target.has("cache-control")) target.set("Cache-Control", "no-store");
  };
  const corsHandler =
    origins.length === 0
      ? undefined
      : cors({
          origin: origins.includes("*") ? "*" : origins,
          allowHeaders: ["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-Id"],
          allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
          // Everything API.md promises a client beyond the CORS-safelisted headers: a browser hides the rest.
          exposeHeaders: [
            "Location",
            "X-Request-Id",
            "X-Cache",
            "WWW-Authenticate",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Retry-After",
          ],
          maxAge: 600,
        });
  return createMiddleware<GatewayEnv>(async (c, next) => {
    // A preflight is answered by CORS itself (its Response is returned); other requests go on through. An OPTIONS
    // that is no preflight (no Access-Control-Request-Method) is an ordinary request: the route answers it (405 with
    // Allow, or 404), rather than a 204 with CORS headers for any path.
    if (
      corsHandler &&
      (c.req.method !== "OPTIONS" || c.req.header("access-control-request-method") !== undefined)
    ) {
      return corsHandler(c, async () => {
        await headers(c, next);
      });
    }
    await headers(c, next);
  });
}
