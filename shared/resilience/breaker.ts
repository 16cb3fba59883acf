// The circuit breaker: closed → open → half-open → closed | open, tripped by failure rate, streaks or slow calls.
import type { Clock } from "../clock/index.ts";
import { EdgewiseError, isEdgewiseError } from "../errors/index.ts";
import { neverAborted } from "./abort.ts";
import {
  type BreakerOptions,
  type BreakerSnapshot,
  type BreakerState,
  type CallOutcome,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
  type TransitionReason,
} from "./breaker-options.ts";
import { type OutcomeWindow, outcomeWindow } from "./window.ts";

/*
 * Hand-written, not cockatiel or opossum. cockatiel 4 creates an AbortController at module scope, and workerd
 * refuses that at load (cockatiel#105). opossum starts timers at construction: workerd forbids timers outside a
 * request, and on Bun and Deno they keep the process alive. This breaker owns no timer at all: open → half-open
 * is decided lazily from the injected Clock, at the next call or look.
 *
 * Every time it keeps is the clock's monotonic time: a wall clock stepped back an hour while the breaker was open
 * kept it open, refusing every call, for that hour. Only what it shows (a snapshot, a transition, a rejection's
 * meta) is told in wall time, converted as it is read.
 */

/** What a half-open rejection suggests as Retry-After: the probes in flight usually settle within a second. */
const probeRetryAfterMs = 1_000;

/** Which state admitted a call; `generation` tells a call that outlived its state from a current one. */
interface Permit {
  state: "closed" | "half-open";
  generation: number;
}

export interface ExecuteOptions {
  /** The caller's signal: passed to `fn`, and a call that fails after it aborted does not count. */
  signal?: AbortSignal;
}

export class CircuitBreaker {
  readonly name: string;
  private readonly options: ResolvedBreakerOptions;
  private readonly clock: Clock;
  private readonly window: OutcomeWindow;
  private current: BreakerState = "closed";
  private forced: "open" | "closed" | undefined;
  private generation = 0;
  private consecutive = 0;
  /** Monotonic, as every time below. */
  private openedAt: number | undefined;
  /** Set by holdOpenUntil(): when this open state half-opens, instead of `openedAt + resetTimeoutMs`. */
  private heldUntil: number | undefined;
  private probesAdmitted = 0;
  private probesSucceeded = 0;
  private readonly totals: Record<CallOutcome, number> = {
    success: 0,
    failure: 0,
    slow: 0,
    rejected: 0,
    ignored: 0,
  };

  constructor(options: BreakerOptions) {
    this.options = resolveBreakerOptions(options);
    this.name = options.name;
    this.clock = this.options.clock;
    this.window = outcomeWindow(this.options.window);
  }

  /** Counts since construction, by outcome; unlike `snapshot()`, reading them never moves the state on. */
  callTotals(): Record<CallOutcome, number> {
    return { ...this.totals };
  }

  /** The state now; reading it may half-open a breaker whose reset time has passed. */
  get state(): BreakerState {
    this.advance();
    return this.current;
  }

  /** Runs `fn` if the breaker admits it; otherwise rejects at once with `breaker.open` (503), without calling it. */
  async execute<T>(fn: (signal: AbortSignal) => Promise<T>, options: ExecuteOptions = {}): Promise<T> {
    const signal = options.signal ?? neverAborted();
    signal.throwIfAborted();
    const permit = this.admit();
    const started = this.clock.monotonic();
    let value: T;
    try {
      value = await fn(signal);
    } catch (error) {
      const counted = signal.aborted ? "ignored" : this.counts(error) ? "failure" : "success";
      this.settle(permit, started, counted);
      throw error;
    }
    this.settle(permit, started, "success");
    return value;
  }

  snapshot(): BreakerSnapshot {
    this.advance();
    const window = this.window.totals(this.clock.monotonic());
    const halfOpensAt = this.halfOpensAt();
    return {
      name: this.name,
      state: this.current,
      ...(this.forced ? { forced: this.forced } : {}),
      failureRate: window.calls === 0 ? 0 : window.failures / window.calls,
      slowRate: window.calls === 0 ? 0 : window.slow / window.calls,
      calls: window.calls,
      consecutiveFailures: this.consecutive,
      ...(this.openedAt === undefined ? {} : { openedAt: this.wallTime(this.openedAt) }),
      ...(halfOpensAt === undefined ? {} : { halfOpensAt: this.wallTime(halfOpensAt) }),
      totals: { ...this.totals },
    };
  }

