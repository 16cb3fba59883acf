// The Workers entry behind `wrangler dev` / deploy: the gateway app, with actors as SQLite-backed Durable Objects.
import { counterActor } from "../../actors/examples/counter.ts";
import { DurableObjectHost, durableActor } from "../../actors/hosts/cloudflare/index.ts";
import { deliveryFromEnv, qstashTransportFromEnv } from "../../actors/hosts/cloudflare/queue.ts";
import { deliveryPath } from "../../actors/queue/qstash-transport.ts";
import { EdgewiseError, problemResponse } from "../../shared/errors/index.ts";
import { type AppOptions, createApp } from "../app.ts";
import {
  type CommerceEnv,
  CommerceOnWorkers,
  commerceSubscriptions,
  databaseUrl,
} from "./cloudflare-commerce.ts";
import { gatewayFromEnv, workerConfig } from "./cloudflare-gateway.ts";

export { Inventory, Loyalty, Order } from "./cloudflare-commerce.ts";

/** Bindings, and the variables of the queue and of commerce (see wrangler.toml; secrets are marked there). */
interface Env extends CommerceEnv {
  COUNTER: DurableObjectNamespace;
}

/**
 * The example counter. With QSTASH_URL set, its relay publishes committed messages through QStash (or the local
 * broker); without it, its outbox waits durably. It publishes no commerce event, so the registry drops any.
 */
export const Counter = durableActor<Env>(counterActor, {
  transport: (env) => qstashTransportFromEnv(env),
  subscriptions: commerceSubscriptions,
});

/** What every request of an isolate shares: bindings and variables are the same for all of them. */
interface Isolate {
  options: AppOptions;
  /** Deliveries to these types reach a Durable Object and never touch Postgres. */
  actorPaths: string[];
  /** With Postgres (DATABASE_URL or HYPERDRIVE): the commerce consumers and routes. */
  commerce: CommerceOnWorkers | undefined;
  /** Without commerce, one app serves every request. */
  app: ReturnType<typeof createApp> | undefined;
}

// Built on the first request (never at module scope: workerd allows no I/O there, and `env` is only known per
// request). Nothing in it holds a socket: the Postgres pool is per request (see CommerceOnWorkers).
let isolate: Isolate | undefined;

function isolateFor(env: Env): Isolate {
  if (isolate) return isolate;
  const namespaces = {
    counter: env.COUNTER,
    order: env.ORDER,
    inventory: env.INVENTORY,
    loyalty: env.LOYALTY,
  };
  const actors = new DurableObjectHost(namespaces);
  const delivery = deliveryFromEnv(env);
  const options: AppOptions = { actors, ...(delivery ? { delivery } : {}), ...gatewayFromEnv(env) };
  const url = databaseUrl(env);
  let commerce: CommerceOnWorkers | undefined;
  if (url) {
    const transport = qstashTransportFromEnv(env);
    if (!transport || !delivery) {
      throw new EdgewiseError(
        "config.invalid",
        "commerce (DATABASE_URL) needs the queue: QSTASH_URL, QSTASH_TOKEN, both signing keys and PUBLIC_URL",
      );
    }
    commerce = new CommerceOnWorkers(workerConfig(env), url, transport, actors);
  }
  isolate = {
    options,
    actorPaths: Object.keys(namespaces).map((type) => deliveryPath({ type, key: "" })),
    commerce,
    app: commerce ? undefined : createApp(options),
  };
  return isolate;
}

/** Everything but health checks and deliveries to actors may query Postgres, so needs its tables. */
function needsTables(request: Request, worker: Isolate): boolean {
  const path = new URL(request.url).pathname;
  if (path === "/healthz" || path === "/readyz") return false;
  return !worker.actorPaths.some((prefix) => path.startsWith(prefix));
}

export default {
  async fetch(request, env, ctx) {
    const worker = isolateFor(env);
    if (!worker.commerce) return (worker.app as ReturnType<typeof createApp>).fetch(request, env, ctx);
    // The commerce parts hold this request's pool, so the app that routes to them is built per request too.
    const scope = worker.commerce.open(ctx);
    try {
      if (needsTables(request, worker)) await scope.ready();
      const app = createApp({
        ...worker.options,
        consumers: scope.system.consumers,
        routes: [scope.system.routes],
        readiness: [{ name: "postgres", critical: true, check: () => scope.ping() }],
      });
      return await app.fetch(request, env, ctx);
    } catch (error) {
      return problemResponse(error, { instance: new URL(request.url).pathname });
    } finally {
      scope.close();
    }
  },

  /**
   * The cron trigger ([triggers] in wrangler.toml): drains what the relay after each commit left in the billing
   * outbox (a failed publish backing off, a commit that landed after its request's pool ended).
   */
  async scheduled(_controller, env, ctx) {
    const commerce = isolateFor(env).commerce;
    if (!commerce) return;
    const scope = commerce.open(ctx);
    try {
      await scope.ready();
      await scope.drainBilling();
    } finally {
      scope.close();
    }
  },
} satisfies ExportedHandler<Env>;
