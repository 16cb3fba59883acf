// The host port: how a gateway or the queue reaches actors, whatever runs them (local host, Durable Objects).
import * as v from "valibot";
import { createEnvelope, type Envelope, EnvelopeSchema } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { validationError } from "../../shared/errors/valibot.ts";
import { type ActorAddress, assertValidKey, formatAddress, parseAddress } from "./address.ts";
import type { AnyActorDefinition, DataOf, MessageType, ReplyOf } from "./define.ts";
import type { TurnOutcome } from "./turn.ts";

export interface AskOptions {
  /** Message id (1-256 characters, else `envelope.invalid`); give the same one to retry an ask safely (the stored reply comes back). */
  id?: string;
  source?: string;
  traceparent?: string;
  tracestate?: string;
  correlationid?: string;
  /** Stops waiting: a message not yet started is dropped; a running turn still commits. */
  signal?: AbortSignal;
  /**
   * Answer only if the actor has state (as `hasState` tells: it committed a turn, or an instance of it is active).
   * When it has none, the host neither activates it nor runs a turn, and resolves `{ noState: true }` (no reply):
   * for reads whose every answer from the initial state is a 404 (an order never placed, a sku never set), so an
   * unknown id costs no actor. A host that cannot tell without activating (Durable Objects), or that predates the
   * option (an older remote actor host), ignores it and asks as usual: callers handle both answers.
   */
  onlyIfState?: boolean;
}

export interface ActorHost {
  /** Request and reply: the reply leaves only after the turn committed (or `noState`: see `onlyIfState`). */
  ask(address: ActorAddress, type: string, data: unknown, options?: AskOptions): Promise<TurnOutcome>;
  /** A queued delivery addressed by `envelope.target`; resolves after the actor committed. */
  receive(envelope: Envelope): Promise<TurnOutcome>;
  /**
   * Whether the actor has state on this host, told without activating it: false when it has never committed a turn
   * and no instance of it is active (it would start from its initial state), true otherwise (ask it to know more).
   * Throws what an ask would before any turn (unknown type, invalid key, a host stopping). Optional: a host that
   * cannot tell cheaply (Durable Objects, a remote actor host) leaves it out. Callers ask with `onlyIfState`
   * instead, which a host with `hasState` answers from it, and a remote actor host in the same round trip.
   */
  hasState?(address: ActorAddress): boolean;
}

/** The envelope attributes an asker may set, held to the limits every delivery of the envelope is held to. */
const CallerAttributes = v.pick(EnvelopeSchema, [
  "id",
  "source",
  "traceparent",
  "tracestate",
  "correlationid",
]);

/**
 * The envelope of an ask; throws `envelope.invalid` for a caller-given id (or source, trace context, correlation
 * id) the envelope schema refuses, before any host queues or stores it: the turn's record and its outgoing
 * messages, which carry the id on, would otherwise hold what no delivery accepts.
 */
export function askEnvelope(
  address: ActorAddress,
  type: string,
  data: unknown,
  options: AskOptions = {},
): Envelope {
  assertValidKey(address.key);
  const envelope = createEnvelope({
    type,
    data,
    source: options.source ?? "edgewise://gateway",
    target: formatAddress(address),
    ...(options.id !== undefined ? { id: options.id } : {}),
    ...(options.traceparent ? { traceparent: options.traceparent } : {}),
    ...(options.tracestate ? { tracestate: options.tracestate } : {}),
    ...(options.correlationid ? { correlationid: options.correlationid } : {}),
  });
  const callerSet =
    options.id !== undefined ||
    options.source !== undefined ||
    options.traceparent ||
    options.tracestate ||
    options.correlationid;
  if (callerSet) {
    const checked = v.safeParse(CallerAttributes, envelope);
    if (!checked.success) throw validationError("envelope.invalid", "ask envelope", checked.issues);
  }
  return envelope;
}

export function targetOf(envelope: Envelope): ActorAddress {
  if (!envelope.target)
    throw new EdgewiseError("envelope.invalid", "a delivery needs a `target` actor address");
  return parseAddress(envelope.target);
}

/** A typed view of one actor type on a host: `client.ask(key, "Increment", { by: 1 })`. */
export interface ActorClient<D extends AnyActorDefinition> {
  ask<K extends MessageType<D>>(
    key: string,
    type: K,
    data: DataOf<D, K>,
    options?: AskOptions,
  ): Promise<ReplyOf<D, K>>;
  /**
   * `ask` with `onlyIfState`: undefined when the host told that the actor has no state (no turn ran), else the
   * reply. For message types whose reply is never undefined.
   */
  askIfState<K extends MessageType<D>>(
    key: string,
    type: K,
    data: DataOf<D, K>,
    options?: AskOptions,
  ): Promise<ReplyOf<D, K> | undefined>;
}

export function actorClient<D extends AnyActorDefinition>(host: ActorHost, definition: D): ActorClient<D> {
  return {
    async ask(key, type, data, options) {
      const outcome = await host.ask({ type: definition.type, key }, type, data, options);
      return outcome.reply as never;
    },
    async askIfState(key, type, data, options) {
      const outcome = await host.ask({ type: definition.type, key }, type, data, {
        ...options,
        onlyIfState: true,
      });
      return outcome.noState ? undefined : (outcome.reply as never);
    },
  };
}
