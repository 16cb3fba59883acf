// Resilience for calls to dependencies: circuit breaker, timeout, retry, bulkhead, and their composition.
export { abortReason, type Sleep, sleep } from "./abort.ts";
export { CircuitBreaker, type ExecuteOptions, isBreakerOpen } from "./breaker.ts";
export {
  type BreakerOptions,
  type BreakerSnapshot,
  type BreakerState,
  type CallEvent,
  type CallOutcome,
  defaultIsFailure,
  type StateChange,
  type TransitionReason,
} from "./breaker-options.ts";
export { Bulkhead, type BulkheadOptions, type BulkheadSnapshot } from "./bulkhead.ts";
export { guardedPort } from "./guarded-port.ts";
export { type ResilientOptions, type ResilientPolicy, resilient } from "./policy.ts";
export { type BackoffOptions, backoffDelay, defaultRetryOn, type RetryOptions, retry } from "./retry.ts";
export { asPostgresFailure, rolledBackForConflict, sqlIsFailure } from "./sql-failures.ts";
export { bridgeSetupRefused, redisIsFailure, redisCheckReason, redisReplyCode } from "./redis-failures.ts";
export { type LevelLogger, logStateChange } from "./state-change-log.ts";
export { isTimeout, withTimeout } from "./timeout.ts";
export type { WindowOptions } from "./window.ts";
export {
  type BreakerTally,
  type DependenciesOptions,
  Dependencies,
  type DependencyPolicy,
  defaultDependencyPolicy,
} from "./dependencies.ts";
