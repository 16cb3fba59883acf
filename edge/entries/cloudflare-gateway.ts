// The gateway's settings on Workers, from the Worker's environment: the same variables as on Bun and Deno.
import { Redis } from "@upstash/redis/cloudflare";
import { type Config, parseConfig } from "../../shared/config/index.ts";
import type { Dependencies } from "../../shared/resilience/index.ts";
import type { AppOptions } from "../app.ts";
import { clientIp } from "../middleware/client-ip/index.ts";
import { configuredLimiter } from "../middleware/rate-limit/configured.ts";
import { guardedRedis } from "../middleware/rate-limit/guarded-redis.ts";
import { rateLimit } from "../middleware/rate-limit/index.ts";
import { upstashRestRedis } from "../middleware/rate-limit/upstash.ts";

type GatewayOptions = Pick<
  AppOptions,
  "clientIp" | "auth" | "rateLimit" | "corsOrigins" | "bodyLimitBytes" | "requestTimeoutMs"
>;

/** The Worker's settings: its string variables and secrets (bindings are objects), checked as on Bun and Deno. */
export function workerConfig(env: object): Config {
  return parseConfig(
    Object.fromEntries(Object.entries(env).filter(([, value]) => typeof value === "string")),
  );
}

/**
 * JWT_SECRET (a secret) or JWT_JWKS_URL turns authentication on; there is no data dir to generate a key
 * into on Workers. The rate limiter counts in Upstash Redis when UPSTASH_REDIS_REST_* are set; otherwise per
 * isolate, which only bounds one isolate's share. With `dependencies`, Redis goes through its `redis` breaker.
 */
export function gatewayFromEnv(env: object, dependencies?: Dependencies): GatewayOptions {
  const config = workerConfig(env);
  const raw = config.UPSTASH_REDIS_REST_URL
    ? upstashRestRedis(Redis, config.UPSTASH_REDIS_REST_URL, config.UPSTASH_REDIS_REST_TOKEN as string)
    : undefined;
  const redis = raw && dependencies ? guardedRedis(raw, dependencies) : raw;
  const limiter = configuredLimiter({
    rate: config.RATE_LIMIT,
    onRedisFailure: config.RATE_LIMIT_ON_REDIS_FAILURE,
    ...(redis ? { redis } : {}),
  });
  const authenticates = config.JWT_SECRET !== undefined || config.JWT_JWKS_URL !== undefined;
  return {
    clientIp: clientIp({ trustedProxies: config.TRUSTED_PROXIES, platform: "workers" }),
    ...(authenticates
      ? {
          auth: {
            ...(config.JWT_SECRET ? { secret: config.JWT_SECRET } : {}),
            ...(config.JWT_JWKS_URL ? { jwksUrl: config.JWT_JWKS_URL } : {}),
            ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
            ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
          },
        }
      : {}),
    rateLimit: rateLimit({ limiterFor: () => limiter }),
    corsOrigins: config.CORS_ORIGINS,
    bodyLimitBytes: config.BODY_LIMIT,
    requestTimeoutMs: config.REQUEST_TIMEOUT,
  };
}
