// Edgewise's instruments: HTTP RED, actor turns, mailboxes and outboxes, deliveries, breakers, rate limits, caches.
import type { Dependencies } from "../../resilience/index.ts";
import { httpMethodName } from "../http-method.ts";
import { MetricsRegistry, type RegistryOptions } from "./registry.ts";

/*
 * Names follow OTel's semantic conventions where there is one (`http.server.request.duration` in seconds,
 * `messaging.process.duration`), rendered the Prometheus way: dots become underscores, the unit is a suffix,
 * counters end in `_total`. Edgewise's own instruments are prefixed `edgewise_`.
 *
 * Inputs are structural (a request record, a turn record, a cache's `stats()`), so this module imports nothing
 * from `actors/` or `edge/`, and the hooks that feed it stay plain callbacks.
 */

/** OTel's default boundaries for `http.server.request.duration`, in seconds. */
export const httpDurationBuckets = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
] as const;
/** A turn is usually well under a millisecond (the commit is waited for separately), so finer at the bottom. */
export const turnDurationBuckets = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
] as const;

export interface RequestSample {
  method: string;
  /** The matched route pattern, never the raw path. */
  route: string;
  status: number;
  durationMs: number;
}

export interface TurnSample {
  actorType: string;
  /** `write` (a commit was queued), `read` (nothing to commit), `duplicate` (already handled), `failed`. */
  outcome: string;
  /** From leaving the mailbox to the turn's end (handler, validation, commit queued). */
  durationMs: number;
  /** Time spent in the mailbox before the turn started. */
  waitMs: number;
}

export type DeliveryOutcome = "processed" | "duplicate" | "rejected" | "unauthorized" | "failed";

export interface DeliverySample {
  /** The target actor type; only trusted once the signature verified (else `_unverified`). */
  targetType: string;
  status: number;
  outcome: DeliveryOutcome;
  /** `Upstash-Retried`: how many earlier attempts the broker made. */
  retried: number;
  durationMs: number;
}

/** What one billing delivery did, once its Postgres transaction committed (billing's `BillingOutcome`). */
export const billingPaymentOutcomes = ["captured", "failed", "refunded", "duplicate"] as const;
export type BillingPaymentOutcome = (typeof billingPaymentOutcomes)[number];

export interface ActorTypeStats {
  type: string;
  active: number;
  mailboxDepth: number;
}

export interface OutboxBacklog {
  pending: number;
  /** Age of the oldest pending entry, 0 when none. */
  oldestAgeMs: number;
}

export interface BrokerStats {
  /** Messages in the dead-letter queue. */
  deadLetters: number;
  /** Messages waiting for delivery or a retry. */
  pending: number;
}

export interface CacheStatsSource {
  stats(): { hits: number; misses: number; errors: number };
}

type Source<T> = () => T | Promise<T>;

/** Read synchronously at scrape time, from values a node samples on its own. */
export interface NodeLoad {
  behindMs: () => number;
  eventLoopLagMs: () => number;
}

const breakerStates = ["closed", "open", "half-open"] as const;

/** `2xx`, `4xx`, `5xx`. */
export const statusClass = (status: number) => `${Math.floor(status / 100)}xx`;

/**
 * One per node (or isolate). Recording methods are cheap and synchronous; the `observe*` methods attach sources
 * that are read at scrape time. Attaching again replaces the source of the same name.
 */
export class EdgewiseMetrics {
  readonly registry: MetricsRegistry;
  private readonly http;
  private readonly turnDuration;
  private readonly mailboxWait;
  private readonly process;
  private readonly deliveries;
  private readonly retries;
  private readonly rateLimits;
  private readonly billingPayments;
  private readonly adminEvents;
  private readonly admissionRefusals;
  private load: NodeLoad | undefined;
  private actors: Source<ActorTypeStats[]> | undefined;
  private outbox: Source<OutboxBacklog> | undefined;
  private billingOutbox: Source<OutboxBacklog> | undefined;
  private broker: Source<BrokerStats> | undefined;
  private brokerDelivered: Source<number> | undefined;
  private queueLimitedUntil: (() => number | undefined) | undefined;
  private dependencies: Dependencies | undefined;
  private readonly caches = new Map<string, CacheStatsSource>();

