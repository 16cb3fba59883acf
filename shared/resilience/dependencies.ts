// One breaker and one timeout per remote dependency, made on first use: what /readyz and /metrics report.
import type { Clock } from "../clock/index.ts";
import { CircuitBreaker } from "./breaker.ts";
import type {
  BreakerOptions,
  BreakerSnapshot,
  BreakerState,
  CallOutcome,
  StateChange,
} from "./breaker-options.ts";
import { resilient, type ResilientPolicy } from "./policy.ts";
import { evictLeastRecent, touch } from "../collections/recency.ts";

/** How each kind of dependency is guarded. Timeouts are per call; a breaker opens within about a second. */
export interface DependencyPolicy {
  timeoutMs: number;
  breaker?: Partial<Omit<BreakerOptions, "name" | "clock" | "onStateChange">>;
  /**
   * What a caller sees of a failed call, for every call path of this dependency (`asPostgresFailure`: a lost
   * connection is a 503 `unavailable`, not a driver error answered as a 500). Default: the error as thrown.
   */
  mapError?: (error: unknown) => unknown;
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
  /**
   * Breakers kept at most for names of one of many of a kind, `<kind>:<instance>` (`webhook:<host>`, one per
   * receiver a customer chose). Default 1,000. Names without a `:` (postgres, broker, redis) are never evicted.
   */
  maxInstanceBreakers?: number;
}

/**
 * The breakers as /metrics counts them: one row per dependency, and one per kind of instance breakers (`webhook`
 * for every `webhook:<host>`), since a host is a part of a URL a subscriber chose: a label per host would be up to
 * 1,000 × 8 series, each named by data.
 */
export interface BreakerTally {
  /** The dependency's name, or the kind of its instance breakers. */
  dependency: string;
  /** How many of its breakers are in each state: 1 for the one state of a single breaker. */
  states: Record<BreakerState, number>;
  /** Calls since start by outcome, evicted instance breakers' included, so that a sum never goes down. */
  totals: Partial<Record<CallOutcome, number>>;
  /** State changes, `from|to` → count, the same way. */
  transitions: Map<string, number>;
}

/** `webhook` for `webhook:example.com`; a name without a kind is its own. */
const kindOf = (name: string) => name.split(":")[0] ?? name;

/** Instance breakers looked at, least recently used first, for one to evict (see `makeRoom`). */
const evictionScan = 64;

export class Dependencies {
  private readonly policies = new Map<string, ResilientPolicy>();
  /** The `<kind>:<instance>` names among them, least recently used first. */
  private readonly instances = new Map<string, ResilientPolicy>();
  /** Per name, `from|to` → count. */
  private readonly transitions = new Map<string, Map<string, number>>();
  /** Per kind, what its evicted breakers had counted (see `tallies`). */
  private readonly evictedCounts = new Map<string, Pick<BreakerTally, "totals" | "transitions">>();

  constructor(private readonly options: DependenciesOptions = {}) {}

