// The Workers entry behind `wrangler dev` / deploy: the gateway app, with actors as SQLite-backed Durable Objects.
import { counterActor } from "../../actors/examples/counter.ts";
import { DurableObjectHost, durableActor } from "../../actors/hosts/cloudflare/index.ts";
import {
  deliveryFromEnv,
  type QueueEnv,
  qstashTransportFromEnv,
} from "../../actors/hosts/cloudflare/queue.ts";
import { SubscriptionRegistry } from "../../actors/runtime/index.ts";
import { createApp } from "../app.ts";
import { gatewayFromEnv } from "./cloudflare-gateway.ts";

/** Bindings, and the queue's variables (see wrangler.toml; the token and signing keys are secrets). */
interface Env extends QueueEnv {
  COUNTER: DurableObjectNamespace;
}

/**
 * Who receives published events, declared here and nowhere in the producers (none yet). Given even when empty:
 * the relay then drops an event nobody subscribes to, as the Bun node does, where the QStash transport would
 * refuse it unexpanded and hold back the actor's later messages.
 */
const subscriptions = new SubscriptionRegistry([]);

/**
 * The example counter. With QSTASH_URL set, its relay publishes committed messages through QStash (or the local
 * broker); without it, its outbox waits durably.
 */
export const Counter = durableActor<Env>(counterActor, {
  transport: (env) => qstashTransportFromEnv(env),
  subscriptions,
});

// Bindings are the same for every request of an isolate, so the app is built once, on the first request (never
// at module scope: workerd allows no I/O there, and `env` is only known per request).
let app: ReturnType<typeof createApp> | undefined;

export default {
  fetch(request, env, ctx) {
    if (!app) {
      const delivery = deliveryFromEnv(env);
      app = createApp({
        actors: new DurableObjectHost({ counter: env.COUNTER }),
        ...(delivery ? { delivery } : {}),
        ...gatewayFromEnv(env),
      });
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