  constructor(registry: MetricsRegistry | RegistryOptions = {}) {
    const r = registry instanceof MetricsRegistry ? registry : new MetricsRegistry(registry);
    this.registry = r;

    this.http = r.histogram({
      name: "http_server_request_duration_seconds",
      help: "Duration of HTTP server requests, by matched route, method and status.",
      unit: "s",
      labelNames: ["http_request_method", "http_route", "http_response_status_code"],
      buckets: httpDurationBuckets,
    });

    this.turnDuration = r.histogram({
      name: "edgewise_actor_turn_duration_seconds",
      help: "Duration of actor turns (handler and validation, commit queued), by actor type and outcome.",
      unit: "s",
      labelNames: ["actor_type", "outcome"],
      buckets: turnDurationBuckets,
    });
    this.mailboxWait = r.histogram({
      name: "edgewise_actor_mailbox_wait_seconds",
      help: "Time a message waited in an actor's mailbox before its turn started.",
      unit: "s",
      labelNames: ["actor_type"],
      buckets: turnDurationBuckets,
    });
    r.callbackGauge({
      name: "edgewise_actor_mailbox_depth",
      help: "Messages waiting in the mailboxes of active actors, by actor type.",
      labelNames: ["actor_type"],
      observe: async (observe) => {
        for (const stats of (await this.actors?.()) ?? [])
          observe(stats.mailboxDepth, { actor_type: stats.type });
      },
    });
    r.callbackGauge({
      name: "edgewise_actors_active",
      help: "Activated actors held in memory, by actor type.",
      labelNames: ["actor_type"],
      observe: async (observe) => {
        for (const stats of (await this.actors?.()) ?? []) observe(stats.active, { actor_type: stats.type });
      },
    });
    backlogGauges(
      r,
      "edgewise_outbox",
      inflight(() => this.outbox?.()),
      {
        pending: "Committed outbox entries not yet handed to the queue.",
        lag: "Age of the oldest committed outbox entry not yet handed to the queue (0 when empty).",
      },
    );
    backlogGauges(
      r,
      "edgewise_billing_outbox",
      inflight(() => this.billingOutbox?.()),
      {
        pending: "Billing's replies committed in its Postgres outbox and not yet handed to the queue.",
        lag: "Age of the oldest message in billing's Postgres outbox (0 when empty).",
      },
    );

    this.billingPayments = r.counter({
      name: "edgewise_billing_payments_total",
      help: "Billing deliveries committed, by outcome: captured, failed (insufficient funds), refunded, duplicate (already handled, nothing changed).",
      labelNames: ["outcome"],
    });

    this.adminEvents = r.counter({
      name: "edgewise_admin_events_total",
      help: "Admin actions (API keys, webhook subscriptions, balances, stock, dead letters, backups) by action and outcome: recorded in the activity log, or failed (a warn line says which; the grants account_set, api_key_created and webhook_subscription_created were rolled back with their record; the others stood, revocations included).",
      labelNames: ["action", "outcome"],
    });

    this.process = r.histogram({
      name: "messaging_process_duration_seconds",
      help: "Duration of processing one delivered message at the delivery endpoint.",
      unit: "s",
      labelNames: [
        "messaging_system",
        "messaging_operation_name",
        "messaging_destination_name",
        "error_type",
      ],
      buckets: httpDurationBuckets,
    });
    this.deliveries = r.counter({
      name: "edgewise_deliveries_total",
      help: "Deliveries received from the queue, by target actor type, outcome and status class.",
      labelNames: ["target_type", "outcome", "status_class"],
    });
    this.retries = r.counter({
      name: "edgewise_delivery_retries_total",
      help: "Deliveries that were redeliveries (Upstash-Retried > 0), by target actor type.",
      labelNames: ["target_type"],
    });
    const brokerStats = inflight(() => this.broker?.());
    r.callbackGauge({
      name: "edgewise_dead_letters",
      help: "Messages in the broker's dead-letter queue.",
      observe: async (observe) => {
        const value = await brokerStats();
        if (value) observe(value.deadLetters);
      },
    });
    r.callbackGauge({
      name: "edgewise_broker_messages_pending",
      help: "Messages the broker holds for delivery or a retry.",
      observe: async (observe) => {
        const value = await brokerStats();
        if (value) observe(value.pending);
      },
    });
    r.callbackCounter({
      name: "edgewise_broker_deliveries_total",
      help: "Deliveries the embedded broker saw answered 2xx since it started.",
      observe: async (observe) => {
        if (this.brokerDelivered) observe(await this.brokerDelivered());
      },
    });

    r.callbackGauge({
      name: "edgewise_queue_rate_limited_seconds",
      help: "Seconds until the queue's limit resets, while its last answer to a publish was a 429 saying so (QStash's daily or burst limit; 0 otherwise). The queue answers: the node stays ready and its relays wait, every message kept.",
      unit: "s",
      observe: (observe) => {
        if (!this.queueLimitedUntil) return;
        const until = this.queueLimitedUntil();
        observe(until === undefined ? 0 : Math.max(0, (until - Date.now()) / 1000));
      },
    });

    // By dependency, and by kind for the many of a kind (`webhook`, not `webhook:<host>`; see Dependencies.tallies).
    r.callbackGauge({
      name: "edgewise_breaker_state",
      help: "Breakers in each state, by dependency: 1 for the state of a dependency's breaker; for webhook, how many receiver hosts' breakers are in it.",
      labelNames: ["dependency", "state"],
      observe: (observe) => {
        for (const { dependency, states } of this.dependencies?.tallies() ?? []) {
          for (const state of breakerStates) observe(states[state], { dependency, state });
        }
      },
    });
    r.callbackCounter({
      name: "edgewise_breaker_calls_total",
      help: "Calls through each dependency's breakers, by outcome.",
      labelNames: ["dependency", "outcome"],
      observe: (observe) => {
        for (const { dependency, totals } of this.dependencies?.tallies() ?? []) {
          for (const [outcome, count] of Object.entries(totals)) observe(count, { dependency, outcome });
        }
      },
    });
    r.callbackCounter({
      name: "edgewise_breaker_transitions_total",
      help: "State changes of each dependency's breakers.",
      labelNames: ["dependency", "from", "to"],
      observe: (observe) => {
        for (const { dependency, transitions } of this.dependencies?.tallies() ?? []) {
          for (const [key, count] of transitions) {
            const [from = "", to = ""] = key.split("|");
            observe(count, { dependency, from, to });
          }
        }
      },
    });

    this.admissionRefusals = r.counter({
      name: "edgewise_admission_refused_total",
      help: "Requests that start new work (POST /v1/orders) refused with 503 overloaded, before anything was written.",
    });
    r.callbackGauge({
      name: "edgewise_queue_behind_seconds",
      help: "How far behind the node's queues are: the wait of the oldest message due and not yet delivered (what admission compares with EDGEWISE_MAX_QUEUE_DELAY).",
      unit: "s",
      observe: (observe) => {
        if (this.load) observe(this.load.behindMs() / 1000);
      },
    });
    r.callbackGauge({
      name: "edgewise_event_loop_lag_seconds",
      help: "The longest a 100 ms timer fired late over the last 5 s: how long the JS thread was busy without a break.",
      unit: "s",
      observe: (observe) => {
        if (this.load) observe(this.load.eventLoopLagMs() / 1000);
      },
    });

    this.rateLimits = r.counter({
      name: "edgewise_rate_limit_decisions_total",
      help: "Rate-limit decisions by route class: allowed, limited, fallback (local limiter decided), unavailable.",
      labelNames: ["route_class", "decision", "success"],
    });

    const cacheCounter = (
      name: string,
      help: string,
      pick: (s: ReturnType<CacheStatsSource["stats"]>) => number,
    ) =>
      r.callbackCounter({
        name,
        help,
        labelNames: ["cache"],
        observe: (observe) => {
          for (const [cache, source] of this.caches) observe(pick(source.stats()), { cache });
        },
      });
    cacheCounter(
      "edgewise_read_cache_hits_total",
      "Read-cache lookups served from the cache.",
      (s) => s.hits,
    );
    cacheCounter(
      "edgewise_read_cache_misses_total",
      "Read-cache lookups that loaded from the source.",
      (s) => s.misses,
    );
    cacheCounter(
      "edgewise_read_cache_errors_total",
      "Read-cache operations that failed (the read fell through to the source).",
      (s) => s.errors,
    );
    r.callbackGauge({
      name: "edgewise_read_cache_hit_ratio",
      help: "Hits over lookups since start (0 before the first lookup).",
      unit: "1",
      labelNames: ["cache"],
      observe: (observe) => {
        for (const [cache, source] of this.caches) {
          const { hits, misses } = source.stats();
          observe(hits + misses === 0 ? 0 : hits / (hits + misses), { cache });
        }
      },
    });
  }

