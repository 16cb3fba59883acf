// The gateway's settings on Workers, from the Worker's environment: the same variables as on Bun and Deno.
import { Redis } from "@upstash/redis/cloudflare";
import { RemoteActorHost } from "../../actors/hosts/remote/client.ts";
import { type ActorHost, guardedHost } from "../../actors/runtime/index.ts";
import { type Config, parseConfig } from "../../shared/config/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { Dependencies } from "../../shared/resilience/index.ts";
import type { AppOptions } from "../app.ts";
import { remoteKeySet } from "../middleware/auth/jwks.ts";
import { jwtClaimChecks } from "../middleware/auth/jwt.ts";
import { clientIp } from "../middleware/client-ip/index.ts";
import { configuredLimiter } from "../middleware/rate-limit/configured.ts";
import { guardedRedis } from "../middleware/rate-limit/guarded-redis.ts";
import { type RateLimitOptions, rateLimit } from "../middleware/rate-limit/index.ts";
import { upstashRestRedis } from "../middleware/rate-limit/upstash.ts";

type GatewayOptions = Pick<
  AppOptions,
  | "clientIp"
  | "auth"
  | "rateLimit"
  | "corsOrigins"
  | "headContentLength"
  | "bodyLimitBytes"
  | "requestTimeoutMs"
  | "clientCert"
  | "metricsToken"
  | "metricsPreviousToken"
>;

/** The binding a Worker reaches a self-hosted actor host through (see wrangler.toml, `[[mtls_certificates]]`). */
export interface RemoteActorsEnv {
  /** An mtls_certificates binding: a Fetcher whose connections present the uploaded client certificate. */
  ACTOR_HOST_MTLS?: { fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> };
}

/** The Worker's settings: its string variables and secrets (bindings are objects), checked as on Bun and Deno. */
export function workerConfig(env: object): Config {
  return parseConfig(
    Object.fromEntries(Object.entries(env).filter(([, value]) => typeof value === "string")),
  );
}

/**
 * JWT_SECRET (a secret) or JWT_JWKS_URL verifies tokens; there is no data dir to generate a key into on Workers.
 * Without either, authentication still runs and accepts no JWT: a Worker whose secret was never put refuses its
 * callers (401) instead of serving the demo counters to anyone (a node always has a key: it generates one). The
 * rate limiter counts in Upstash Redis when UPSTASH_REDIS_REST_* are set; otherwise per isolate, which only bounds
 * one isolate's share. With `dependencies`, Redis goes through its `redis` breaker.
 */
export function gatewayFromEnv(
  env: object,
  dependencies?: Dependencies,
  /**
   * The rate limiter's hooks: `onDecision` for each decision (the isolate's
   * `edgewise_rate_limit_decisions_total`, as on a node), `onDenied` for each 429 (security events; the isolate's,
   * so it may be set after this returns).
   */
  hooks: Pick<RateLimitOptions, "onDecision" | "onDenied"> = {},
): GatewayOptions {
  const config = workerConfig(env);
  const raw = config.UPSTASH_REDIS_REST_URL
    ? upstashRestRedis(Redis, config.UPSTASH_REDIS_REST_URL, config.UPSTASH_REDIS_REST_TOKEN as string)
    : undefined;
  const redis = raw && dependencies ? guardedRedis(raw, dependencies) : raw;
  const limiter = configuredLimiter({
    rate: config.RATE_LIMIT,
    onRedisFailure: config.RATE_LIMIT_ON_REDIS_FAILURE,
    ...(redis ? { redis } : {}),
    prefix: `${config.REDIS_KEY_PREFIX}rl`,
  });
  return {
    clientIp: clientIp({
      trustedProxies: config.TRUSTED_PROXIES,
      forwardedHeader: config.TRUSTED_PROXY_HEADER,
      platform: "workers",
    }),
    auth: {
      ...(config.JWT_SECRET ? { secret: config.JWT_SECRET } : {}),
      ...(config.JWT_PREVIOUS_SECRET ? { previousSecret: config.JWT_PREVIOUS_SECRET } : {}),
      // One key set per isolate: with commerce the app is built per request, and a `jwksUrl` would make each its
      // own, fetched anew.
      ...(config.JWT_JWKS_URL ? { jwks: remoteKeySet(config.JWT_JWKS_URL) } : {}),
      ...jwtClaimChecks(config),
    },
    rateLimit: rateLimit({ limiterFor: () => limiter, ...hooks }),
    corsOrigins: config.CORS_ORIGINS,
    // Cloudflare may compress the GET; a HEAD then has no right length to give (see AppOptions).
    headContentLength: false,
    bodyLimitBytes: config.BODY_LIMIT,
    requestTimeoutMs: config.REQUEST_TIMEOUT,
    // As on a node: /metrics then needs this token or an admin JWT (a secret: `wrangler secret put METRICS_TOKEN`).
    ...(config.METRICS_TOKEN ? { metricsToken: config.METRICS_TOKEN } : {}),
    ...(config.METRICS_PREVIOUS_TOKEN ? { metricsPreviousToken: config.METRICS_PREVIOUS_TOKEN } : {}),
    // Behind API Shield mTLS: Cloudflare verified the client certificate; the app checks its verdict.
    ...(config.REQUIRE_CLIENT_CERT ? { clientCert: { fingerprints: config.CLIENT_CERT_FINGERPRINTS } } : {}),
  };
}

/**
 * With ACTOR_HOST_URL, the Worker is a gateway to a self-hosted actor host instead of running actors as Durable
 * Objects. Every call goes through the `ACTOR_HOST_MTLS` binding, which presents the Worker's client
 * certificate (uploaded with `wrangler mtls-certificate upload`), and is signed with ACTOR_HOST_SECRET as well.
 * A plain `fetch` could not present a certificate, so without the binding, or with an http:// URL, the Worker
 * refuses to start.
 */
export function remoteActorHostFromEnv<Env extends RemoteActorsEnv>(
  env: Env,
  dependencies?: Dependencies,
): ActorHost | undefined {
  const config = workerConfig(env);
  if (!config.ACTOR_HOST_URL) return undefined;
  // Over plain HTTP there is no TLS connection for the binding to present its certificate on: the calls would
  // cross the internet in clear, and the actor host's answers could be forged on the way.
  if (!config.ACTOR_HOST_URL.startsWith("https://")) {
    throw new EdgewiseError(
      "config.invalid",
      "ACTOR_HOST_URL must be https:// on Workers: the ACTOR_HOST_MTLS binding presents its certificate only over TLS",
    );
  }
  const binding = env.ACTOR_HOST_MTLS;
  if (!binding) {
    throw new EdgewiseError(
      "config.invalid",
      "ACTOR_HOST_URL on Workers needs the ACTOR_HOST_MTLS binding ([[mtls_certificates]] in wrangler.toml)",
    );
  }
  const remote = new RemoteActorHost({
    baseUrl: config.ACTOR_HOST_URL,
    secret: config.ACTOR_HOST_SECRET as string,
    fetch: ((input: RequestInfo | URL, init?: RequestInit) => binding.fetch(input, init)) as typeof fetch,
  });
  return dependencies ? guardedHost(remote, dependencies, "actor-host") : remote;
}
