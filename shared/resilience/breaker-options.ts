// The circuit breaker's options, events and snapshot, with their defaults and validation.
import { type Clock, systemClock } from "../clock/index.ts";
import { EdgewiseError, isEdgewiseError } from "../errors/index.ts";
import type { WindowOptions } from "./window.ts";

export type BreakerState = "closed" | "open" | "half-open";

export type TransitionReason =
  | "failure-rate"
  | "consecutive-failures"
  | "slow-call-rate"
  | "reset-timeout"
  | "probe-failed"
  | "probes-succeeded"
  | "forced-open"
  | "forced-closed"
  | "reset"
  /** Opened by holdOpenUntil(): a coordinator shared another process's trip. */
  | "coordinated";

export interface StateChange {
  name: string;
  from: BreakerState;
  to: BreakerState;
  reason: TransitionReason;
  /** Clock time of the transition; open → half-open happens lazily, at the first look after the reset time. */
  at: number;
}

/**
 * `slow`: succeeded, but took at least `slowCallDurationMs`. `ignored`: failed after the caller's signal
 * aborted, so it says nothing about the dependency. (A call that settles after the breaker changed state is
 * reported with its real outcome, but does not count toward the new state.)
 */
export type CallOutcome = "success" | "failure" | "slow" | "rejected" | "ignored";

export interface CallEvent {
  name: string;
  outcome: CallOutcome;
  durationMs: number;
  /** The state that admitted (or rejected) the call. */
  state: BreakerState;
}

export interface BreakerOptions {
  /** Names the dependency in snapshots, events and error meta (never in the public message). */
  name: string;
  clock?: Clock;
  /** Default: the last 20 calls. */
  window?: WindowOptions;
  /** Trips when failures / calls reaches this fraction (0–1], once `minimumCalls` are in the window. Default 0.5. */
  failureRateThreshold?: number;
  /** Calls the window must hold before either rate can trip. Default 10 (at most a count window's size). */
  minimumCalls?: number;
  /** Trips after this many failures in a row, whatever the window holds. Default: off. */
  consecutiveFailures?: number;
  /** A call taking at least this long is slow. Default: off (no call is slow). */
  slowCallDurationMs?: number;
  /** Trips when slow calls / calls reaches this fraction (0–1], once `minimumCalls` are in. Default 1. */
  slowCallRateThreshold?: number;
  /** How long the breaker stays open before letting probes through. Default 30 s. */
  resetTimeoutMs?: number;
  /** Probe calls let through when half-open; that many successes close the breaker. Default 1. */
  halfOpenProbes?: number;
  /**
   * Whether an error counts against the dependency. Default: everything except an EdgewiseError with a 4xx
   * status other than 408 and 429 (the caller's mistake, which a healthy dependency reports). An error that
   * does not count is recorded as a success: the dependency answered.
   */
  isFailure?: (error: unknown) => boolean;
  /** Told about every transition. Must not throw (a throw is swallowed, so the state machine stays whole). */
  onStateChange?: (change: StateChange) => void;
  /** Told about every call, rejected ones included. Must not throw. */
  onCall?: (event: CallEvent) => void;
}

export interface BreakerSnapshot {
  name: string;
  state: BreakerState;
  /** Set while an operator holds the state with forceOpen() or forceClose(). */
  forced?: "open" | "closed";
  /** Over the current window, 0 when it is empty. */
  failureRate: number;
  slowRate: number;
  calls: number;
  consecutiveFailures: number;
  openedAt?: number;
  /** When the next call will be let through as a probe; absent unless open (and not forced). */
  halfOpensAt?: number;
  /** Counts since construction, by outcome: counters for /metrics. */
  totals: Record<CallOutcome, number>;
}

export type ResolvedBreakerOptions = Required<
  Omit<BreakerOptions, "slowCallDurationMs" | "consecutiveFailures" | "onStateChange" | "onCall">
> &
  Pick<BreakerOptions, "slowCallDurationMs" | "consecutiveFailures" | "onStateChange" | "onCall">;

/** 4xx means the caller sent something wrong; 408 and 429 mean the dependency is struggling. */
export function defaultIsFailure(error: unknown): boolean {
  if (!isEdgewiseError(error)) return true;
  return !(error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429);
}

export function resolveBreakerOptions(options: BreakerOptions): ResolvedBreakerOptions {
  const window = options.window ?? { kind: "count", size: 20 };
  const resolved: ResolvedBreakerOptions = {
    clock: systemClock,
    failureRateThreshold: 0.5,
    minimumCalls: window.kind === "count" ? Math.min(10, window.size) : 10,
    slowCallRateThreshold: 1,
    resetTimeoutMs: 30_000,
    halfOpenProbes: 1,
    isFailure: defaultIsFailure,
    ...options,
    window,
  };
  const problems = [
    window.kind === "count" ? integer("window.size", window.size, 1) : undefined,
    window.kind === "time" ? integer("window.ms", window.ms, 1) : undefined,
    window.kind === "time" && window.buckets !== undefined
      ? integer("window.buckets", window.buckets, 1)
      : undefined,
    fraction("failureRateThreshold", resolved.failureRateThreshold),
    fraction("slowCallRateThreshold", resolved.slowCallRateThreshold),
    integer("minimumCalls", resolved.minimumCalls, 1),
    window.kind === "count" && resolved.minimumCalls > window.size
      ? `minimumCalls (${resolved.minimumCalls}) exceeds window.size (${window.size}): it could never trip`
      : undefined,
    resolved.consecutiveFailures === undefined
      ? undefined
      : integer("consecutiveFailures", resolved.consecutiveFailures, 1),
    resolved.slowCallDurationMs === undefined
      ? undefined
      : integer("slowCallDurationMs", resolved.slowCallDurationMs, 0),
    integer("resetTimeoutMs", resolved.resetTimeoutMs, 0),
    integer("halfOpenProbes", resolved.halfOpenProbes, 1),
  ].filter((problem) => problem !== undefined);
  if (problems.length > 0) {
    throw new EdgewiseError("config.invalid", `breaker ${options.name}: ${problems.join("; ")}`);
  }
  return resolved;
}

function integer(field: string, value: number, min: number): string | undefined {
  return Number.isInteger(value) && value >= min ? undefined : `${field} must be an integer ≥ ${min}`;
}

function fraction(field: string, value: number): string | undefined {
  return value > 0 && value <= 1 ? undefined : `${field} must be in (0, 1]`;
}