  // --- recording (hot paths) ---

  request(sample: RequestSample): void {
    this.http.record(sample.durationMs / 1000, {
      http_request_method: httpMethodName(sample.method),
      http_route: sample.route,
      http_response_status_code: String(sample.status),
    });
  }

  turn(sample: TurnSample): void {
    this.turnDuration.record(sample.durationMs / 1000, {
      actor_type: sample.actorType,
      outcome: sample.outcome,
    });
    this.mailboxWait.record(sample.waitMs / 1000, { actor_type: sample.actorType });
  }

  delivery(sample: DeliverySample): void {
    const target = sample.targetType;
    this.deliveries.inc({
      target_type: target,
      outcome: sample.outcome,
      status_class: statusClass(sample.status),
    });
    if (sample.retried > 0) this.retries.inc({ target_type: target });
    const failed = sample.outcome !== "processed" && sample.outcome !== "duplicate";
    this.process.record(sample.durationMs / 1000, {
      messaging_system: "qstash",
      messaging_operation_name: "process",
      messaging_destination_name: target,
      error_type: failed ? String(sample.status) : "",
    });
  }

  /** After billing's transaction committed; never for one rolled back. */
  billingPayment(outcome: BillingPaymentOutcome): void {
    this.billingPayments.inc({ outcome });
  }

