// Message consumers that are not actors (billing, projections, webhooks): reached by address type like actors.
import type { Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
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
