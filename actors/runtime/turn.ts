// The turn engine: one actor's mailbox, run one message at a time, committed atomically behind an output gate.
import * as v from "valibot";
import type { Clock } from "../../shared/clock/index.ts";
import type { Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError, toEdgewiseError } from "../../shared/errors/index.ts";
import { validationError } from "../../shared/errors/valibot.ts";
import {
  activeContext,
  ageMs,
  type Attributes,
  type Context,
  contextFromTraceparent,
  creationLink,
  droppedSpan,
  failSpan,
  hasSpan,
  type Span,
  SpanKind,
  sampledOut,
  trace,
  tracer,
  unsampledHeaders,
  withContext,
} from "../../shared/telemetry/trace/index.ts";
import { keepWrite } from "../../shared/telemetry/trace/sampling.ts";
import type { ActorAddress } from "./address.ts";
import { assertStorable, createTurnContext, jsonText } from "./context.ts";
import type { AnyActorDefinition } from "./define.ts";
import { activateState, validateState } from "./migrate.ts";
import type { ActorStorage, TurnCommit } from "./storage.ts";
import { remember } from "../../shared/collections/recency.ts";

export interface TurnOutcome {
  /** True when the message id was already handled: the handler did not run again. */
  duplicate: boolean;
  reply: unknown;
  /**
   * Set only in answer to an ask with `onlyIfState` (AskOptions) whose actor has no state: no turn ran, nothing
   * was activated, `reply` is undefined and `duplicate` false.
   */
  noState?: true;
}

export interface DeliverOptions {
  /** Set when the message is a fired timer, so the timer is removed with the turn. */
  timerId?: string;
  /** The caller minted the id just now, so it cannot be in the inbox: skip the lookup. */
  freshId?: boolean;
  /**
   * Aborts the wait. A message still in the mailbox is removed and never runs; a turn already running
   * finishes and commits (turns are atomic), but the caller stops waiting for it.
   */
  signal?: AbortSignal;
}

export interface ActorInstanceOptions {
  definition: AnyActorDefinition;
  key: string;
  storage: ActorStorage;
  clock: Clock;
  /** Called after each durable commit; hosts use it to wake their relay and timers. */
  onCommitted?: (commit: TurnCommit) => void;
  /** Observes each turn as it ends (metrics). Must not throw; without it, no clock is read. */
  onTurn?: (record: TurnRecord) => void;
  /** How long a turn may take unless its definition says otherwise. Default 30 s (`defaultTurnTimeoutMs`). */
  turnTimeoutMs?: number;
}

/** A turn's time limit when neither the actor's definition nor its host sets one. */
export const defaultTurnTimeoutMs = 30_000;

/** One turn, as an observer sees it. Durations come from `performance.now()`. */
export interface TurnRecord {
  actorType: string;
  /** `write`: a commit was queued; `read`: nothing to commit; `duplicate`: already handled; `failed`: threw. */
  outcome: "write" | "read" | "duplicate" | "failed";
  /** From leaving the mailbox to the turn's end; the commit itself is waited for after it (the output gate). */
  durationMs: number;
  /** Time spent in the mailbox. */
  waitMs: number;
}

interface Job {
  envelope: Envelope;
  options: DeliverOptions;
  /** `performance.now()` when queued, only when someone observes turns. */
  queuedAt: number;
  /** The caller's trace context (a gateway request, a delivery): the turn's span is its child. */
  parent: Context;
  resolve: (outcome: TurnOutcome) => void;
  reject: (error: unknown) => void;
}

interface PendingTurn {
  replyJson: string | undefined;
  committed: Promise<void>;
}

/**
 * One activated actor. Turns are strictly serialized: the next message starts only after the previous
 * handler returned, so awaits inside a handler never interleave with another turn.
 *
 * Commits are pipelined: the next turn may start on the new in-memory state while the previous commit is
 * still being written, but no reply leaves before its own commit is durable. If a commit fails the instance
 * is broken: every later reply fails with `actor.reset`, and the host activates a fresh instance from disk.
 */