  /**
   * One admin action's record in the activity log: `recorded`, or `failed` (the grants `account_set`,
   * `api_key_created` and `webhook_subscription_created` were rolled back with it; every other action stood,
   * revocations included).
   */
  adminEvent(action: string, outcome: "recorded" | "failed"): void {
    this.adminEvents.inc({ action, outcome });
  }

  /**
   * Where billing is delivered: every outcome's series exists from the start, at 0, so that a rate or an alert on
   * `failed` has a series before the first failure (Prometheus cannot tell a missing series from no data).
   */
  countBillingPayments(): this {
    for (const outcome of billingPaymentOutcomes) this.billingPayments.add(0, { outcome });
    return this;
  }

  rateLimit(decision: { reason: string; success: boolean }, routeClass: string): void {
    this.rateLimits.inc({
      route_class: routeClass,
      decision: decision.reason,
      success: String(decision.success),
    });
  }

  /** A request that starts new work, refused by admission control (503 overloaded). */
  admissionRefused(): void {
    this.admissionRefusals.inc();
  }

  // --- sources read at scrape time ---

  /** The node's load: how far behind its queues are, and its event loop's lag. */
  observeLoad(load: NodeLoad): this {
    this.load = load;
    return this;
  }

  observeActors(source: Source<ActorTypeStats[]>): this {
    this.actors = source;
    return this;
  }

  observeOutbox(source: Source<OutboxBacklog>): this {
    this.outbox = source;
    return this;
  }

  /** Billing's own outbox (Postgres), relayed by the node that hosts the actors. */
  observeBillingOutbox(source: Source<OutboxBacklog>): this {
    this.billingOutbox = source;
    return this;
  }

  observeBroker(stats: Source<BrokerStats>, delivered?: Source<number>): this {
    this.broker = stats;
    this.brokerDelivered = delivered;
    return this;
  }

  /** Until when (ms since the epoch) the queue said its limit is spent (`Transport.rateLimitedUntil`). */
  observeQueueRateLimit(limitedUntil: () => number | undefined): this {
    this.queueLimitedUntil = limitedUntil;
    return this;
  }

  observeDependencies(dependencies: Dependencies): this {
    this.dependencies = dependencies;
    return this;
  }

  observeReadCache(name: string, cache: CacheStatsSource): this {
    this.caches.set(name, cache);
    return this;
  }
}

/** An outbox's two gauges, `<name>_pending` and `<name>_lag_seconds`, from one read per scrape. */
function backlogGauges(
  r: MetricsRegistry,
  name: string,
  read: () => Promise<OutboxBacklog | undefined>,
  help: { pending: string; lag: string },
): void {
  r.callbackGauge({
    name: `${name}_pending`,
    help: help.pending,
    observe: async (observe) => {
      const value = await read();
      if (value) observe(value.pending);
    },
  });
  r.callbackGauge({
    name: `${name}_lag_seconds`,
    help: help.lag,
    unit: "s",
    observe: async (observe) => {
      const value = await read();
      if (value) observe(value.oldestAgeMs / 1000);
    },
  });
}

/** Shares one read among the instruments collected in the same scrape (they start in the same tick). */
function inflight<T>(read: () => T | Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    if (!pending) {
      const started = Promise.resolve().then(read);
      pending = started;
      void started.then(
        () => (pending = undefined),
        () => (pending = undefined),
      );
    }
    return pending;
  };
}
