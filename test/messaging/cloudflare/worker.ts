// The messaging Worker: a producer and a command target (the conformance counter) and a subscriber wired only by a
// subscription, all Durable Objects whose relay publishes through QStash (the local broker in the test).
import { DurableObjectHost, durableActor } from "../../../actors/hosts/cloudflare/index.ts";
import {
  deliveryFromEnv,
  type QueueEnv,
  relayTransportFromEnv,
} from "../../../actors/hosts/cloudflare/queue.ts";
import { SubscriptionRegistry } from "../../../actors/runtime/index.ts";
import { createApp } from "../../../edge/app.ts";
import { counter } from "../../conformance/fixtures.ts";
import { controlHandler, outcomeOf } from "../../conformance/protocol.ts";
import { subscriber, subscriptions } from "../fixtures.ts";

interface Env extends QueueEnv {
  COUNTER: DurableObjectNamespace;
  SUBSCRIBER: DurableObjectNamespace;
}

const options = {
  transport: (env: Env) => relayTransportFromEnv(env),
  // The composition's subscriptions: the counter (the producer) is defined without knowing them.
  subscriptions: new SubscriptionRegistry(subscriptions),
  // The production relay policy (250 ms doubling to 60 s): the broker-outage test measures the drain with it.
};

export const Counter = durableActor<Env>(counter, options);
export const Subscriber = durableActor<Env>(subscriber, options);

const hostOf = (env: Env) => new DurableObjectHost({ counter: env.COUNTER, subscriber: env.SUBSCRIBER });

/** The gateway app, built on the first delivery (bindings are the same for every request of an isolate). */
let app: ReturnType<typeof createApp> | undefined;

export default {
  fetch(request, env, ctx) {
    // Deliveries go through the production gateway app: signature check, then the actor's inbox.
    if (new URL(request.url).pathname.startsWith("/_edgewise/")) {
      if (!app) {
        const delivery = deliveryFromEnv(env);
        app = createApp({ actors: hostOf(env), ...(delivery ? { delivery } : {}) });
      }
      return app.fetch(request, env, ctx);
    }
    // Everything else is the conformance control protocol, for the test to drive and inspect actors.
    const host = hostOf(env);
    const unsupported = async (): Promise<never> => {
      throw new Error("this Worker's transport is the broker: ask it, not /sent or /transport");
    };
    return controlHandler({
      ask: (type, key, message, data, id) =>
        outcomeOf(() => host.ask({ type, key }, message, data, id ? { id } : {})),
      receive: (envelope) => outcomeOf(() => host.receive(envelope)),
      inspect: (type, key) => host.inspect({ type, key }),
      sent: unsupported,
      setTransportFailing: unsupported,
    })(request);
  },
} satisfies ExportedHandler<Env>;