export class ActorInstance {
  readonly address: ActorAddress;
  /** The mailbox, in arrival order; a Set so that an ask timing out leaves it in O(1), wherever it waits. */
  private readonly queue = new Set<Job>();
  private running = false;
  private state: unknown;
  private activation: Promise<void> | undefined;
  /** kv values as stored, most recently used last; at most `kvCacheLimit` (copies go out, see TurnKv). */
  private readonly kvCache = new Map<string, unknown>();
  /**
   * For each timer id a turn of this instance scheduled or cancelled, the message id of its current firing (null:
   * cancelled). A firing read from storage before such a turn committed is stale: it is skipped, so it neither runs
   * nor removes the timer that replaced it.
   */
  private readonly timerFirings = new Map<string, string | null>();
  private readonly pending = new Map<string, PendingTurn>();
  private uncommitted = 0;
  /** The latest write; a turn that writes nothing still replies only after it (it may have read its state). */
  private lastWrite: Promise<void> = Promise.resolve();
  private brokenBy: unknown;
  lastActiveAt: number;

  constructor(private readonly options: ActorInstanceOptions) {
    this.address = { type: options.definition.type, key: options.key };
    this.lastActiveAt = options.clock.now();
  }

  get broken(): boolean {
    return this.brokenBy !== undefined;
  }

  /** True when nothing is queued, running or waiting for its commit: safe to evict. */
  get idle(): boolean {
    return !this.running && this.queue.size === 0 && this.uncommitted === 0;
  }

  get mailboxDepth(): number {
    return this.queue.size;
  }

