// The node's breakers and timeouts, one per remote dependency (shared/resilience); /readyz and /metrics show them.
import { brokerDependencyPolicy } from "../actors/queue/qstash-rate-limit.ts";
import {
  Dependencies,
  type DependencyPolicy,
  asPostgresFailure,
  logStateChange,
  redisIsFailure,
  sqlIsFailure,
} from "../shared/resilience/index.ts";
import type { Logger } from "../shared/telemetry/log/index.ts";

/**
 * Timeouts per dependency kind. Redis sits on the request path of every call (rate limit, cache), so it gets the
 * least; a webhook receiver the most (it is someone else's server).
 */
export const nodeDependencyPolicies: Record<string, Partial<DependencyPolicy>> = {
  // A refused statement (a value out of range, a constraint) is the database answering, not failing.
  // A lost connection reaches callers as 503 `unavailable` (asPostgresFailure), not as a driver error (a 500).
  postgres: { timeoutMs: 5_000, breaker: { isFailure: sqlIsFailure }, mapError: asPostgresFailure },
  // An error reply (NOSCRIPT after Redis lost its scripts, WRONGTYPE) is Redis answering, not failing.
  redis: { timeoutMs: 500, breaker: { isFailure: redisIsFailure } },
  // A 429 (the queue's limit spent) is the queue answering; the relay waits for its reset.
  broker: brokerDependencyPolicy,
  "actor-host": { timeoutMs: 10_000 },
  webhook: { timeoutMs: 10_000 },
};

/**
 * The breakers, each change of state logged (a breaker closing at info, opening at warn). `postgresTimeoutMs`, when
 * given, replaces the `postgres` timeout (NodeOptions.postgresTimeoutMs), and its breaker's time window with it: two
 * timeouts, as by default (5 s and 10 s), so that calls timing out one after another trip it no sooner than there.
 */
export function nodeDependencies(logger: Logger, postgresTimeoutMs?: number): Dependencies {
  const postgres = nodeDependencyPolicies.postgres;
  return new Dependencies({
    policies:
      postgresTimeoutMs === undefined
        ? nodeDependencyPolicies
        : {
            ...nodeDependencyPolicies,
            postgres: {
              ...postgres,
              timeoutMs: postgresTimeoutMs,
              breaker: { ...postgres?.breaker, window: { kind: "time", ms: 2 * postgresTimeoutMs } },
            },
          },
    onStateChange: logStateChange(logger),
  });
}
