// One dependency's breaker state shared by every Workers isolate: the coordinator's state machine and its wire shapes.
import type { Clock } from "../../../shared/clock/index.ts";
import type { BreakerState, TransitionReason } from "../../../shared/resilience/index.ts";

/*
 * Pure, so Bun tests it with a manual clock; the BreakerCoordinator Durable Object (breaker-coordinator.ts) only
 * stores its record and answers RPC with it. The isolates' side is coordinated-dependencies.ts.
 *
 * The shared breaker is the local one's state machine at the scale of all isolates:
 * - closed → open when any isolate reports a local trip (its breaker already applied the thresholds to its own
 *   calls), or when the counts the isolates report add up to a trip (failureRateThreshold over windowMs, from
 *   minimumCalls): many isolates with a few failures each, none of which trips alone.
 * - open until T → half-open, lazily at the first report after T (nothing runs between reports).
 * - half-open: at most `probePermits` isolates hold a probe permit at once, each for `probeLeaseMs` (an isolate
 *   that got one and then saw no traffic does not block the others for long). The first probe outcome
 *   reported decides: success closes, failure reopens for another resetTimeoutMs.
 * `generation` counts the shared transitions to open and to closed. Each isolate tags what it reports with the
 * generation it last saw, and a report from an older one is stale: its trip or probe was about a state that
 * has since changed, so it is dropped (the isolate adopts the current state, and trips again if it must).
 */

/** How the coordinator runs one dependency's shared breaker; every report carries it (the isolates' config). */
export interface CoordinationPolicy {
  /** How long the shared breaker stays open before it grants probe permits. */
  resetTimeoutMs: number;
  /** Isolates probing at once while half-open. */
  probePermits: number;
  /** How long a permit stays with its isolate before the coordinator may hand it to another. */
  probeLeaseMs: number;
  /** The aggregate trip over reported counts: the window, its minimum calls, its failure rate. */
  windowMs: number;
  minimumCalls: number;
  failureRateThreshold: number;
}

/** The reasons an isolate reports: its own trips and probe outcomes (never a state the coordinator gave it). */
export const reportedReasons: ReadonlySet<TransitionReason> = new Set<TransitionReason>([
  "failure-rate",
  "consecutive-failures",
  "slow-call-rate",
  "probe-failed",
  "probes-succeeded",
]);

/** A local transition, as reported: `generation` is the shared one the isolate knew when it happened. */
export interface BreakerEvent {
  to: "open" | "closed";
  reason: TransitionReason;
  generation: number | undefined;
}

/** What an isolate sends: at most one per dependency per sync interval, or per local transition. */
export interface BreakerReport {
  /** A random id per isolate, for probe permits. */
  isolate: string;
  policy: CoordinationPolicy;
  /** The shared generation this isolate last saw; undefined before its first answer. */
  generation: number | undefined;
  /** Calls that completed since its last report (any state), and how many of them failed. */
  counts: { calls: number; failures: number };
  events: BreakerEvent[];
  /** Held open past the coordinator's reopen time (or holding a permit it has not used): asks for a permit. */
  wantsProbe: boolean;
}

/** The answer: the shared state, as this isolate should apply it. Durations, not times: clocks differ. */
export interface SharedView {
  state: BreakerState;
  generation: number;
  /** Open: ms until probes are granted. Half-open without a permit: ms until it is worth asking again. */
  retryInMs?: number;
  /** Half-open: this isolate may probe (its breaker half-opens now); the permit lapses after `leaseMs`. */
  permit?: { leaseMs: number };
}

/** The part of the shared state worth keeping across a restart of the coordinator. */
export interface SharedRecord {
  state: BreakerState;
  generation: number;
  /** Coordinator clock time; set while open. */
  openUntil?: number;
  reason?: TransitionReason;
  changedAt?: number;
}

export interface CoordinatorSnapshot extends SharedRecord {
  /** The dependency (the object's name), when the object knows it. */
  name?: string;
  permits: Array<{ isolate: string; expiresInMs: number }>;
  /** The aggregate window: calls and failures reported in the last windowMs. */
  window: { calls: number; failures: number };
  reports: number;
  /** Reports whose events were stale (an older generation) and dropped. */
  staleEvents: number;
}

/** While half-open without a permit, ask again after this long at most (the probe usually settles by then). */
export const halfOpenPollMs = 1_000;

export const defaultCoordinationPolicy: CoordinationPolicy = {
  resetTimeoutMs: 5_000,
  probePermits: 1,
  probeLeaseMs: 5_000,
  windowMs: 10_000,
  minimumCalls: 5,
  failureRateThreshold: 0.5,
};

interface Bucket {
  at: number;
  calls: number;
  failures: number;
}

export class SharedBreaker {
  private current: SharedRecord;
  private readonly permits = new Map<string, number>();
  private buckets: Bucket[] = [];
  private reports = 0;
  private staleEvents = 0;
  private policy: CoordinationPolicy = defaultCoordinationPolicy;

  constructor(
    private readonly clock: Clock,
    record?: SharedRecord,
  ) {
    this.current = record ? { ...record } : { state: "closed", generation: 0 };
  }

  /** What to persist; changes only on a shared transition. */
  get record(): SharedRecord {
    return { ...this.current };
  }

