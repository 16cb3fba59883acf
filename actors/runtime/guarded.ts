// Ports behind a dependency's breaker and timeout: the queue transport, a queue consumer, an actor host.
import type { Envelope } from "../../shared/envelope/index.ts";
import type { Dependencies } from "../../shared/resilience/index.ts";
import type { MessageConsumer } from "./consumers.ts";
import type { ActorHost } from "./host.ts";
import type { Transport } from "./transport.ts";

/**
 * Publishes through `dependency`'s breaker. While it is open, `send` fails at once and the relay backs off
 * with every message still in the outbox: nothing is lost, and a dead broker is not hammered. The relay retries
 * when the breaker next lets a probe through (`availableInMs`), so it drains soon after the broker is back.
 */
export function guardedTransport(
  transport: Transport,
  dependencies: Dependencies,
  dependency: string,
): Transport {
  return {
    send: (envelopes: Envelope[]) => dependencies.call(dependency, () => transport.send(envelopes)),
    availableInMs: () => dependencies.for(dependency).breaker?.reopensInMs(),
    ...(transport.retryAfterMs ? { retryAfterMs: (error) => transport.retryAfterMs?.(error) } : {}),
    ...(transport.rateLimitedUntil ? { rateLimitedUntil: () => transport.rateLimitedUntil?.() } : {}),
  };
}

/**
 * Receives through `dependency`'s breaker. While it is open, a delivery fails at once with `breaker.open` (503),
 * which the broker retries later, instead of waiting on a dead database.
 */
export function guardedConsumer(
  consumer: MessageConsumer,
  dependencies: Dependencies,
  dependency: string,
): MessageConsumer {
  return {
    type: consumer.type,
    receive: (envelope) => dependencies.call(dependency, () => consumer.receive(envelope)),
  };
}

/** An actor host reached over the network (a remote actor host), behind its breaker and timeout. */
export function guardedHost(host: ActorHost, dependencies: Dependencies, dependency: string): ActorHost {
  return {
    ask: (address, type, data, options) =>
      dependencies.call(
        dependency,
        (signal) => host.ask(address, type, data, { ...options, signal }),
        options?.signal,
      ),
    receive: (envelope) => dependencies.call(dependency, () => host.receive(envelope)),
  };
}