  /** Runs a message through the mailbox. Resolves with the handler's reply once the turn is durable. */
  deliver(envelope: Envelope, options: DeliverOptions = {}): Promise<TurnOutcome> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<TurnOutcome>((resolve, reject) => {
      const queuedAt = this.options.onTurn ? performance.now() : 0;
      const job: Job = { envelope, options, queuedAt, parent: activeContext(), resolve, reject };
      if (signal) {
        const onAbort = () => {
          this.queue.delete(job);
          reject(abortError(signal));
        };
        const leave = waitOn(signal, onAbort);
        job.resolve = (outcome) => {
          leave();
          resolve(outcome);
        };
        job.reject = (error) => {
          leave();
          reject(error);
        };
      }
      this.queue.add(job);
      this.lastActiveAt = this.options.clock.now();
      if (!this.running) void this.pump();
    });
  }

  /** Loads and migrates state. Idempotent; the first turn calls it. */
  activate(): Promise<void> {
    this.activation ??= this.load();
    return this.activation;
  }

  private async load(): Promise<void> {
    const { definition, key, storage } = this.options;
    const activated = activateState(definition, key, await storage.load());
    this.state = activated.state;
    if (activated.migrated) {
      await this.write({
        state: activated.state,
        version: definition.version,
        outbox: [],
        timersAdded: [],
        timersRemoved: [],
        kv: [],
      });
    }
  }

  private async pump(): Promise<void> {
    this.running = true;
    try {
      // One iterator for the whole pump: it sees jobs added meanwhile and skips those removed. A fresh
      // `values()` per job would walk past every slot already deleted, quadratic in JavaScriptCore (a backlog of
      // 100,000 asks: 1 s against 11 ms for an array's shift).
      const mailbox = this.queue.values();
      for (let next = mailbox.next(); !next.done; next = mailbox.next()) {
        const job = next.value;
        this.queue.delete(job);
        const started = this.options.onTurn ? performance.now() : 0;
        let outcome: TurnRecord["outcome"] = "failed";
        // Under a request the sampler dropped, the turn records nothing either: it keeps the caller's context.
        const dropped = sampledOut(job.parent);
        const span = dropped ?? this.startSpan(job);
        const traced = dropped ? job.parent : trace.setSpan(job.parent, span);
        try {
          // A dropped turn in its caller's own context (the pump started by that caller) needs no new frame.
          outcome = await (dropped && activeContext() === traced
            ? this.turn(job, span, traced)
            : withContext(traced, () => this.turn(job, span, traced)));
        } catch (error) {
          failSpan(span, error);
          job.reject(error);
        }
        // A write's span ends once its commit settles (the output gate), with the commit's duration.
        if (outcome !== "write") {
          if (outcome !== "failed") span.setAttribute("edgewise.turn.outcome", outcome);
          span.end();
        }
        if (this.options.onTurn) this.observe(job, outcome, started);
      }
    } finally {
      this.running = false;
      this.lastActiveAt = this.options.clock.now();
    }
  }

  /**
   * The turn's span: a child of the caller's span when there is one (gateway request, delivery), else a
   * CONSUMER span whose parent is the envelope's traceparent (timers). Linked to the message's creation context.
   */
  private startSpan(job: Job): Span {
    const { envelope } = job;
    const inherited = hasSpan(job.parent);
    const link = creationLink(envelope);
    // No caller and no message context: this turn starts a trace (an ask from code, a timer set without one), so
    // the policy for writes decides. A dropped one makes no SDK span; the messages it sends carry its unsampled
    // context, so the turns and deliveries they cause record nothing either.
    if (!inherited && !link && !keepWrite()) return droppedSpan();
    const parent = inherited
      ? job.parent
      : contextFromTraceparent(envelope.traceparent, envelope.tracestate, job.parent);
    // A message from a dropped trace (the sampled flag off): the turn follows it without an SDK span, and what it
    // sends carries the same context on.
    const droppedParent = inherited ? undefined : sampledOut(parent);
    if (droppedParent) return droppedParent;
    const span = tracer().startSpan(
      `turn ${this.address.type} ${envelope.type}`,
      {
        kind: inherited || !link ? SpanKind.INTERNAL : SpanKind.CONSUMER,
        ...(link ? { links: [link] } : {}),
      },
      parent,
    );
    if (span.isRecording()) {
      const attributes: Attributes = {
        "edgewise.actor.type": this.address.type,
        "edgewise.actor.key": this.address.key,
        "edgewise.message.type": envelope.type,
        "messaging.message.id": envelope.id,
        "messaging.system": "edgewise",
        "messaging.operation.type": "process",
        "edgewise.mailbox.depth": this.queue.size,
      };
      const queueMs = ageMs(envelope.time, this.options.clock.now());
      if (queueMs !== undefined) attributes["edgewise.queue_time_ms"] = queueMs;
      if (envelope.correlationid) attributes["messaging.message.conversation_id"] = envelope.correlationid;
      if (job.options.timerId) attributes["edgewise.timer.id"] = job.options.timerId;
      span.setAttributes(attributes);
    }
    return span;
  }

  private observe(job: Job, outcome: TurnRecord["outcome"], started: number): void {
    const now = performance.now();
    try {
      this.options.onTurn?.({
        actorType: this.address.type,
        outcome,
        durationMs: now - started,
        waitMs: started - job.queuedAt,
      });
    } catch {
      // An observer's failure must not stop the mailbox.
    }
  }

  private async turn(job: Job, span: Span, traced: Context): Promise<TurnRecord["outcome"]> {
    if (this.brokenBy !== undefined) throw resetError(this.address, this.brokenBy);
    try {
      await this.activate();
    } catch (error) {
      this.brokenBy = error;
      throw toEdgewiseError(error);
    }
    const { definition, storage, clock } = this.options;
    const { envelope, options } = job;

    const inFlight = this.pending.get(envelope.id);
    if (inFlight) {
      inFlight.committed.then(() => job.resolve(duplicateOf(inFlight.replyJson)), job.reject);
      return "duplicate";
    }
    const seen = options.freshId ? undefined : await storage.inbox(envelope.id);
    if (seen) {
      if (options.timerId) await storage.removeTimer(options.timerId);
      job.resolve(duplicateOf(seen.replyJson));
      return "duplicate";
    }

    if (options.timerId !== undefined) {
      const current = this.timerFirings.get(options.timerId);
      if (current !== undefined && current !== envelope.id) {
        job.resolve(duplicateOf(undefined));
        return "duplicate";
      }
    }

    const schema = Object.hasOwn(definition.messages, envelope.type)
      ? definition.messages[envelope.type]
      : undefined;
    if (!schema) {
      throw new EdgewiseError(
        "message.unknown_type",
        `${definition.type} has no handler for "${envelope.type}"`,
      );
    }
    const parsed = v.safeParse(schema, envelope.data);
    if (!parsed.success) throw validationError("message.invalid", `${envelope.type} message`, parsed.issues);

    const recording = span.isRecording();
    const { context, effects, expire } = createTurnContext(
      this.address,
      envelope,
      structuredClone(this.state),
      clock,
      (key) => this.kvRead(key),
      recording ? { traced } : unsampledTracing(span),
    );
    let reply: unknown;
    try {
      const handler = definition.handlers[envelope.type] as (ctx: unknown, data: unknown) => unknown;
      const limitMs = definition.turnTimeoutMs ?? this.options.turnTimeoutMs ?? defaultTurnTimeoutMs;
      reply = await withinLimit(handler(context, parsed.output), limitMs, () => {
        const error = turnTimeoutError(this.address, envelope.type, limitMs);
        expire(error);
        return error;
      });
    } catch (error) {
      throw handlerError(this.address, envelope.type, error);
    }
    const nextState = validateState(definition, context.state);
    const actor = `${this.address.type}/${this.address.key}`;
    const stateJson = jsonText(nextState, `the state of ${actor}`) as string;
    const replyJson = reply === undefined ? undefined : jsonText(reply, `the reply to ${envelope.type}`);
    if (options.timerId) effects.timersRemoved.push(options.timerId);

    // A read: an id nobody can redeliver (the host minted it), no effects, the same state. Nothing to commit,
    // not even an inbox record; the reply still waits behind earlier writes (the output gate).
    const readOnly =
      options.freshId === true &&
      effects.outbox.length === 0 &&
      effects.timersAdded.length === 0 &&
      effects.timersRemoved.length === 0 &&
      effects.kvWrites.size === 0 &&
      stateJson === JSON.stringify(this.state);
    if (readOnly) {
      this.lastWrite.then(
        () => job.resolve({ duplicate: false, reply: parseReply(replyJson) }),
        (error) => job.reject(resetError(this.address, error)),
      );
      return "read";
    }

    // Checked before the turn joins a commit batch, where a row the store refuses would fail every turn in it.
    assertStorable([stateJson], `the state of ${actor}`);
    if (replyJson !== undefined) assertStorable([replyJson], `the reply to ${envelope.type}`);
    const commit: TurnCommit = {
      state: nextState,
      stateJson,
      version: definition.version,
      inbox: { id: envelope.id, replyJson, at: clock.now() },
      outbox: effects.outbox,
      timersAdded: effects.timersAdded,
      timersRemoved: effects.timersRemoved,
      kv: [...effects.kvWrites],
    };
    // Later turns see this turn's state now; its reply waits for the commit (the output gate).
    this.state = nextState;
    for (const [key, value] of effects.kvWrites) this.rememberKv(key, value);
    for (const id of effects.timersRemoved) remember(this.timerFirings, id, null, timerFiringsLimit);
    for (const timer of effects.timersAdded)
      remember(this.timerFirings, timer.id, timer.envelope.id, timerFiringsLimit);
    const commitStarted = span.isRecording() ? performance.now() : 0;
    const committed = this.write(commit);
    const entry: PendingTurn = { replyJson, committed };
    this.pending.set(envelope.id, entry);
    committed.then(
      () => {
        this.pending.delete(envelope.id);
        job.resolve({ duplicate: false, reply: parseReply(replyJson) });
        endCommitted(span, commitStarted, commit.outbox.length);
      },
      (error) => {
        this.pending.delete(envelope.id);
        job.reject(resetError(this.address, error));
        failSpan(span, error);
        endCommitted(span, commitStarted, commit.outbox.length);
      },
    );
    return "write";
  }

  private write(commit: TurnCommit): Promise<void> {
    this.uncommitted++;
    let written: Promise<void>;
    try {
      written = this.options.storage.commit(commit);
    } catch (error) {
      written = Promise.reject(error);
    }
    this.lastWrite = written.then(
      () => {
        this.uncommitted--;
        this.options.onCommitted?.(commit);
      },
      (error: unknown) => {
        this.uncommitted--;
        this.brokenBy ??= error;
        throw error;
      },
    );
    return this.lastWrite;
  }

  private async kvRead(key: string): Promise<unknown> {
    if (this.kvCache.has(key)) return this.kvCache.get(key);
    const value = await this.options.storage.kvGet(key);
    if (!this.kvCache.has(key)) this.rememberKv(key, value);
    return this.kvCache.get(key);
  }

  private rememberKv(key: string, value: unknown): void {
    remember(this.kvCache, key, value, kvCacheLimit);
  }
}