  /**
   * While open or half-open, how long until it lets a call through again: until it half-opens, 0 while half-open
   * with a probe still to give, or (its probes all out) the time they usually take. Undefined when closed, or held
   * open by an operator (no time is known).
   */
  reopensInMs(): number | undefined {
    this.advance();
    if (this.current === "closed" || this.forced) return undefined;
    if (this.current === "half-open" && this.probesAdmitted < this.options.halfOpenProbes) return 0;
    const halfOpensAt = this.halfOpensAt();
    return halfOpensAt !== undefined ? Math.max(0, halfOpensAt - this.clock.monotonic()) : probeRetryAfterMs;
  }

  /**
   * Whether forgetting this breaker would drop nothing that protects its callers: no operator hold, and not open
   * with its reset time still ahead (a fresh breaker would then let calls through early). Reads the state without
   * moving it, so asking fires no transition.
   */
  get disposable(): boolean {
    if (this.forced) return false;
    const halfOpensAt = this.halfOpensAt();
    return this.current !== "open" || (halfOpensAt !== undefined && this.clock.monotonic() >= halfOpensAt);
  }

  /** Holds the breaker open (no probes) until forceClose() or reset(): for an operator draining a dependency. */
  forceOpen(): void {
    this.forced = "open";
    this.transition("open", "forced-open");
  }

  /** Holds the breaker closed: calls are counted but never trip it, until reset(). */
  forceClose(): void {
    this.forced = "closed";
    this.transition("closed", "forced-closed");
  }

  /**
   * Opens the breaker (unless it is open already) and keeps it open until `until` (the clock's wall time, as
   * processes share it), when it half-opens as after a trip: for a coordinator that shares one dependency's state
   * between processes, such as Workers isolates. `until` may be now: the next call is then a probe. Ignored while an
   * operator holds the breaker with forceOpen() or forceClose(). The hold lasts `until` less now, measured in
   * monotonic time: a later step of the wall clock neither shortens nor stretches it.
   */
  holdOpenUntil(until: number): void {
    if (this.forced) return;
    if (this.current !== "open") this.transition("open", "coordinated");
    this.heldUntil = this.clock.monotonic() + (until - this.clock.now());
  }

  /** Back to closed with an empty window, and no operator hold. */
  reset(): void {
    this.forced = undefined;
    this.transition("closed", "reset");
  }

  /** A predicate that throws counts the call as a failure, rather than leaving its permit unsettled. */
  private counts(error: unknown): boolean {
    try {
      return this.options.isFailure(error);
    } catch {
      return true;
    }
  }

  private advance(): void {
    const halfOpensAt = this.halfOpensAt();
    if (halfOpensAt !== undefined && this.clock.monotonic() >= halfOpensAt) {
      this.transition("half-open", "reset-timeout");
    }
  }

  /** A monotonic time as wall time: what the wall clock reads now, moved by how far that time is from now. */
  private wallTime(monotonic: number): number {
    return this.clock.now() + (monotonic - this.clock.monotonic());
  }

  private halfOpensAt(): number | undefined {
    if (this.current !== "open" || this.forced || this.openedAt === undefined) return undefined;
    return this.heldUntil ?? this.openedAt + this.options.resetTimeoutMs;
  }

  private admit(): Permit {
    this.advance();
    if (this.current === "closed") return { state: "closed", generation: this.generation };
    if (this.current === "half-open" && this.probesAdmitted < this.options.halfOpenProbes) {
      this.probesAdmitted += 1;
      return { state: "half-open", generation: this.generation };
    }
    this.report("rejected", 0, this.current);
    throw this.rejection();
  }

