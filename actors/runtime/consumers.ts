// Message consumers that are not actors (billing, projections, webhooks): reached by address type like actors.
import * as v from "valibot";
import type { Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { validationError } from "../../shared/errors/valibot.ts";
import { activeContext, inSpan, trace, tracer } from "../../shared/telemetry/trace/index.ts";
import { isValidActorType } from "./address.ts";
import type { ActorHost } from "./host.ts";
import { targetOf } from "./host.ts";
import type { TurnOutcome } from "./turn.ts";

/**
 * A queue consumer addressed as `type/key`, like an actor, but backed by something else (a Postgres
 * transaction, an HTTP call). `receive` resolves only once the effect is durable, and must be idempotent on
 * `envelope.id` plus the target: the queue delivers at least once.
 */
export interface MessageConsumer {
  /** The address type it owns (`billing`, `projector`, ...); no actor may have the same type. */
  readonly type: string;
  receive(envelope: Envelope): Promise<TurnOutcome>;
}

/**
 * An ActorHost that hands deliveries for a consumer's type to that consumer, and everything else to the
 * actor host. Asks go to actors only: consumers are reached through the queue.
 */
export function withConsumers(actors: ActorHost, consumers: readonly MessageConsumer[]): ActorHost {
  const byType = new Map<string, MessageConsumer>();
  for (const consumer of consumers) {
    if (!isValidActorType(consumer.type) || byType.has(consumer.type)) {
      throw new EdgewiseError("config.invalid", `consumer type "${consumer.type}" is invalid or taken twice`);
    }
    byType.set(consumer.type, consumer);
  }
  if (byType.size === 0) return actors;
  return {
    ask: (address, type, data, options) => actors.ask(address, type, data, options),
    receive: (envelope) => {
      const consumer = byType.get(targetOf(envelope).type);
      return consumer ? consumer.receive(envelope) : actors.receive(envelope);
    },
  };
}

/** One part of a fan-in consumer: a consumer, the address key it is given, and the event types it takes. */
export interface ConsumerPart {
  consumer: MessageConsumer;
  key: string;
  events: readonly string[];
}

/**
 * One queue delivery per event for several consumers in the same place (the read side: activity log,
 * projector, cache, webhook fan-out), instead of one delivery each: every delivery costs the broker a durable
 * write, a signature and an HTTP hop. Each part gets the envelope addressed to itself (`consumer.type/key`).
 * The parts run concurrently; if any fails the delivery fails and the queue redelivers it, and the parts that
 * had succeeded recognize the event (each consumer is idempotent on the event id). `duplicate` is true only
 * when every part saw it before.
 *
 * `schemas` (event type → data schema) are checked once, before any part runs: an event one part would refuse as
 * malformed (`message.invalid`, dead-lettered at once) must not be half applied by the others.
 *
 * `key`, when given, is the one address the fan-in answers at (its subscriptions' key, `readside/events`): a
 * delivery to any other key of the type is refused as `actor.invalid_key` (dead-lettered at once) instead of being
 * applied as if it were addressed there.
 */
export function fanInConsumer(
  type: string,
  parts: readonly ConsumerPart[],
  options: { schemas?: Readonly<Record<string, v.GenericSchema>>; key?: string } = {},
): MessageConsumer {
  if (!isValidActorType(type))
    throw new EdgewiseError("config.invalid", `consumer type "${type}" is invalid`);
  const byEvent = new Map<string, ConsumerPart[]>();
  for (const part of parts) {
    for (const event of part.events) byEvent.set(event, [...(byEvent.get(event) ?? []), part]);
  }
  return {
    type,
    async receive(envelope) {
      if (options.key !== undefined && envelope.target !== `${type}/${options.key}`) {
        throw new EdgewiseError(
          "actor.invalid_key",
          `${type} takes deliveries at ${type}/${options.key} only, not at ${String(envelope.target)}`,
        );
      }
      const targets = byEvent.get(envelope.type);
      if (!targets) {
        throw new EdgewiseError("message.unknown_type", `${type} takes no "${envelope.type}" events`);
      }
      const schema =
        options.schemas && Object.hasOwn(options.schemas, envelope.type)
          ? options.schemas[envelope.type]
          : undefined;
      if (schema) {
        const parsed = v.safeParse(schema, envelope.data);
        if (!parsed.success)
          throw validationError("message.invalid", `${envelope.type} event`, parsed.issues);
      }
      // Each part a span of its own, only in a trace that records: a failing or slow part (the projector, the
      // activity log, the cache, the webhook fan-out) shows by name instead of as the delivery's alone.
      const traced = trace.getActiveSpan()?.isRecording() === true;
      const outcomes = await Promise.all(
        targets.map((part) => {
          const addressed = { ...envelope, target: `${part.consumer.type}/${part.key}` };
          return traced
            ? partTraced(`${part.consumer.type} ${envelope.type}`, () => part.consumer.receive(addressed))
            : part.consumer.receive(addressed);
        }),
      );
      return {
        duplicate: outcomes.every((outcome) => outcome.duplicate),
        reply: Object.fromEntries(targets.map((part, i) => [part.consumer.type, outcomes[i]?.reply ?? null])),
      };
    },
  };
}

/** Runs one part under an INTERNAL span named `<part type> <event type>`, failed when the part throws. */
function partTraced(name: string, work: () => Promise<TurnOutcome>): Promise<TurnOutcome> {
  const parent = activeContext();
  const span = tracer().startSpan(name, {}, parent);
  return inSpan(parent, span, work, (outcome) =>
    span.setAttribute("edgewise.delivery.duplicate", outcome.duplicate),
  );
}

/** The event types a fan-in consumer takes: what to subscribe it to. */
export function fanInEvents(parts: readonly ConsumerPart[]): string[] {
  return [...new Set(parts.flatMap((part) => part.events))];
}
