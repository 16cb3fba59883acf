// The Workers entry behind `wrangler dev` / deploy: the gateway app, with actors as SQLite-backed Durable Objects.
import { counterActor } from "../../actors/examples/counter.ts";
import { DurableObjectHost, durableActor } from "../../actors/hosts/cloudflare/index.ts";
import { createApp } from "../app.ts";

interface Env {
  COUNTER: DurableObjectNamespace;
}

/** The example counter. No transport yet (the QStash one comes later): its outbox, if any, waits durably. */
export const Counter = durableActor<Env>(counterActor);

// Bindings are the same for every request of an isolate, so the app is built once, on the first.
let app: ReturnType<typeof createApp> | undefined;

export default {
  fetch(request, env, ctx) {
    app ??= createApp({ actors: new DurableObjectHost({ counter: env.COUNTER }) });
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