  private settle(permit: Permit, started: number, counted: "success" | "failure" | "ignored"): void {
    const now = this.clock.monotonic();
    const durationMs = Math.max(0, now - started);
    const slow =
      this.options.slowCallDurationMs !== undefined && durationMs >= this.options.slowCallDurationMs;
    const outcome: CallOutcome = counted === "success" && slow ? "slow" : counted;
    this.report(outcome, durationMs, permit.state);
    // A call admitted before the last transition says nothing about the state that followed it.
    if (permit.generation !== this.generation || outcome === "ignored") {
      if (permit.generation === this.generation && permit.state === "half-open") this.probesAdmitted -= 1;
      return;
    }
    if (permit.state === "half-open") {
      this.settleProbe(outcome);
      return;
    }
    this.window.record({ failure: outcome === "failure", slow }, now);
    this.consecutive = outcome === "failure" ? this.consecutive + 1 : 0;
    const reason = this.forced === "closed" ? undefined : this.tripReason(now);
    if (reason) this.transition("open", reason);
  }

  /** A slow probe fails too: the dependency is not back yet. */
  private settleProbe(outcome: CallOutcome): void {
    if (outcome !== "success") {
      this.transition("open", "probe-failed");
      return;
    }
    this.probesSucceeded += 1;
    if (this.probesSucceeded >= this.options.halfOpenProbes) this.transition("closed", "probes-succeeded");
  }

  private tripReason(now: number): TransitionReason | undefined {
    const {
      consecutiveFailures,
      minimumCalls,
      failureRateThreshold,
      slowCallDurationMs,
      slowCallRateThreshold,
    } = this.options;
    if (consecutiveFailures !== undefined && this.consecutive >= consecutiveFailures) {
      return "consecutive-failures";
    }
    const { calls, failures, slow } = this.window.totals(now);
    if (calls < minimumCalls) return undefined;
    if (failures / calls >= failureRateThreshold) return "failure-rate";
    if (slowCallDurationMs !== undefined && slow / calls >= slowCallRateThreshold) return "slow-call-rate";
    return undefined;
  }

  private transition(to: BreakerState, reason: TransitionReason): void {
    const from = this.current;
    const at = this.clock.monotonic();
    this.current = to;
    this.generation += 1;
    this.heldUntil = undefined;
    this.probesAdmitted = 0;
    this.probesSucceeded = 0;
    if (to === "open") {
      this.openedAt = at;
    } else {
      // The window that tripped the breaker stays visible while open; probes and a fresh close start empty.
      this.openedAt = undefined;
      this.window.clear();
      this.consecutive = 0;
    }
    if (from === to) return;
    const hook = this.options.onStateChange;
    try {
      hook?.({ name: this.name, from, to, reason, at: this.clock.now() });
    } catch {
      // A broken metrics hook must not leave the breaker half-transitioned.
    }
  }

  private report(outcome: CallOutcome, durationMs: number, state: BreakerState): void {
    this.totals[outcome] += 1;
    try {
      this.options.onCall?.({ name: this.name, outcome, durationMs, state });
    } catch {
      // As above: observation never changes behaviour.
    }
  }

  private rejection(): EdgewiseError {
    const halfOpensAt = this.halfOpensAt();
    const retryAfterMs =
      halfOpensAt !== undefined
        ? Math.max(0, halfOpensAt - this.clock.monotonic())
        : this.current === "half-open"
          ? probeRetryAfterMs
          : this.options.resetTimeoutMs;
    const retryAfterSeconds = Math.ceil(retryAfterMs / 1000);
    // Public, so the message names no dependency; the name goes in meta, for logs.
    return new EdgewiseError(
      "breaker.open",
      `A dependency is unavailable; retry in ${retryAfterSeconds} s.`,
      {
        meta: {
          breaker: this.name,
          state: this.current,
          retryAfterMs,
          retryAfterSeconds,
          ...(halfOpensAt === undefined ? {} : { halfOpensAt: this.wallTime(halfOpensAt) }),
        },
      },
    );
  }
}

/** Whether an error is a breaker's fail-fast rejection (by code, so it survives the wire). */
export function isBreakerOpen(error: unknown): boolean {
  return isEdgewiseError(error) && error.code === "breaker.open";
}
