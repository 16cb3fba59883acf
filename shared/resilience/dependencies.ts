// One breaker and one timeout per remote dependency, made on first use: what /readyz and /metrics report.
import type { Clock } from "../clock/index.ts";
import { CircuitBreaker } from "./breaker.ts";
import type { BreakerOptions, BreakerSnapshot, StateChange } from "./breaker-options.ts";
import { resilient, type ResilientPolicy } from "./policy.ts";

/** How each kind of dependency is guarded. Timeouts are per call; a breaker opens within about a second. */
export interface DependencyPolicy {
  timeoutMs: number;
  breaker?: Partial<Omit<BreakerOptions, "name" | "clock" | "onStateChange">>;
}

/**
 * Defaults for a call path that sees a few calls a second or more: a 10 s time window, open at a 50% failure
 * rate from 5 calls, or on 5 failures in a row (so a dead dependency is seen within its first few calls even
 * when traffic is light), half-open after 5 s with one probe.
 */
export const defaultDependencyPolicy: DependencyPolicy = {
  timeoutMs: 5_000,
  breaker: {
    window: { kind: "time", ms: 10_000 },
    failureRateThreshold: 0.5,
    minimumCalls: 5,
    consecutiveFailures: 5,
    resetTimeoutMs: 5_000,
    halfOpenProbes: 1,
  },
};

export interface DependenciesOptions {
  clock?: Clock;
  /** Per dependency name (or name prefix before `:`, e.g. `webhook` for `webhook:example.com`). */
  policies?: Record<string, Partial<DependencyPolicy>>;
  onStateChange?: (change: StateChange) => void;
}

export class Dependencies {
  private readonly policies = new Map<string, ResilientPolicy>();
  private readonly transitions = new Map<string, number>();

  constructor(private readonly options: DependenciesOptions = {}) {}

  /** The guarded call path for a dependency: timeout inside its breaker. Same name, same breaker. */
  for(name: string): ResilientPolicy {
    let policy = this.policies.get(name);
    if (!policy) {
      const configured =
        this.options.policies?.[name] ?? this.options.policies?.[name.split(":")[0] ?? name] ?? {};
      const breakerOptions = { ...defaultDependencyPolicy.breaker, ...configured.breaker };
      const breaker = new CircuitBreaker({
        ...breakerOptions,
        name,
        ...(this.options.clock ? { clock: this.options.clock } : {}),
        onStateChange: (change) => {
          this.transitions.set(
            `${change.name}|${change.from}|${change.to}`,
            this.transitionCount(change) + 1,
          );
          this.options.onStateChange?.(change);
        },
      });
      policy = resilient({ breaker, timeoutMs: configured.timeoutMs ?? defaultDependencyPolicy.timeoutMs });
      this.policies.set(name, policy);
    }
    return policy;
  }

  /** Runs `fn` through the dependency's timeout and breaker. */
  call<T>(name: string, fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.for(name).execute(fn, signal);
  }

  /** The state of a dependency's breaker (`closed` for one never called). */
  state(name: string): string {
    return this.policies.get(name)?.breaker?.state ?? "closed";
  }

  snapshots(): BreakerSnapshot[] {
    return [...this.policies.values()].flatMap((policy) =>
      policy.breaker ? [policy.breaker.snapshot()] : [],
    );
  }

  /** Transitions so far: `{ name, from, to, count }`. */
  transitionCounts(): Array<{ name: string; from: string; to: string; count: number }> {
    return [...this.transitions].map(([key, count]) => {
      const [name = "", from = "", to = ""] = key.split("|");
      return { name, from, to, count };
    });
  }

  private transitionCount(change: StateChange): number {
    return this.transitions.get(`${change.name}|${change.from}|${change.to}`) ?? 0;
  }
}