/** kv values one instance keeps in memory; a busy actor with many keys (an order per key) reads the rest again. */
const kvCacheLimit = 1024;
/** Timer generations one instance remembers; past it the oldest go (a stale firing is then possible again). */
const timerFiringsLimit = 1024;

function endCommitted(span: Span, commitStarted: number, outbox: number): void {
  if (span.isRecording()) {
    span.setAttributes({
      "edgewise.turn.outcome": "write",
      "edgewise.storage.commit_ms": performance.now() - commitStarted,
      "edgewise.outbox.messages": outbox,
    });
  }
  span.end();
}

/**
 * Jobs waiting on each signal, behind one `abort` listener per signal. The gateway gives every request that starts in
 * the same 50 ms one deadline signal (edge/middleware/timeout), so hundreds of asks share it: a listener added and
 * removed per ask cost about 2 µs of a request over HTTP, a Set entry costs a fraction of that. Weakly held: a
 * signal nobody waits on any more goes with its set.
 */
const waitersBySignal = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `onAbort` if `signal` aborts before the returned function is called. */
function waitOn(signal: AbortSignal, onAbort: () => void): () => void {
  let waiters = waitersBySignal.get(signal);
  if (!waiters) {
    const all = new Set<() => void>();
    waiters = all;
    waitersBySignal.set(signal, all);
    signal.addEventListener(
      "abort",
      () => {
        const aborted = [...all];
        all.clear();
        for (const waiter of aborted) waiter();
      },
      { once: true },
    );
  }
  const set = waiters;
  set.add(onAbort);
  return () => {
    set.delete(onAbort);
  };
}

