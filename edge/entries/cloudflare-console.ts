// The operator console on Workers: what an isolate has to show, with sessions sealed in the cookie (no shared memory).
import { counterActor } from "../../actors/examples/counter.ts";
import {
  commerceActorSubscriptions,
  inventoryActor,
  loyaltyActor,
  orderActor,
} from "../../actors/commerce/actors.ts";
import type { ActivityLog } from "../../actors/commerce/projections/index.ts";
import { commerceConsumerSubscriptions } from "../../actors/commerce/subscriptions.ts";
import { DurableObjectHost } from "../../actors/hosts/cloudflare/index.ts";
import type { ActorHost } from "../../actors/runtime/index.ts";
import type { Config } from "../../shared/config/index.ts";
import type { Dependencies } from "../../shared/resilience/index.ts";
import type { ConsoleEventLog, ConsoleOptions } from "../console/index.tsx";
import { topologyOf } from "../console/local.ts";
import {
  bearerOnlyConsoleSessions,
  consoleSessionSecrets,
  signedConsoleSessions,
} from "../console/signed-session.ts";
import type { JwtOptions } from "../middleware/auth/jwt.ts";

/**
 * The isolate's console, built once: topology, its breakers, the broker's dead letters (QSTASH_URL and its token,
 * server-side), the Durable Objects' inspector, and sessions as signed cookies. No live stream (an SSE stream held
 * open per tab would keep a request, and a Postgres connection polling the log, alive for as long as the tab), and
 * no trace store: spans leave over OTLP. `withActivity` adds the activity log of a request's own connection.
 */
export function workerConsole(
  config: Config,
  auth: JwtOptions | undefined,
  actors: ActorHost,
  dependencies: Dependencies,
  commerce: boolean,
): ConsoleOptions {
  const secrets = consoleSessionSecrets(config);
  const local = actors instanceof DurableObjectHost;
  return {
    topology: topologyOf(
      local ? [counterActor, orderActor, inventoryActor, loyaltyActor] : [],
      commerce ? uniqueConsumers() : [],
      [...commerceActorSubscriptions, ...(commerce ? commerceConsumerSubscriptions : [])],
    ),
    breakers: () => dependencies.snapshots(),
    ...(config.QSTASH_URL && config.QSTASH_TOKEN
      ? {
          broker: {
            url: config.QSTASH_URL,
            token: config.QSTASH_TOKEN,
            guard: (call, signal) => dependencies.call("broker", call, signal),
          },
        }
      : {}),
    ...(local ? { inspect: (address) => actors.inspect(address) } : {}),
    sessionStore: secrets
      ? signedConsoleSessions(auth, secrets)
      : bearerOnlyConsoleSessions("set CONSOLE_SESSION_SECRET (or JWT_SECRET) to sign in with ?token="),
    live: false,
    tracesElsewhere:
      "No trace store on Workers: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans are exported to your collector.",
  };
}

/** The consumer types the subscriptions name (billing, the read side, …), once each. */
function uniqueConsumers(): Array<{ type: string }> {
  return [...new Set(commerceConsumerSubscriptions.map((s) => s.actor))].map((type) => ({ type }));
}

/** The activity log on a request's own connection, behind the `postgres` breaker. */
export function workerEvents(activity: ActivityLog, dependencies: Dependencies): ConsoleEventLog {
  return {
    latestActivity: (limit) => dependencies.call("postgres", () => activity.latestActivity(limit)),
    activityAfter: (position, limit) =>
      dependencies.call("postgres", () => activity.activityAfter(position, limit)),
  };
}
