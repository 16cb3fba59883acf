// Breakers per isolate that share their state through a coordinator: local memory on every call, syncs in waitUntil.
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import {
  type BreakerState,
  type CircuitBreaker,
  Dependencies,
  type DependenciesOptions,
  defaultDependencyPolicy,
  type ResilientPolicy,
  type StateChange,
  withTimeout,
} from "../../../shared/resilience/index.ts";
import {
  type BreakerEvent,
  type BreakerReport,
  type CoordinationPolicy,
  type CoordinatorSnapshot,
  halfOpenPollMs,
  reportedReasons,
  type SharedView,
} from "./breaker-shared.ts";
import { errorFields } from "../../../shared/telemetry/log/redact.ts";
import { workerLogger } from "./worker-log.ts";

/** Where the shared state lives: the BreakerCoordinator Durable Object in production, a fake in unit tests. */
export interface BreakerCoordinatorPort {
  sync(dependency: string, report: BreakerReport): Promise<SharedView>;
  inspect?(dependency: string): Promise<CoordinatorSnapshot>;
}

export interface CoordinationOptions {
  /** An isolate with traffic reports each dependency's counts (and learns its shared state) this often. Default 5 s. */
  syncIntervalMs?: number;
  /** A sync slower than this is abandoned (the isolate goes on alone, and retries after syncIntervalMs). Default 2 s. */
  syncTimeoutMs?: number;
  /**
   * How long past the coordinator's reopen time an isolate waits for a probe permit before it probes on its
   * own, as a lone breaker would: the coordinator may be unreachable. Default 3 s.
   */
  graceMs?: number;
  /** Isolates probing a half-open dependency at once. Default 1. */
  probePermits?: number;
  /** How long one isolate keeps a probe permit it got. Default 5 s. */
  probeLeaseMs?: number;
}

export interface CoordinatedDependenciesOptions extends DependenciesOptions {
  /** Without one, these are plain per-isolate breakers (and tick() does nothing). */
  coordinator: BreakerCoordinatorPort | undefined;
  coordination?: CoordinationOptions;
  /** This isolate's id in reports and permits. Default: a random UUID. */
  isolate?: string;
  /** Where the coordinator's reachability is reported. Default: the isolate's JSON logger (worker-log.ts). */
  log?: (line: string, level: "info" | "warn", fields: Record<string, unknown>) => void;
}

/** `ctx.waitUntil`, bound: how a sync outlives the request that started it. */
export type WaitUntil = (promise: Promise<unknown>) => void;

/** One dependency's coordination as this isolate sees it, for tests and diagnostics. */
export interface CoordinationStatus {
  name: string;
  local: BreakerState;
  /** The last answer of the coordinator, if any. */
  shared?: SharedView;
  generation?: number;
  /** Held open by the coordinator (not by its own trip). */
  held: boolean;
  /** Holds a probe permit. */
  permit: boolean;
  pendingEvents: number;
  syncs: number;
  /** Consecutive failed syncs: above 0, this isolate's breaker runs alone. */
  syncFailures: number;
}

interface Link {
  name: string;
  breaker: CircuitBreaker;
  policy: CoordinationPolicy;
  /** The shared generation last seen; tags every event. */
  generation: number | undefined;
  shared: SharedView | undefined;
  /** Local trips and probe outcomes not yet reported. */
  events: BreakerEvent[];
  /** The breaker's completed calls and failures as of the last successful report. */
  reported: { calls: number; failures: number };
  /** Clock time of the next sync a tick should start; 0 = at the next tick. */
  nextSyncAt: number;
  /** Bumped per sync; only the latest one's answer is applied. */
  attempt: number;
  inFlightSince: number | undefined;
  /** Called since the last report. */
  used: boolean;
  /** Local transitions of the breaker's own making (not applied from an answer, not the lazy half-open). */
  changes: number;
  held: boolean;
  /** While held: when the coordinator grants probes (local clock). */
  reopensAt: number;
  permit: boolean;
  syncs: number;
  failures: number;
}

/** Events kept for a coordinator that does not answer; older ones would be stale anyway. */
const maxPendingEvents = 8;

/**
 * A `Dependencies` (so it goes wherever one does: commerceSystem, guardedTransport, guardedRedis, createApp)
 * whose breakers share their state through a coordinator, one per dependency name.
 *
 * Every call consults only this isolate's breaker, as on a node. What syncs, and when (only from tick(),
 * which the Worker calls at the start and end of each request and cron run, so the RPC runs in that
 * request's waitUntil and never delays it):
 * - at once after a local trip or probe outcome: the coordinator opens (or closes) for everyone;
 * - every syncIntervalMs while the isolate has traffic: the counts since the last report (the coordinator
 *   trips on their sum), and the shared state back, so an isolate learns of another's trip;
 * - at the coordinator's reopen time: asks for a probe permit; without one, it stays open and asks again.
 * Applying an answer: closed → reset(); open for T → held open until T + graceMs; half-open with a permit →
 * half-opens now, so its next call is the probe; half-open without → held open until it may ask again.
 *
 * Failure modes: a coordinator that fails or is slower than syncTimeoutMs fails only the background sync;
 * the breaker runs alone (a hold lapses graceMs after the coordinator's reopen time, then it probes by itself)
 * and reports what it missed at the next sync. An answer that raced a local transition is not applied (it
 * would undo the trip it has not heard of); the transition is reported at the next tick instead.
 */
