// An actor as a Durable Object class: one ActorInstance per object, and one alarm for timers, relay and pruning.
import { DurableObject } from "cloudflare:workers";
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { type Envelope, parseEnvelope } from "../../../shared/envelope/index.ts";
import { type ErrorData, EdgewiseError, toEdgewiseError } from "../../../shared/errors/index.ts";
import { contextFromTraceparent, withContext } from "../../../shared/telemetry/trace/index.ts";
import { errorFields } from "../../../shared/telemetry/log/redact.ts";
import type { LogLevel } from "../../../shared/telemetry/log/levels.ts";
import {
  type ActorAddress,
  ActorInstance,
  type AnyActorDefinition,
  defaultRelayPolicy,
  formatAddress,
  type RelayPolicy,
  relayFailureFields,
  relayOnce,
  retryDelay,
  type SubscriptionRegistry,
  type Transport,
  type TurnCommit,
  parseAddress,
  targetOf,
  type ActorSnapshot,
} from "../../runtime/index.ts";
import { settingFromEnv } from "./env-settings.ts";
import { CommitQueue } from "./group-commit.ts";
import { DurableActorStore } from "./storage.ts";
import { type IsolateMetrics, isolateMetrics } from "./metrics.ts";
import { type WorkerTracing, workerTracing } from "./tracing.ts";
import { workerLogger } from "./worker-log.ts";

export interface DurableActorOptions<Env> {
  /**
   * Where the relay sends committed outbox messages (e.g. `qstashTransportFromEnv`). Without one (or when it
   * returns undefined), messages wait durably in the outbox.
   */
  transport?: (env: Env) => Transport | undefined;
  /**
   * Who receives published events: each event expands into one delivery per subscribed actor when it is
   * relayed, and an event nobody subscribes to leaves the outbox with no delivery. Declared in the Worker's
   * composition; the producer never names its subscribers. Without it, events reach the transport as they are
   * (no target), which the QStash transport refuses: with QStash, always give one, if need be empty.
   */
  subscriptions?: SubscriptionRegistry | ((env: Env) => SubscriptionRegistry | undefined);
  /** How long handled message ids are remembered for deduplication. Default: EDGEWISE_INBOX_RETENTION, else 7 days. */
  inboxRetentionMs?: number;
  relayPolicy?: RelayPolicy;
  clock?: Clock;
  /**
   * How long a turn may take unless the actor's definition says otherwise. Default: EDGEWISE_TURN_TIMEOUT, else 30 s.
   */
  turnTimeoutMs?: number;
  /**
   * Reports failures of alarm work (relay, timers) and turns that failed with a 5xx; defaults to the isolate's JSON
   * logger (worker-log.ts: warn for what is retried, error for the rest). `fields` says what failed: a relay pass's
   * message ids and actors (`relayFailureFields`).
   */
  onBackgroundError?: (what: string, error: unknown, fields?: Record<string, unknown>) => void;
}

/** What `ask` and `receive` return over RPC: errors travel as values in the error model's wire shape. */
export type ActorRpcOutcome =
  | { ok: true; duplicate: boolean; reply: unknown }
  | { ok: false; error: ErrorData };

/**
 * The caller's span (the gateway's request, a delivery's CONSUMER span) as W3C trace context: the object runs the
 * turn under it, as the local host runs it under the caller's active context. The envelope's own traceparent is
 * the message's creation context (the turn's link), which is another thing.
 */
export interface CallerTrace {
  traceparent: string;
  tracestate?: string;
}

/** The RPC surface of every actor object, as a stub sees it. */
export interface DurableActorRpc {
  ask(envelope: Envelope, caller?: CallerTrace): Promise<ActorRpcOutcome>;
  receive(envelope: Envelope, caller?: CallerTrace): Promise<ActorRpcOutcome>;
  inspect(): Promise<ActorSnapshot>;
}

const timerBatch = 256;

/**
 * Builds the Durable Object class of one actor type. Route to it with `idFromName(key)`; every delivery
 * carries its `target` (`type/key`), which the object checks against the address it first committed under.
 * `definition` may depend on the environment (e.g. a schema version chosen by a variable).
 */
