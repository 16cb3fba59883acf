// The Worker's breakers: one CoordinatedDependencies per isolate, sharing state through BreakerCoordinator objects.
import { Redis } from "@upstash/redis/cloudflare";
import {
  BreakerCoordinator,
  type CoordinatorNamespace,
  coordinatorPort,
} from "../../actors/hosts/cloudflare/breaker-coordinator.ts";
import { CoordinatedDependencies } from "../../actors/hosts/cloudflare/coordinated-dependencies.ts";
import type { QueueEnv } from "../../actors/hosts/cloudflare/queue.ts";
import type { QueueLimit } from "../../actors/hosts/cloudflare/queue-limit.ts";
import { workerLogger } from "../../actors/hosts/cloudflare/worker-log.ts";
import { brokerDependencyPolicy } from "../../actors/queue/qstash-rate-limit.ts";
import type { Transport } from "../../actors/runtime/transport.ts";
import type { Config } from "../../shared/config/index.ts";
import {
  asPostgresFailure,
  redisIsFailure,
  redisCheckReason,
  type Dependencies,
  type DependencyPolicy,
  logStateChange,
  sqlIsFailure,
} from "../../shared/resilience/index.ts";
import { upstashRestRedis } from "../middleware/rate-limit/upstash.ts";
import type { DependencyCheck } from "../routes/health.ts";

export { BreakerCoordinator };

/** The coordinator binding (wrangler.toml); without it, each isolate's breakers run alone. */
export interface BreakersEnv {
  BREAKERS?: CoordinatorNamespace;
}

/** Timeouts per dependency kind, as on a node (deploy/node-dependencies.ts, `nodeDependencyPolicies`). */
export const workerDependencyPolicies: Record<string, Partial<DependencyPolicy>> = {
  // A refused statement (a value out of range, a constraint) is the database answering, not failing.
  postgres: { timeoutMs: 5_000, breaker: { isFailure: sqlIsFailure }, mapError: asPostgresFailure },
  // An error reply (NOSCRIPT after Redis lost its scripts, WRONGTYPE) is Redis answering, not failing.
  redis: { timeoutMs: 500, breaker: { isFailure: redisIsFailure } },
  // A 429 (the queue's limit spent) is the queue answering; the relay waits for its reset.
  broker: brokerDependencyPolicy,
  webhook: { timeoutMs: 10_000 },
};

/** The isolate's breakers. Builds objects only (no I/O), so isolateFor() may call it on the first request. */
export function workerDependencies(env: BreakersEnv): CoordinatedDependencies {
  const logger = workerLogger(env);
  return new CoordinatedDependencies({
    coordinator: env.BREAKERS ? coordinatorPort(env.BREAKERS) : undefined,
    policies: workerDependencyPolicies,
    // As a node logs its breakers: closing at info, opening at warn.
    onStateChange: logStateChange(logger),
    log: (line, level, fields) => logger[level](line, fields),
  });
}

/**
 * /readyz's broker check, as on a node: the queue's API answers below 500. A 429 to a publish is the queue pacing us,
 * not down: `rateLimitedUntil` names its reset and the Worker stays ready.
 */
export function brokerCheck(
  env: QueueEnv,
  dependencies: Dependencies,
  transport?: Transport,
  limit?: QueueLimit,
): DependencyCheck {
  /** The latest 429 any isolate reported to the broker's coordinator (the Durable Objects' relays), read by the check. */
  let shared: number | undefined;
  return {
    name: "broker",
    critical: true,
    breaker: () => dependencies.state("broker"),
    // Billing's relay in this isolate, or any isolate's relay as the coordinator last heard: until when the queue's
    // last answer to a publish was QStash's 429.
    rateLimitedUntil: () => {
      const known = [transport?.rateLimitedUntil?.(), shared].filter(
        (until): until is number => until !== undefined && until > Date.now(),
      );
      return known.length > 0 ? Math.max(...known) : undefined;
    },
    check: async (signal) => {
      // Never rejects: an unreachable coordinator leaves the isolate's own answer.
      const read = limit?.shared(signal).then((until) => {
        shared = until;
      });
      try {
        const response = await fetch(`${(env.QSTASH_URL as string).replace(/\/+$/, "")}/v2/keys`, {
          headers: { authorization: `Bearer ${env.QSTASH_TOKEN}` },
          signal,
        });
        await response.body?.cancel();
        if (response.status >= 500) throw new Error(`broker answered ${response.status}`);
      } finally {
        await read;
      }
    },
  };
}

/** /readyz's Redis check when Upstash is configured: not critical (the limiter and the cache degrade). */
export function redisCheck(config: Config, dependencies: Dependencies): DependencyCheck | undefined {
  if (!config.UPSTASH_REDIS_REST_URL) return undefined;
  // Its own client: a readiness probe must see Redis itself, not its breaker's fast failure.
  const redis = upstashRestRedis(
    Redis,
    config.UPSTASH_REDIS_REST_URL,
    config.UPSTASH_REDIS_REST_TOKEN as string,
  );
  return {
    name: "redis",
    critical: false,
    // A key of this deployment's prefix: a Redis user limited to its prefix's keys may read it (REDIS_KEY_PREFIX).
    check: async () => void (await redis.get(`${config.REDIS_KEY_PREFIX}ping`)),
    // Redis's error reply (NOPERM from an ACL, WRONGPASS for the token) is named by its code, and Redis refusing the
    // local bridge's AUTH "refused", as a node over TCP says: not "unreachable".
    reasonFrom: redisCheckReason,
    breaker: () => dependencies.state("redis"),
  };
}