  /** The guarded call path for a dependency: timeout inside its breaker. Same name, same breaker. */
  for(name: string): ResilientPolicy {
    let policy = this.policies.get(name);
    if (policy) {
      // Moved to the back: the map's order is the order of last use.
      if (this.instances.size > 0) touch(this.instances, name);
    } else {
      const configured = this.configured(name);
      const breakerOptions = { ...defaultDependencyPolicy.breaker, ...configured.breaker };
      const breaker = new CircuitBreaker({
        ...breakerOptions,
        name,
        ...(this.options.clock ? { clock: this.options.clock } : {}),
        onStateChange: (change) => {
          // A transition of a breaker already evicted (a call that outlived it) is not counted under its name.
          if (this.policies.get(change.name)?.breaker !== breaker) return;
          const counts = this.transitions.get(change.name) ?? new Map<string, number>();
          this.transitions.set(change.name, counts);
          const key = `${change.from}|${change.to}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
          this.options.onStateChange?.(change);
        },
      });
      policy = resilient({ breaker, timeoutMs: configured.timeoutMs ?? defaultDependencyPolicy.timeoutMs });
      if (name.includes(":")) {
        this.makeRoom();
        this.instances.set(name, policy);
      }
      this.policies.set(name, policy);
    }
    return policy;
  }

  /**
   * Keeps the instance breakers under `maxInstanceBreakers`. Their names come from data (every receiver host any
   * subscription ever named, deleted ones too), so each used to stay for good, with its series in /metrics.
   * Evicts the least recently used breaker that is `disposable`: never one open with its reset time ahead, so a
   * failing receiver keeps failing fast however many others are called, nor one an operator holds. What an evicted
   * breaker forgets (recent failures short of a trip, its totals) starts again from zero if its host is called
   * again. At most `evictionScan` are looked at: with more open at once, the bound is exceeded while they are.
   */
  private makeRoom(): void {
    evictLeastRecent(this.instances, this.options.maxInstanceBreakers ?? 1_000, {
      scan: evictionScan,
      evictable: (policy) => !policy.breaker || policy.breaker.disposable,
      evicted: (policy, name) => {
        const counts = this.evictedCounts.get(kindOf(name)) ?? { totals: {}, transitions: new Map() };
        this.evictedCounts.set(kindOf(name), counts);
        addCounts(counts, policy.breaker?.callTotals() ?? {}, this.transitions.get(name));
        this.policies.delete(name);
        this.transitions.delete(name);
        this.forgotten(name);
      },
    });
  }

  /** Told when an instance breaker is evicted, for a subclass that keeps something per name. */
  protected forgotten(_name: string): void {}

  /** Runs `fn` through the dependency's timeout and breaker; a failure as its policy's `mapError` says. */
  call<T>(name: string, fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const result = this.for(name).execute(fn, signal);
    const { mapError } = this.configured(name);
    return mapError
      ? result.catch((error: unknown) => {
          throw mapError(error);
        })
      : result;
  }

  /** The policy configured for `name`, or for its kind (`webhook` for `webhook:example.com`). */
  private configured(name: string): Partial<DependencyPolicy> {
    return this.options.policies?.[name] ?? this.options.policies?.[name.split(":")[0] ?? name] ?? {};
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

  /** One row per dependency, and per kind of instance breakers (see BreakerTally). */
  tallies(): BreakerTally[] {
    const rows = new Map<string, BreakerTally>();
    const row = (dependency: string) => {
      let found = rows.get(dependency);
      if (!found) {
        const evicted = this.evictedCounts.get(dependency);
        found = {
          dependency,
          states: { closed: 0, open: 0, "half-open": 0 },
          totals: { ...evicted?.totals },
          transitions: new Map(evicted?.transitions),
        };
        rows.set(dependency, found);
      }
      return found;
    };
    for (const [name, policy] of this.policies) {
      if (!policy.breaker) continue;
      const into = row(kindOf(name));
      const snapshot = policy.breaker.snapshot();
      into.states[snapshot.state]++;
      addCounts(into, snapshot.totals, this.transitions.get(name));
    }
    // A kind whose breakers were all evicted (by another kind's) keeps its sums, with no breaker in any state.
    for (const kind of this.evictedCounts.keys()) row(kind);
    return [...rows.values()];
  }

  /** Transitions so far, of the breakers kept: `{ name, from, to, count }`. */
  transitionCounts(): Array<{ name: string; from: string; to: string; count: number }> {
    return [...this.transitions].flatMap(([name, counts]) =>
      [...counts].map(([key, count]) => {
        const [from = "", to = ""] = key.split("|");
        return { name, from, to, count };
      }),
    );
  }
}

function addCounts(
  into: Pick<BreakerTally, "totals" | "transitions">,
  totals: Partial<Record<CallOutcome, number>>,
  transitions: Map<string, number> | undefined,
): void {
  for (const [outcome, count] of Object.entries(totals) as Array<[CallOutcome, number]>) {
    into.totals[outcome] = (into.totals[outcome] ?? 0) + count;
  }
  for (const [key, count] of transitions ?? [])
    into.transitions.set(key, (into.transitions.get(key) ?? 0) + count);
}