export class CoordinatedDependencies extends Dependencies {
  readonly isolate: string;
  private readonly links = new Map<string, Link>();
  private readonly coordinator: BreakerCoordinatorPort | undefined;
  private readonly clock: Clock;
  private readonly settings: Required<CoordinationOptions>;
  private readonly dependencyPolicies: DependenciesOptions["policies"];
  private readonly log: NonNullable<CoordinatedDependenciesOptions["log"]>;
  /** Set while an answer is applied: those transitions are the coordinator's, not evidence to report. */
  private applying = false;

  constructor(options: CoordinatedDependenciesOptions) {
    const { coordinator, coordination, isolate, log, ...base } = options;
    super({
      ...base,
      onStateChange: (change) => {
        this.observe(change);
        base.onStateChange?.(change);
      },
    });
    this.coordinator = coordinator;
    this.clock = base.clock ?? systemClock;
    this.dependencyPolicies = base.policies;
    this.isolate = isolate ?? crypto.randomUUID();
    this.log = log ?? ((line, level, fields) => workerLogger()[level](line, fields));
    this.settings = {
      syncIntervalMs: coordination?.syncIntervalMs ?? 5_000,
      syncTimeoutMs: coordination?.syncTimeoutMs ?? 2_000,
      graceMs: coordination?.graceMs ?? 3_000,
      probePermits: coordination?.probePermits ?? 1,
      probeLeaseMs: coordination?.probeLeaseMs ?? 5_000,
    };
  }

  /** Every call passes here (Dependencies.call looks its policy up): marks the dependency as in use. */
  override for(name: string): ResilientPolicy {
    const policy = super.for(name);
    const link = this.links.get(name);
    if (link) {
      link.used = true;
    } else if (policy.breaker) {
      this.links.set(name, this.link(name, policy.breaker));
    }
    return policy;
  }

  /** An evicted instance breaker (`webhook:<host>`) takes its link along; calling that host again makes both anew. */
  protected override forgotten(name: string): void {
    this.links.delete(name);
  }

  /**
   * Starts, in the background of the current request, a sync for each dependency that is due. Cheap when
   * none is (a few comparisons); never throws, never waits.
   */
  tick(waitUntil: WaitUntil): void {
    if (!this.coordinator || this.links.size === 0) return;
    const now = this.clock.now();
    const due: Link[] = [];
    for (const link of this.links.values()) {
      if (link.inFlightSince !== undefined && now - link.inFlightSince < this.settings.syncTimeoutMs * 2)
        continue;
      // A dependency this isolate no longer calls needs no news, unless it is held or has something to say.
      const quiet = !link.used && !link.held && !link.permit && link.events.length === 0;
      if (now >= link.nextSyncAt && (link.nextSyncAt === 0 || !quiet)) due.push(link);
    }
    if (due.length > 0) waitUntil(this.syncLinks(due));
  }

  /** Syncs every dependency (or the named ones) now, due or not; resolves when done, never rejects. */
  syncNow(names?: string[]): Promise<void> {
    const links = [...this.links.values()].filter((link) => !names || names.includes(link.name));
    return this.syncLinks(links);
  }

  status(): CoordinationStatus[] {
    return [...this.links.values()].map((link) => ({
      name: link.name,
      local: link.breaker.state,
      ...(link.shared ? { shared: link.shared } : {}),
      ...(link.generation === undefined ? {} : { generation: link.generation }),
      held: link.held,
      permit: link.permit,
      pendingEvents: link.events.length,
      syncs: link.syncs,
      syncFailures: link.failures,
    }));
  }

  private link(name: string, breaker: CircuitBreaker): Link {
    const configured =
      this.dependencyPolicies?.[name] ?? this.dependencyPolicies?.[name.split(":")[0] ?? name] ?? {};
    const options = { ...defaultDependencyPolicy.breaker, ...configured.breaker };
    return {
      name,
      breaker,
      policy: {
        resetTimeoutMs: options.resetTimeoutMs ?? 30_000,
        probePermits: this.settings.probePermits,
        probeLeaseMs: this.settings.probeLeaseMs,
        windowMs: options.window?.kind === "time" ? options.window.ms : 10_000,
        minimumCalls: options.minimumCalls ?? 10,
        failureRateThreshold: options.failureRateThreshold ?? 0.5,
      },
      generation: undefined,
      shared: undefined,
      events: [],
      reported: { calls: 0, failures: 0 },
      nextSyncAt: 0,
      used: true,
      attempt: 0,
      inFlightSince: undefined,
      changes: 0,
      held: false,
      reopensAt: 0,
      permit: false,
      syncs: 0,
      failures: 0,
    };
  }

