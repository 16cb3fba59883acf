// The local host (Bun and Deno): activates actors on demand, runs the relay and timer loops, evicts idle actors.
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import { type Envelope, parseEnvelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import {
  type ActorAddress,
  type ActorHost,
  ActorInstance,
  ActorRegistry,
  type AnyActorDefinition,
  type AskOptions,
  askEnvelope,
  type DeliverOptions,
  assertValidKey,
  defaultRelayPolicy,
  formatAddress,
  type RelayPolicy,
  relayFailureFields,
  relayOnce,
  type SubscriptionRegistry,
  retryDelay,
  type Transport,
  type TurnCommit,
  type TurnOutcome,
  type TurnRecord,
  targetOf,
  type ActorSnapshot,
  nextMacrotask,
} from "../../runtime/index.ts";
import type { SqlDatabase } from "./sql.ts";
import { type DueTimer, LocalStore } from "./store.ts";
import { evictLeastRecent } from "../../../shared/collections/recency.ts";

/** Timer firings in flight at once, at most. */
const maxTimerFirings = 256;
/** Handled ids the inbox prune deletes per statement. */
const INBOX_PRUNE_BATCH = 1_000;
/** Instances looked at, oldest first, for an idle one to evict when the host is full (see `makeRoom`). */
const evictionScan = 64;

/** What a message, or `hasState`, meets once the host is stopping: retried elsewhere or later. */
const shuttingDown = () => new EdgewiseError("unavailable", "this actor host is shutting down");

/** Keyed by actor and id: a timer id may be one the handler chose, and two actors may choose the same. */
const firingKey = (timer: { actor: string; id: string }) => `${timer.actor} ${timer.id}`;

export interface LocalHostOptions {
  actors: Iterable<AnyActorDefinition>;
  db: SqlDatabase;
  /** Where the relay sends committed outbox messages. Without one, messages wait durably in the outbox. */
  transport?: Transport;
  /** Who receives published events; without it, events go to the transport as they are (topic, no target). */
  subscriptions?: SubscriptionRegistry;
  clock?: Clock;
  /** How long handled message ids are remembered for deduplication. Default 7 days. */
  inboxRetentionMs?: number;
  /** Evict an actor after this long without a message. Default 60 s. */
  idleEvictMs?: number;
  /**
   * Actors held in memory at most: activating one more first evicts the least recently asked idle one. Default
   * 10,000. Busy actors (a turn running, queued or committing) are never evicted, so the host can hold more while
   * they are busy.
   */
  maxActiveActors?: number;
  relayPolicy?: RelayPolicy;
  /** Longest sleep of the relay and timer loops between wake-ups. Default 1 s. */
  pollMs?: number;
  /**
   * Reports failures of background work (relay, timers); defaults to console.error. `fields` says what failed, for
   * the log line: a relay pass's message ids and actors (`relayFailureFields`).
   */
  onBackgroundError?: (what: string, error: unknown, fields?: Record<string, unknown>) => void;
  /** Observes every turn of every actor (metrics); see `TurnRecord`. */
  onTurn?: (record: TurnRecord) => void;
  /** How long a turn may take unless the actor's definition says otherwise. Default 30 s. */
  turnTimeoutMs?: number;
}

export interface HostStats {
  activeActors: number;
  mailboxDepth: number;
  /** The same, per actor type with at least one active actor. */
  byType: Array<{ type: string; active: number; mailboxDepth: number }>;
}

export class LocalActorHost implements ActorHost {
  readonly store: LocalStore;
  private readonly registry: ActorRegistry;
  private readonly clock: Clock;
  private readonly instances = new Map<string, ActorInstance>();
  /** Timers firing now, by `firingKey`, and their firings (stop waits for them before closing the store). */
  private readonly firingTimers = new Set<string>();
  private readonly firings = new Set<Promise<void>>();
  private readonly options: Required<
    Omit<LocalHostOptions, "transport" | "actors" | "db" | "subscriptions" | "onTurn" | "turnTimeoutMs">
  > & {
    transport: Transport | undefined;
    subscriptions: SubscriptionRegistry | undefined;
    onTurn: ((record: TurnRecord) => void) | undefined;
    /** Undefined: the runtime's default (`defaultTurnTimeoutMs`). */
    turnTimeoutMs: number | undefined;
  };
  private stopped = false;
  private relayWake: (() => void) | undefined;
  private timerWake: (() => void) | undefined;
  private readonly loops: Promise<void>[] = [];
  private sweepHandle: ReturnType<typeof setInterval> | undefined;
  /** The inbox prune under way, if any. */
  private pruning: Promise<void> | undefined;

  constructor(options: LocalHostOptions) {
    this.registry = new ActorRegistry(options.actors);
    this.store = new LocalStore(options.db);
    this.clock = options.clock ?? systemClock;
    this.options = {
      transport: options.transport,
      subscriptions: options.subscriptions,
      onTurn: options.onTurn,
      turnTimeoutMs: options.turnTimeoutMs,
      clock: this.clock,
      inboxRetentionMs: options.inboxRetentionMs ?? 7 * 86_400_000,
      idleEvictMs: options.idleEvictMs ?? 60_000,
      maxActiveActors: options.maxActiveActors ?? 10_000,
      relayPolicy: options.relayPolicy ?? defaultRelayPolicy,
      pollMs: options.pollMs ?? 1_000,
      onBackgroundError:
        options.onBackgroundError ??
        ((what, error, fields) => console.error(`[edgewise] ${what}`, ...(fields ? [fields] : []), error)),
    };
  }

  /** Starts the background loops. Outbox entries and timers left by a previous run are picked up at once. */
  start(): this {
    this.loops.push(this.relayLoop(), this.timerLoop());
    const sweepEvery = Math.max(1_000, Math.min(this.options.idleEvictMs, 60_000));
    this.sweepHandle = setInterval(() => this.sweep(), sweepEvery);
    this.pruneInbox();
    return this;
  }

  /**
   * Stops taking messages (a new one gets 503 `unavailable`, which the broker retries elsewhere or later), lets
   * the turns already queued or running finish and commit, within `drainMs`, then closes the store. Before, a
   * running turn lost its database under it ("closed database") and used up one of the broker's retries.
   */
  async stop(drainMs = 10_000): Promise<void> {
    this.stopped = true;
    if (this.sweepHandle) clearInterval(this.sweepHandle);
    this.relayWake?.();
    this.timerWake?.();
    const deadline = Date.now() + drainMs;
    while (Date.now() < deadline && [...this.instances.values()].some((instance) => !instance.idle))
      await new Promise((resolve) => setTimeout(resolve, 10));
    await Promise.all([...this.loops, ...this.firings, this.pruning]);
    this.store.close();
  }

  get actorTypes(): string[] {
    return this.registry.types;
  }

  /** With `onlyIfState`, an actor without state (`hasState`) is answered `{ noState: true }`, and not activated. */
  ask(address: ActorAddress, type: string, data: unknown, options?: AskOptions): Promise<TurnOutcome> {
    let envelope: Envelope;
    try {
      envelope = askEnvelope(address, type, data, options);
      if (options?.onlyIfState && !this.hasState(address))
        return Promise.resolve({ duplicate: false, reply: undefined, noState: true });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.dispatch(address, envelope, {
      freshId: options?.id === undefined,
      ...(options?.signal ? { signal: options.signal } : {}),
    });
  }

  receive(input: Envelope): Promise<TurnOutcome> {
    const envelope = parseEnvelope(input);
    return this.dispatch(targetOf(envelope), envelope);
  }

  inspect(address: ActorAddress): ActorSnapshot {
    this.registry.resolve(address.type);
    assertValidKey(address.key);
    return this.store.inspect(formatAddress(address));
  }

  /**
   * `ActorHost.hasState` without activating the actor: an active instance (whose first commit may still be under
   * way), else one indexed lookup in the store. A caller that only needs to know whether an actor exists (admission's
   * "does this order exist?") so avoids loading an instance and running a turn for a key never used. Once stopping,
   * it refuses as an ask does (503 `unavailable`), so a caller answering for the actor answers what the actor would.
   */
  hasState(address: ActorAddress): boolean {
    this.registry.resolve(address.type);
    assertValidKey(address.key);
    if (this.stopped) throw shuttingDown();
    const id = formatAddress(address);
    return this.instances.has(id) || this.store.hasState(id);
  }

  stats(): HostStats {
    let mailboxDepth = 0;
    const byType = new Map<string, { type: string; active: number; mailboxDepth: number }>();
    for (const instance of this.instances.values()) {
      mailboxDepth += instance.mailboxDepth;
      const type = instance.address.type;
      const entry = byType.get(type) ?? { type, active: 0, mailboxDepth: 0 };
      entry.active++;
      entry.mailboxDepth += instance.mailboxDepth;
      byType.set(type, entry);
    }
    return { activeActors: this.instances.size, mailboxDepth, byType: [...byType.values()] };
  }

  /** Committed outbox entries not yet sent, and the age of the oldest (the relay's lag). */
  outboxBacklog(): { pending: number; oldestAgeMs: number } {
    const { pending, oldestAt } = this.store.outboxBacklog();
    return { pending, oldestAgeMs: oldestAt === undefined ? 0 : Math.max(0, this.clock.now() - oldestAt) };
  }

  /** Runs due timers and one relay pass now. Tests with a manual clock call it after advancing time. */
  async tick(): Promise<void> {
    await Promise.all(this.startDueTimers());
    await this.relayPass();
  }

  private dispatch(
    address: ActorAddress,
    envelope: Envelope,
    options: DeliverOptions = {},
  ): Promise<TurnOutcome> {
    if (this.stopped) return Promise.reject(shuttingDown());
    return this.instanceFor(address).deliver(envelope, options);
  }

  private instanceFor(address: ActorAddress): ActorInstance {
    const definition = this.registry.resolve(address.type);
    assertValidKey(address.key);
    const id = formatAddress(address);
    let instance = this.instances.get(id);
    // Taken out and put back, so the map's order is the order of last use, oldest first (see makeRoom). Only past
    // half the bound, when an eviction may come: moving an entry costs about a tenth of an in-memory ask. Below it,
    // activation order stands in, and whatever is asked once the host fills moves behind it.
    if (instance && this.instances.size * 2 > this.options.maxActiveActors) this.instances.delete(id);
    if (instance?.broken) instance = undefined;
    if (!instance) {
      this.makeRoom();
      instance = new ActorInstance({
        definition,
        key: address.key,
        storage: this.store.storageFor(id),
        clock: this.clock,
        onCommitted: (commit) => this.afterCommit(commit),
        ...(this.options.onTurn ? { onTurn: this.options.onTurn } : {}),
        ...(this.options.turnTimeoutMs === undefined ? {} : { turnTimeoutMs: this.options.turnTimeoutMs }),
      });
    }
    this.instances.set(id, instance);
    return instance;
  }

  /**
   * Keeps the instances under `maxActiveActors` by count, not only by idle time: every distinct key a caller names
   * (a sku read, an order id, a counter) activates an instance, and the sweep alone let a stream of them hold
   * memory for the whole idle window. Evicts the least recently asked idle instances: an actor in use stays warm,
   * and a flood of new keys costs the evicted ones a reload from disk (their state is there), never a lost turn.
   * Busy instances are skipped, and at most `evictionScan` are looked at, so a host whose oldest instances are all
   * busy goes over the bound for as long as they are, rather than scanning every instance per activation.
   */
  private makeRoom(): void {
    evictLeastRecent(this.instances, this.options.maxActiveActors, {
      scan: evictionScan,
      evictable: (instance) => instance.broken || instance.idle,
    });
  }

  private afterCommit(commit: TurnCommit): void {
    if (commit.outbox.length > 0) this.relayWake?.();
    if (commit.timersAdded.length > 0) this.timerWake?.();
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [id, instance] of this.instances) {
      if (instance.broken || (instance.idle && now - instance.lastActiveAt >= this.options.idleEvictMs)) {
        this.instances.delete(id);
      }
    }
    this.pruneInbox();
  }

  /**
   * Forgets handled ids past the retention, a batch per statement and a macrotask between batches, unless a prune
   * is under way. One statement for all of them held the event loop for as long as it ran and left the WAL file the
   * size of every page it touched, for good: a node started after a day down has millions (300,000 took 1.4 s and
   * 42 MB of WAL). Batches commit one by one, so SQLite's checkpoints reuse the WAL between them (about 8 MB).
   */
  private pruneInbox(): void {
    if (this.pruning) return;
    const olderThan = this.clock.now() - this.options.inboxRetentionMs;
    this.pruning = (async () => {
      try {
        while (!this.stopped && this.store.pruneInbox(olderThan, INBOX_PRUNE_BATCH) === INBOX_PRUNE_BATCH)
          await new Promise<void>((resolve) => nextMacrotask(resolve));
      } catch (error) {
        this.options.onBackgroundError("inbox pruning failed", error);
      }
    })().finally(() => {
      this.pruning = undefined;
    });
  }

  // --- relay ---

  private async relayPass(): Promise<number> {
    if (!this.options.transport) return 0;
    const pass = await relayOnce(
      this.store,
      this.options.transport,
      this.clock,
      this.options.relayPolicy,
      this.options.subscriptions,
    );
    if (pass.lastError !== undefined) {
      this.options.onBackgroundError(
        `relay: ${pass.failed} messages will be retried`,
        pass.lastError,
        relayFailureFields(pass.failedMessages ?? []),
      );
    }
    return pass.sent;
  }

  private async relayLoop(): Promise<void> {
    const transport = this.options.transport;
    if (!transport) return;
    let failedPasses = 0;
    while (!this.stopped) {
      // While the queue's breaker refuses calls, a pass would only read a page of the outbox, have every send
      // refused locally and write the page back with its backoff; pass after pass (other actors' entries are still
      // due), the relay marched so through a large outbox during an outage, slowing every turn on the node.
      const refusingFor = transport.availableInMs?.();
      if (refusingFor !== undefined && refusingFor > 0) {
        await this.sleep(this.clock.now() + refusingFor, (wake) => {
          this.relayWake = wake;
        });
        continue;
      }
      let sent = 0;
      try {
        sent = await this.relayPass();
        failedPasses = 0;
      } catch (error) {
        this.options.onBackgroundError("relay pass failed", error);
        // A pass that threw wrote nothing back: its entries are still due, often already sent (the write after the
        // send failed, as on a full disk). Running the next pass at once resent them in a loop, hundreds a second,
        // each with its warning; it waits as a failed send would instead.
        failedPasses++;
        await this.sleep(this.clock.now() + retryDelay(failedPasses, this.options.relayPolicy), (wake) => {
          this.relayWake = wake;
        });
        continue;
      }
      if (sent > 0) continue;
      const next = await this.store.nextDue();
      await this.sleep(next, (wake) => {
        this.relayWake = wake;
      });
    }
  }

  // --- timers ---

  /**
   * Starts every due timer not already firing, up to `maxTimerFirings` at once, without waiting for them: a slow
   * turn (a busy mailbox, a handler near its time limit) holds only its own firing, never the timers behind it.
   * A firing that ends wakes the loop, so the next due timer starts at once.
   */
  private startDueTimers(): Promise<void>[] {
    const room = maxTimerFirings - this.firingTimers.size;
    if (room <= 0) return [];
    return this.store
      .dueTimers(this.clock.now(), room + this.firingTimers.size)
      .filter((timer) => !this.firingTimers.has(firingKey(timer)))
      .slice(0, room)
      .map((timer) => this.fireTimer(timer));
  }

  private fireTimer(timer: DueTimer): Promise<void> {
    const key = firingKey(timer);
    this.firingTimers.add(key);
    const firing = this.dispatch(targetOf(timer.envelope), timer.envelope, { timerId: timer.id })
      .then(
        () => {},
        (error: unknown) => {
          // At least once: the timer stays, and fires again after a backoff.
          const attempts = timer.attempts + 1;
          const at = this.clock.now() + retryDelay(attempts, this.options.relayPolicy);
          this.store.retryTimer(timer.actor, timer.id, timer.envelope.id, at, attempts);
          this.options.onBackgroundError(
            `timer ${timer.id} on ${timer.actor} failed; retry ${attempts}`,
            error,
          );
        },
      )
      .catch((error: unknown) => this.options.onBackgroundError("timer retry failed", error))
      .finally(() => {
        this.firingTimers.delete(key);
        this.firings.delete(firing);
        this.timerWake?.();
      });
    this.firings.add(firing);
    return firing;
  }

  /** When the loop should look again: the earliest timer not already firing (none while every slot is taken). */
  private nextTimerToStart(): number | undefined {
    if (this.firingTimers.size === 0) return this.store.nextTimerAt();
    if (this.firingTimers.size >= maxTimerFirings) return undefined;
    return this.store
      .dueTimers(Number.MAX_SAFE_INTEGER, this.firingTimers.size + 1)
      .find((timer) => !this.firingTimers.has(firingKey(timer)))?.at;
  }

  private async timerLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        this.startDueTimers();
      } catch (error) {
        this.options.onBackgroundError("timer pass failed", error);
      }
      await this.sleep(this.nextTimerToStart(), (wake) => {
        this.timerWake = wake;
      });
    }
  }

  /** Sleeps until `until` (epoch ms), the poll interval, or a wake-up, whichever is first. */
  private sleep(until: number | undefined, register: (wake: () => void) => void): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const wait = until === undefined ? this.options.pollMs : until - this.clock.now();
    const delay = Math.max(0, Math.min(this.options.pollMs, wait));
    return new Promise<void>((resolve) => {
      const handle = setTimeout(done, delay);
      function done() {
        clearTimeout(handle);
        resolve();
      }
      register(done);
    });
  }
}
