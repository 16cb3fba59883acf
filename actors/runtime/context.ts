// What a handler sees during one turn: its state, the message, and effects that commit with the turn.
import type { Clock } from "../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { newId } from "../../shared/ids/index.ts";
import { type Context, producerSpan } from "../../shared/telemetry/trace/index.ts";
import {
  type ActorAddress,
  actorSource,
  assertValidKey,
  formatAddress,
  isValidActorType,
} from "./address.ts";
import type { TimerRecord } from "./storage.ts";

export interface SendOptions {
  /** Defaults to a fresh id. Give one to make a send idempotent across retries of the same turn logic. */
  id?: string;
  subject?: string;
}

export type When = { at: number | Date } | { delay: number };

/** The largest message a turn may send or schedule, as its envelope's JSON: QStash's limit, and the broker's. */
export const maxMessageBytes = 1024 * 1024;

/**
 * What the relay adds to a published event for each subscriber: `,"target":"<type>/<key>"`, at most a 64-character
 * type and a 256-character key (address.ts). An event is measured with that room kept, or one the turn accepted
 * could be refused by the queue for every subscriber, on every retry, and hold its actor's outbox back for good.
 */
const targetRoomBytes = ',"target":""'.length + 64 + 1 + 256;

/**
 * The largest value a turn may store, as JSON: its state, a kv entry (key and value), a reply it commits. Durable
 * Objects' SQLite refuses a row over 2 MB, and one refused row fails every turn in its commit batch; the same limit
 * holds on every host, so an actor that runs on one runs on the others. 10 KB is left for a row's other columns.
 */
export const maxValueBytes = 1_990_000;

/** Fails the turn with `request.too_large` when `parts` together are over `limit` bytes of UTF-8. */
function assertFits(parts: readonly string[], limit: number, what: string, why: string): void {
  let units = 0;
  for (const part of parts) units += part.length;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most texts skip the encoding.
  if (units * 3 <= limit) return;
  const encoder = new TextEncoder();
  let bytes = 0;
  for (const part of parts) bytes += encoder.encode(part).byteLength;
  if (bytes > limit)
    throw new EdgewiseError("request.too_large", `${what} is over ${limit} bytes as JSON: ${why}`);
}

/** Fails the turn with `request.too_large` when what it would store in one row (`parts`) is over `maxValueBytes`. */
export function assertStorable(parts: readonly string[], what: string): void {
  assertFits(parts, maxValueBytes, what, "a Durable Object could not store it (2 MB a row)");
}

/**
 * A private JSON copy of what a turn hands over (a kv value, a message): what will be stored, taken now. Later
 * changes to the original do not reach it, the handler never holds a cached value it could change after a failed
 * turn, and a value JSON cannot hold (a BigInt, a cycle) fails this turn alone rather than the commit batch.
 */
export function jsonText(value: unknown, what: string): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new EdgewiseError("request.invalid", `${what} cannot be stored as JSON`, { cause: error });
  }
}
export function jsonCopy<T>(value: T, what: string): T {
  const text = jsonText(value, what);
  return text === undefined ? (undefined as T) : (JSON.parse(text) as T);
}

/** Per-actor records beyond the state object, read and written inside the turn's transaction. */
export interface TurnKv {
  get<T = unknown>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): void;
  delete(key: string): void;
}

export interface TurnContext<State> {
  readonly self: ActorAddress;
  readonly key: string;
  /** The message being handled. */
  readonly message: Envelope;
  /** A working copy: mutate it or assign a new value; it commits if the handler returns. */
  state: State;
  readonly kv: TurnKv;
  /**
   * Aborted when the turn runs out of time (the actor's `turnTimeoutMs`): pass it to whatever the handler awaits.
   * The turn has failed by then, and nothing it did is committed.
   */
  readonly signal: AbortSignal;
  now(): number;
  /** A command to one actor, through the queue. Returns the message id. */
  send(target: ActorAddress, type: string, data: unknown, options?: SendOptions): string;
  /** An event to whoever subscribes to its type, through the queue. Returns the message id. */
  publish(type: string, data: unknown, options?: SendOptions): string;
  /** A durable timer: delivers `type` to this actor at or after the given time. Returns the timer id. */
  schedule(when: When, type: string, data: unknown, options?: SendOptions): string;
  cancelSchedule(timerId: string): void;
}

/** The effects a turn collected, committed only if the handler returns. */
export interface TurnEffects {
  outbox: Envelope[];
  timersAdded: TimerRecord[];
  timersRemoved: string[];
  kvWrites: Map<string, unknown>;
}