function abortError(signal: AbortSignal): EdgewiseError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof Error && reason.name === "TimeoutError";
  return new EdgewiseError("timeout", timedOut ? "the request took too long" : "the caller stopped waiting", {
    cause: reason,
  });
}

function unsampledTracing(span: Span): { unsampled?: { traceparent: string; tracestate?: string } } {
  const unsampled = unsampledHeaders(span);
  return unsampled ? { unsampled } : {};
}

function parseReply(replyJson: string | undefined): unknown {
  return replyJson === undefined ? undefined : JSON.parse(replyJson);
}

function duplicateOf(replyJson: string | undefined): TurnOutcome {
  return { duplicate: true, reply: parseReply(replyJson) };
}

/**
 * A handler's result, failed with `onExpire()`'s error if it is still pending after `limitMs`. The mailbox moves on
 * then; the handler's promise is left to settle on its own (JavaScript cannot stop it), with its `ctx.signal`
 * aborted and its effects discarded. A synchronous result costs no timer.
 */
function withinLimit(result: unknown, limitMs: number, onExpire: () => Error): unknown {
  if (typeof (result as PromiseLike<unknown> | undefined)?.then !== "function") return result;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(onExpire()), limitMs);
    (result as PromiseLike<unknown>).then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function turnTimeoutError(address: ActorAddress, type: string, limitMs: number): EdgewiseError {
  return new EdgewiseError(
    "actor.turn_timeout",
    `${address.type}/${address.key} did not finish handling ${type} within ${limitMs} ms`,
    { meta: { actor: `${address.type}/${address.key}`, messageType: type, limitMs } },
  );
}

function handlerError(address: ActorAddress, type: string, error: unknown): EdgewiseError {
  const known = toEdgewiseError(error);
  if (known.code !== "internal") return known;
  return new EdgewiseError("actor.handler_failed", `${address.type}/${address.key} failed handling ${type}`, {
    cause: error,
  });
}

function resetError(address: ActorAddress, cause: unknown): EdgewiseError {
  return new EdgewiseError("actor.reset", `${address.type}/${address.key} was reset: a commit failed`, {
    cause,
  });
}