  /** Applies one isolate's report and answers the state it should take; `changed` when the record changed. */
  report(report: BreakerReport): { view: SharedView; changed: boolean } {
    this.reports += 1;
    this.policy = sanePolicy(report.policy);
    const before = this.current.generation;
    const beforeState = this.current.state;
    const now = this.clock.now();
    this.advance(now);

    const current = (generation: number | undefined) =>
      generation === undefined ? this.current.state === "closed" : generation === this.current.generation;
    if (report.counts.calls > 0 && this.current.state === "closed" && current(report.generation)) {
      this.count(now, report.counts.calls, report.counts.failures);
    }
    // Once one of its events is taken, the isolate's later ones follow from it (a trip, then its own probe while
    // the coordinator was out of reach): they are current too.
    let following = false;
    for (const event of report.events) {
      if (!reportedReasons.has(event.reason)) continue;
      if (!following && !current(event.generation)) {
        this.staleEvents += 1;
        continue;
      }
      if (event.to === "open" && this.current.state !== "open") {
        this.open(now, event.reason);
        following = true;
      } else if (
        event.to === "closed" &&
        event.reason === "probes-succeeded" &&
        this.current.state !== "closed"
      ) {
        this.close(now);
        following = true;
      }
    }
    if (this.current.state === "closed") this.tripOnCounts(now);

    return {
      view: this.view(now, report),
      changed: this.current.generation !== before || this.current.state !== beforeState,
    };
  }

  snapshot(): CoordinatorSnapshot {
    const now = this.clock.now();
    this.advance(now);
    return {
      ...this.current,
      permits: [...this.permits].map(([isolate, expires]) => ({ isolate, expiresInMs: expires - now })),
      window: this.totals(now),
      reports: this.reports,
      staleEvents: this.staleEvents,
    };
  }

  /** Open → half-open once its time is up; permits past their lease go back. */
  private advance(now: number): void {
    const { state, openUntil } = this.current;
    if (state === "open" && openUntil !== undefined && now >= openUntil) {
      this.current = { ...this.current, state: "half-open", reason: "reset-timeout", changedAt: now };
      delete this.current.openUntil;
    }
    for (const [isolate, expires] of this.permits) if (expires <= now) this.permits.delete(isolate);
  }

  private open(now: number, reason: TransitionReason): void {
    this.current = {
      state: "open",
      generation: this.current.generation + 1,
      openUntil: now + this.policy.resetTimeoutMs,
      reason,
      changedAt: now,
    };
    this.permits.clear();
  }

  private close(now: number): void {
    this.current = {
      state: "closed",
      generation: this.current.generation + 1,
      reason: "probes-succeeded",
      changedAt: now,
    };
    this.permits.clear();
    // The window that tripped it says nothing about the dependency that came back.
    this.buckets = [];
  }

  private view(now: number, report: BreakerReport): SharedView {
    const { state, generation, openUntil } = this.current;
    if (state === "closed") return { state, generation };
    if (state === "open") return { state, generation, retryInMs: Math.max(0, (openUntil ?? now) - now) };
    const held = this.permits.get(report.isolate);
    if (report.wantsProbe) {
      // A permit is not renewed: an isolate that holds one without probing lets it lapse.
      if (held !== undefined) return { state, generation, permit: { leaseMs: held - now } };
      if (this.permits.size < this.policy.probePermits) {
        this.permits.set(report.isolate, now + this.policy.probeLeaseMs);
        return { state, generation, permit: { leaseMs: this.policy.probeLeaseMs } };
      }
    } else if (held !== undefined) {
      this.permits.delete(report.isolate);
    }
    const soonest = Math.min(...this.permits.values(), now + halfOpenPollMs);
    return { state, generation, retryInMs: Math.max(0, Math.min(soonest - now, halfOpenPollMs)) };
  }

  private count(now: number, calls: number, failures: number): void {
    if (!(calls > 0 && failures >= 0)) return;
    const last = this.buckets.at(-1);
    // One bucket per second is plenty: reports arrive every few seconds per isolate.
    if (last && now - last.at < 1_000) {
      last.calls += calls;
      last.failures += Math.min(failures, calls);
    } else {
      this.buckets.push({ at: now, calls, failures: Math.min(failures, calls) });
    }
  }

  private totals(now: number): { calls: number; failures: number } {
    const horizon = now - this.policy.windowMs;
    while (this.buckets.length > 0 && (this.buckets[0] as Bucket).at <= horizon) this.buckets.shift();
    let calls = 0;
    let failures = 0;
    for (const bucket of this.buckets) {
      calls += bucket.calls;
      failures += bucket.failures;
    }
    return { calls, failures };
  }

  private tripOnCounts(now: number): void {
    const { calls, failures } = this.totals(now);
    if (calls >= this.policy.minimumCalls && failures / calls >= this.policy.failureRateThreshold) {
      this.open(now, "failure-rate");
    }
  }
}

/** A report is input from the network: numbers out of range fall back to the defaults instead of breaking. */
function sanePolicy(policy: Partial<CoordinationPolicy> | undefined): CoordinationPolicy {
  const pick = (key: keyof CoordinationPolicy, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const value = policy?.[key];
    return typeof value === "number" && Number.isFinite(value) && value >= min && value <= max
      ? value
      : defaultCoordinationPolicy[key];
  };
  return {
    resetTimeoutMs: pick("resetTimeoutMs", 0),
    probePermits: Math.floor(pick("probePermits", 1)),
    probeLeaseMs: pick("probeLeaseMs", 1),
    windowMs: pick("windowMs", 1),
    minimumCalls: pick("minimumCalls", 1),
    failureRateThreshold: pick("failureRateThreshold", Number.MIN_VALUE, 1),
  };
}