export function createTurnContext<State>(
  self: ActorAddress,
  message: Envelope,
  state: State,
  clock: Clock,
  kvRead: (key: string) => Promise<unknown>,
  /**
   * `traced`: the turn's context, when its span records: each message gets a PRODUCER span and its traceparent.
   * `unsampled`: the trace context of a turn whose trace was dropped: each message carries it, so the hops it
   * causes record nothing either. Neither (no tracer): a message carries the incoming one's.
   */
  tracing: { traced?: Context; unsampled?: { traceparent: string; tracestate?: string } } = {},
): { context: TurnContext<State>; effects: TurnEffects; expire: (reason: Error) => void } {
  const trace = tracing.traced;
  const effects: TurnEffects = { outbox: [], timersAdded: [], timersRemoved: [], kvWrites: new Map() };
  // Made only when a handler reads `ctx.signal`: most turns never do.
  let controller: AbortController | undefined;
  let expiredBy: Error | undefined;
  /** A handler that outlived its turn learns so at its next effect, rather than computing on for nothing. */
  const live = () => {
    if (expiredBy) throw expiredBy;
  };
  const source = actorSource(self);
  const lineage = (type: string, data: unknown, options: SendOptions | undefined, target?: string) => {
    const id = options?.id ? options.id : newId();
    // With a recording tracer the message carries its PRODUCER span's context; under a dropped trace, the turn's
    // unsampled one; otherwise the incoming message's.
    const produced = trace ? producerSpan(trace, { id, type, ...(target ? { target } : {}) }) : undefined;
    const carried = produced ?? tracing.unsampled ?? message;
    const envelope = createEnvelope({
      type,
      source,
      data,
      time: clock.now(),
      id,
      ...(options?.subject ? { subject: options.subject } : {}),
      ...(target ? { target } : {}),
      causationid: message.id,
      correlationid: message.correlationid ?? message.id,
      ...(carried.traceparent ? { traceparent: carried.traceparent } : {}),
      ...(carried.tracestate ? { tracestate: carried.tracestate } : {}),
    });
    const text = jsonText(envelope, `the data of ${type}`) as string;
    if (target) assertFits([text], maxMessageBytes, type, "the queue would refuse it");
    else
      assertFits(
        [text],
        maxMessageBytes - targetRoomBytes,
        type,
        "with a subscriber's target added, the queue would refuse it",
      );
    return JSON.parse(text) as Envelope;
  };

  const context: TurnContext<State> = {
    self,
    key: self.key,
    message,
    state,
    get signal() {
      controller ??= new AbortController();
      if (expiredBy && !controller.signal.aborted) controller.abort(expiredBy);
      return controller.signal;
    },
    now: () => clock.now(),
    kv: {
      // Copies both ways: the turn's writes and the instance's cache stay as stored, whatever the handler does.
      get: async <T>(key: string) => {
        const value = effects.kvWrites.has(key) ? effects.kvWrites.get(key) : await kvRead(key);
        return jsonCopy(value, `kv "${key}"`) as T | undefined;
      },
      put: (key, value) => {
        live();
        if (value === undefined)
          throw new EdgewiseError("request.invalid", "kv.put needs a value; use kv.delete");
        const label = `kv "${key.length > 64 ? `${key.slice(0, 64)}…` : key}"`;
        const text = jsonText(value, label);
        if (text !== undefined) assertStorable([key, text], label);
        effects.kvWrites.set(key, text === undefined ? undefined : JSON.parse(text));
      },
      delete: (key) => {
        live();
        effects.kvWrites.set(key, undefined);
      },
    },
    send(target, type, data, options) {
      live();
      if (!isValidActorType(target.type)) {
        throw new EdgewiseError("actor.unknown_type", `cannot send to actor type "${target.type}"`);
      }
      assertValidKey(target.key);
      const envelope = lineage(type, data, options, formatAddress(target));
      effects.outbox.push(envelope);
      return envelope.id;
    },
    publish(type, data, options) {
      live();
      const envelope = lineage(type, data, options);
      effects.outbox.push(envelope);
      return envelope.id;
    },
    schedule(when, type, data, options) {
      live();
      const at = "delay" in when ? clock.now() + Math.max(0, when.delay) : new Date(when.at).getTime();
      if (!Number.isFinite(at)) throw new EdgewiseError("request.invalid", "schedule needs a valid time");
      // Each scheduling gets a message id of its own, so a timer id used again (a timer that renews itself) is a
      // new message, not a duplicate of the last firing. The timer id, for cancelSchedule, is the one asked for.
      const { id: asked, ...rest } = options ?? {};
      const envelope = lineage(type, data, rest, formatAddress(self));
      const id = asked ? asked : envelope.id;
      const replaced = effects.timersAdded.findIndex((timer) => timer.id === id);
      if (replaced >= 0) effects.timersAdded.splice(replaced, 1);
      effects.timersAdded.push({ id, at, envelope });
      return id;
    },
    cancelSchedule(timerId) {
      live();
      const added = effects.timersAdded.findIndex((timer) => timer.id === timerId);
      if (added >= 0) effects.timersAdded.splice(added, 1);
      else effects.timersRemoved.push(timerId);
    },
  };
  const expire = (reason: Error) => {
    expiredBy = reason;
    controller?.abort(reason);
  };
  return { context, effects, expire };
}
