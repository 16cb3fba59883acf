// secure-headers: Hono's secure headers for an API, and CORS only for the origins configured.
import { cors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import { secureHeaders as honoSecureHeaders } from "hono/secure-headers";
import type { GatewayEnv } from "../../env.ts";

export interface SecureHeadersOptions {
  /** Allowed origins; `["*"]` for any; empty for no CORS headers at all. */
  corsOrigins?: string[];
}

export function secureHeaders(options: SecureHeadersOptions = {}) {
  const origins = options.corsOrigins ?? [];
  const headers = honoSecureHeaders({
    // An API: nothing may frame it or run scripts in its name.
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    strictTransportSecurity: "max-age=31536000; includeSubDomains",
    crossOriginResourcePolicy: "same-site",
  });
  const corsHandler =
    origins.length === 0
      ? undefined
      : cors({
          origin: origins.includes("*") ? "*" : origins,
          allowHeaders: ["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-Id"],
          allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
          exposeHeaders: [
            "X-Request-Id",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Retry-After",
          ],
          maxAge: 600,
        });
  return createMiddleware<GatewayEnv>(async (c, next) => {
    // A preflight is answered by CORS itself (its Response is returned); other requests go on through.
    if (corsHandler) {
      return corsHandler(c, async () => {
        await headers(c, next);
      });
    }
    await headers(c, next);
  });
}