export function durableActor<Env = unknown>(
  definition: AnyActorDefinition | ((env: Env) => AnyActorDefinition),
  options: DurableActorOptions<Env> = {},
) {
  const clock = options.clock ?? systemClock;
  const relayPolicy = options.relayPolicy ?? defaultRelayPolicy;

  return class DurableActor extends DurableObject<Env> implements DurableActorRpc {
    private readonly definition: AnyActorDefinition;
    private readonly store: DurableActorStore;
    private readonly commits: CommitQueue;
    private readonly transport: Transport | undefined;
    private readonly subscriptions: SubscriptionRegistry | undefined;
    /** With OTEL_EXPORTER_OTLP_ENDPOINT: the isolate's tracing, flushed as each call and alarm ends. */
    private readonly tracing: Promise<WorkerTracing> | undefined;
    /** With an OTLP endpoint: the isolate's turn metrics, pushed as calls and alarms end (metrics.ts). */
    private readonly metrics: IsolateMetrics | undefined;
    /** Handled ids are pruned after this long; a turn fails after `turnTimeoutMs` (the options, else the env's). */
    private readonly retentionMs: number;
    private readonly turnTimeoutMs: number;
    private instance: ActorInstance | undefined;
    /** The alarm as last set by this object; null when none is pending. */
    private alarmAt: number | null = null;
    /** Where failures go: `onBackgroundError`, else one JSON line at `level` (the node's host logs the same). */
    private readonly report: (
      what: string,
      error: unknown,
      fields?: Record<string, unknown>,
      level?: LogLevel,
    ) => void;

    constructor(ctx: DurableObjectState, env: Env) {
      super(ctx, env);
      const logger = workerLogger(env).child({ component: "durable-object" });
      this.report =
        options.onBackgroundError ??
        ((what, error, fields, level = "warn") =>
          logger[level](what, { ...fields, error: errorFields(error) }));
      this.definition = typeof definition === "function" ? definition(env) : definition;
      // As a node reads them (a bad value is `config.invalid`, which every call of this object then answers).
      this.retentionMs = options.inboxRetentionMs ?? settingFromEnv(env, "EDGEWISE_INBOX_RETENTION");
      this.turnTimeoutMs = options.turnTimeoutMs ?? settingFromEnv(env, "EDGEWISE_TURN_TIMEOUT");
      this.store = new DurableActorStore(ctx.storage);
      this.commits = new CommitQueue(this.store);
      this.transport = options.transport?.(env);
      this.tracing = workerTracing(env);
      const metrics = isolateMetrics(env, "actors");
      this.metrics = metrics.pushes ? metrics : undefined;
      // The queue's last answer to this isolate's relays (relayTransportFromEnv's is the isolate's, not the object's).
      const transport = this.transport;
      if (this.metrics && transport?.rateLimitedUntil)
        this.metrics.metrics.observeQueueRateLimit(() => transport.rateLimitedUntil?.());
      this.subscriptions =
        typeof options.subscriptions === "function" ? options.subscriptions(env) : options.subscriptions;
      void ctx.blockConcurrencyWhile(async () => {
        this.alarmAt = await ctx.storage.getAlarm();
        this.wake();
      });
    }

    ask(envelope: Envelope, caller?: CallerTrace): Promise<ActorRpcOutcome> {
      return this.traced(caller, () => this.deliver(envelope));
    }

    receive(envelope: Envelope, caller?: CallerTrace): Promise<ActorRpcOutcome> {
      return this.traced(caller, () => this.deliver(envelope));
    }

    async inspect(): Promise<ActorSnapshot> {
      return this.store.inspect();
    }

    override async alarm(): Promise<void> {
      try {
        await this.alarmPass();
      } finally {
        this.exportTelemetry();
      }
    }

    /**
     * Runs an RPC call in its caller's trace context (the turn's span is then that caller's child, as on the
     * local host), then exports what the call recorded.
     */
    private async traced<T>(caller: CallerTrace | undefined, work: () => Promise<T>): Promise<T> {
      try {
        if (!this.tracing) return await work();
        await this.tracing; // the provider is installed before the call makes its first span
        return await withContext(contextFromTraceparent(caller?.traceparent, caller?.tracestate), work);
      } finally {
        this.exportTelemetry();
      }
    }

    /** With an OTLP endpoint, as each call and alarm ends: the spans it made, and the metrics when a push is due. */
    private exportTelemetry(): void {
      if (this.tracing) this.ctx.waitUntil(this.tracing.then((tracing) => tracing.flush()));
      this.metrics?.pushIfDue((promise) => this.ctx.waitUntil(promise));
    }

    private async alarmPass(): Promise<void> {
      this.alarmAt = null; // this alarm is consumed; anything set from here on is a new one
      try {
        const address = this.store.address;
        if (address !== undefined) await this.fireDueTimers(this.instanceFor(parseAddress(address)));
        if (this.transport) {
          const pass = await relayOnce(this.store, this.transport, clock, relayPolicy, this.subscriptions);
          if (pass.lastError !== undefined) {
            this.report(
              `relay: ${pass.failed} messages will be retried`,
              pass.lastError,
              relayFailureFields(pass.failedMessages ?? []),
            );
          }
        }
        // Ids whose retention ends by now (`nextWorkAt` asks for this alarm then): `pruneInbox` keeps `at` equal to
        // its bound, and the clock stands still during the alarm, so this alarm can run at exactly `at + retention`.
        this.store.pruneInbox(clock.now() - this.retentionMs + 1);
        // Work left that is due now gets an alarm 1 ms on, never one at this alarm's own time: workerd drops an
        // alarm set to the time of the one running once it returns, and the work would then wait for a later commit.
        this.rearm(clock.now() + 1);
      } catch (error) {
        this.report("alarm pass failed", error, {}, "error");
        this.rearm(clock.now() + relayPolicy.baseDelayMs);
      }
    }

    private async deliver(input: Envelope): Promise<ActorRpcOutcome> {
      try {
        const envelope = parseEnvelope(input);
        const address = targetOf(envelope);
        if (address.type !== this.definition.type) {
          throw new EdgewiseError(
            "envelope.invalid",
            `delivery for ${envelope.target} reached a ${this.definition.type} object`,
          );
        }
        const name = this.ctx.id.name;
        if (name !== undefined && name !== address.key) {
          throw new EdgewiseError("envelope.invalid", `delivery for ${envelope.target} reached ${name}`);
        }
        const { duplicate, reply } = await this.instanceFor(address).deliver(envelope);
        return { ok: true, duplicate, reply };
      } catch (error) {
        const failure = toEdgewiseError(error);
        // Only the code and message cross RPC: the cause (a handler's own error) is reported here (the default
        // report logs it redacted), or it would be seen nowhere.
        if (failure.status >= 500)
          this.report(
            `${this.definition.type} turn failed: ${failure.code}`,
            error,
            this.instance ? { actor: this.instance.address } : {},
            "error",
          );
        return { ok: false, error: failure.toJSON() };
      }
    }

    private instanceFor(address: ActorAddress): ActorInstance {
      if (this.instance?.broken) this.instance = undefined;
      if (this.instance) {
        if (this.instance.address.key !== address.key) {
          throw new EdgewiseError(
            "envelope.invalid",
            `delivery for ${formatAddress(address)} reached the object of ${formatAddress(this.instance.address)}`,
          );
        }
        return this.instance;
      }
      const storage = this.commits.storageFor(formatAddress(address));
      this.instance = new ActorInstance({
        definition: this.definition,
        key: address.key,
        storage,
        clock,
        onCommitted: (commit) => this.afterCommit(commit),
        ...(this.metrics ? { onTurn: (record) => this.metrics?.metrics.turn(record) } : {}),
        turnTimeoutMs: this.turnTimeoutMs,
      });
      return this.instance;
    }

    private async fireDueTimers(instance: ActorInstance): Promise<void> {
      const due = this.store.dueTimers(clock.now(), timerBatch);
      await Promise.all(
        due.map(async (timer) => {
          try {
            await instance.deliver(timer.envelope, { timerId: timer.id });
          } catch (error) {
            // At least once: the timer stays, and fires again after a backoff.
            const attempts = timer.attempts + 1;
            const at = clock.now() + retryDelay(attempts, relayPolicy);
            this.store.retryTimer(timer.id, timer.envelope.id, at, attempts);
            this.report(
              `timer ${timer.id} on ${instance.address.type}/${instance.address.key} failed`,
              error,
              {
                actor: instance.address,
                timer: timer.id,
              },
            );
          }
        }),
      );
    }

    /** Runs before the turn's reply leaves, so the alarm write is behind the same output gate. */
    private afterCommit(commit: TurnCommit): void {
      let at = Number.POSITIVE_INFINITY;
      if (commit.outbox.length > 0 && this.transport) at = clock.now();
      for (const timer of commit.timersAdded) at = Math.min(at, timer.at);
      if (commit.inbox && this.alarmAt === null) at = Math.min(at, commit.inbox.at + this.retentionMs);
      if (at === Number.POSITIVE_INFINITY) return;
      if (this.alarmAt !== null && this.alarmAt <= at) return;
      this.setAlarm(at);
    }

    /**
     * As the object starts: stored work due before the pending alarm (or with none) moves the alarm earlier. Only a
     * commit's own outbox and timers set alarms, so outbox rows committed while the Worker had no transport (before
     * QSTASH_URL was set: the alarm then is only the inbox's pruning, days away) or a lost alarm would otherwise
     * wait for a later turn that happens to send something.
     */
    private wake(): void {
      const next = this.nextWorkAt();
      if (next === undefined) return;
      const at = Math.max(next, clock.now());
      if (this.alarmAt === null || this.alarmAt > at) this.setAlarm(at);
    }

    /** After an alarm pass: exactly one alarm for the earliest remaining work (not before `earliest`), or none. */
    private rearm(earliest: number): void {
      const next = this.nextWorkAt();
      if (next === undefined) {
        // Unconditionally: wake() may have set an alarm as this pass's own alarm woke the object.
        this.alarmAt = null;
        void this.ctx.storage.deleteAlarm();
        return;
      }
      const at = Math.max(next, earliest);
      if (this.alarmAt !== at) this.setAlarm(at);
    }

    /** When the earliest stored work is due: a timer, the outbox (with a transport), or inbox pruning. */
    private nextWorkAt(): number | undefined {
      const candidates = [this.store.nextTimerAt()];
      if (this.transport) candidates.push(this.store.nextOutboxAt());
      const oldest = this.store.oldestInboxAt();
      if (oldest !== undefined) candidates.push(oldest + this.retentionMs);
      const due = candidates.filter((at): at is number => at !== undefined);
      return due.length === 0 ? undefined : Math.min(...due);
    }

    private setAlarm(at: number): void {
      this.alarmAt = at;
      void this.ctx.storage.setAlarm(at);
    }
  };
}