  /** Every transition of every breaker passes here, synchronously, inside the call that caused it. */
  private observe(change: StateChange): void {
    const link = this.links.get(change.name);
    if (!link || this.applying || change.reason === "reset-timeout") return;
    link.changes += 1;
    if (change.to !== "half-open") link.permit = false;
    if (change.to === "closed") link.held = false;
    if (change.to === "open" && change.reason !== "coordinated") link.held = false;
    if (change.to !== "half-open" && reportedReasons.has(change.reason)) {
      link.events.push({ to: change.to, reason: change.reason, generation: link.generation });
      if (link.events.length > maxPendingEvents) link.events.shift();
      link.nextSyncAt = 0;
    }
  }

  private async syncLinks(links: Link[]): Promise<void> {
    await Promise.all(links.map((link) => this.syncLink(link)));
  }

  private async syncLink(link: Link): Promise<void> {
    const coordinator = this.coordinator;
    if (!coordinator) return;
    const attempt = ++link.attempt;
    const started = this.clock.now();
    link.inFlightSince = started;
    const { totals } = link.breaker.snapshot();
    const completed = { calls: totals.success + totals.slow + totals.failure, failures: totals.failure };
    const events = link.events.splice(0);
    const changes = link.changes;
    const used = link.used;
    link.used = false;
    const report: BreakerReport = {
      isolate: this.isolate,
      policy: link.policy,
      generation: link.generation,
      counts: {
        calls: completed.calls - link.reported.calls,
        failures: completed.failures - link.reported.failures,
      },
      events,
      wantsProbe: link.permit || (link.held && started >= link.reopensAt),
    };
    try {
      const view = await withTimeout(() => coordinator.sync(link.name, report), this.settings.syncTimeoutMs);
      if (attempt !== link.attempt) return;
      if (link.failures > 0)
        this.log(`breaker ${link.name}: coordinator reachable again`, "info", { breaker: link.name });
      link.failures = 0;
      link.syncs += 1;
      link.reported = completed;
      this.apply(link, view, changes);
    } catch (error) {
      if (attempt !== link.attempt) return;
      link.used ||= used;
      // Reported next time (the counts too: `reported` did not move); a stale event is dropped there.
      link.events.unshift(...events);
      if (link.events.length > maxPendingEvents) link.events.splice(0, link.events.length - maxPendingEvents);
      link.failures += 1;
      link.nextSyncAt = this.clock.now() + this.settings.syncIntervalMs;
      if (link.failures === 1) {
        const why = error instanceof Error ? error.message : String(error);
        this.log(
          `breaker ${link.name}: coordinator unreachable (${why}); this isolate's breaker runs alone`,
          "warn",
          {
            breaker: link.name,
            error: errorFields(error),
          },
        );
      }
    } finally {
      if (attempt === link.attempt) link.inFlightSince = undefined;
    }
    // A transition while this sync was on its way: report it now, in the same background, rather than wait
    // for this isolate's next request (there may be none for a while).
    if (attempt === link.attempt && link.failures === 0 && link.events.length > 0 && link.nextSyncAt === 0) {
      await this.syncLink(link);
    }
  }

  private apply(link: Link, view: SharedView, changesAtSend: number): void {
    const now = this.clock.now();
    const { syncIntervalMs, graceMs } = this.settings;
    link.generation = view.generation;
    link.shared = view;
    if (link.changes !== changesAtSend) {
      // The breaker moved while the answer was on its way: report that first, then take the state.
      link.nextSyncAt = 0;
      return;
    }
    // An operator's forceOpen()/forceClose() wins over the coordinator.
    if (link.breaker.snapshot().forced) {
      link.nextSyncAt = now + syncIntervalMs;
      return;
    }
    this.applying = true;
    try {
      if (view.state === "closed") {
        link.held = false;
        link.permit = false;
        if (link.breaker.state !== "closed") link.breaker.reset();
        link.nextSyncAt = now + syncIntervalMs;
      } else if (view.state === "open") {
        link.held = true;
        link.permit = false;
        link.reopensAt = now + (view.retryInMs ?? 0);
        link.breaker.holdOpenUntil(link.reopensAt + graceMs);
        link.nextSyncAt = Math.min(now + syncIntervalMs, link.reopensAt);
      } else if (view.permit) {
        link.held = false;
        link.permit = true;
        // Half-opens at its next call, which is the probe (one already in flight keeps its place).
        if (link.breaker.state !== "half-open") link.breaker.holdOpenUntil(now);
        link.nextSyncAt = now + Math.min(syncIntervalMs, view.permit.leaseMs);
      } else {
        const wait = view.retryInMs ?? halfOpenPollMs;
        link.held = true;
        link.permit = false;
        link.reopensAt = now + wait;
        link.breaker.holdOpenUntil(link.reopensAt + graceMs);
        link.nextSyncAt = link.reopensAt;
      }
    } finally {
      this.applying = false;
    }
  }
}
