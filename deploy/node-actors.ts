// The actors and the way to them: the queue's transport, then the local host, or a gateway's remote actor host.
import { join } from "node:path";
import { LocalActorHost } from "../actors/hosts/local/index.ts";
import type { SqlDatabase } from "../actors/hosts/local/sql.ts";
import { RemoteActorHost } from "../actors/hosts/remote/client.ts";
import { deliveryPath, QStashTransport } from "../actors/queue/qstash-transport.ts";
import { redeliveryHorizonMs } from "../actors/queue/retry-policy.ts";
import {
  type ActorHost,
  SubscriptionRegistry,
  guardedHost,
  guardedTransport,
  type Transport,
} from "../actors/runtime/index.ts";
import type { Dependencies } from "../shared/resilience/index.ts";
import { errorFields, type Logger } from "../shared/telemetry/log/index.ts";
import type { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import type { NodeOptions } from "./node-options.ts";
import type { NodeQueue } from "./node-queue.ts";
import type { NodeTls } from "./node-tls.ts";
import { mtlsFetch } from "./tls.ts";

/**
 * Publishes to the queue, which delivers each message to `publicUrl()` (read at each publish: it is known once the
 * node serves) or, on a gateway, to its actor host.
 */
export function nodeTransport(
  options: NodeOptions,
  { queue, brokerCa, queueFetch }: NodeQueue,
  dependencies: Dependencies,
  publicUrl: () => string,
): Transport {
  const { config } = options;
  // Where messages for actors are delivered: here, or, on a gateway, at its actor host (this node serves no
  // delivery endpoint). The actor host checks each delivery's signed URL against its own PUBLIC_URL.
  const actorsOrigin = config.ACTOR_HOST_URL
    ? (config.ACTOR_HOST_PUBLIC_URL ?? config.ACTOR_HOST_URL).replace(/\/+$/, "")
    : undefined;
  const queueTransport = new QStashTransport({
    baseUrl: queue.url,
    token: queue.token,
    deliveryUrl: options.deliveryUrl
      ? (target) =>
          (options.deliveryUrl as NonNullable<NodeOptions["deliveryUrl"]>)(
            target,
            actorsOrigin ?? publicUrl(),
          )
      : (target) => `${actorsOrigin ?? publicUrl()}${deliveryPath(target)}`,
    retries: config.EDGEWISE_DELIVERY_RETRIES,
    // The fetch that trusts a private CA when there is one (a refused certificate is then also named).
    ...(brokerCa ? { fetch: queueFetch } : {}),
  });
  // While the broker's breaker is open, relays keep every message in their outboxes and back off.
  return guardedTransport(queueTransport, dependencies, "broker");
}

export interface NodeActors {
  /** The local actors' SQLite; undefined on a gateway. */
  actorDb: SqlDatabase | undefined;
  /** The local host; undefined on a gateway whose actors live on a remote actor host. */
  host: LocalActorHost | undefined;
  /** A gateway's client of its actor host. */
  remoteHost: RemoteActorHost | undefined;
  /** The actors, wherever they run (a remote host behind its breaker). */
  actors: ActorHost;
}

export interface NodeActorsParts {
  options: NodeOptions;
  dataDir: string;
  openPrivateDb: NodeOptions["openActorDb"];
  transport: Transport;
  tls: NodeTls;
  dependencies: Dependencies;
  metrics: EdgewiseMetrics;
  logger: Logger;
}

export function nodeActors(parts: NodeActorsParts): NodeActors {
  const { options, dataDir, openPrivateDb, transport, dependencies, metrics, logger } = parts;
  const { config } = options;
  const { tlsFiles } = parts.tls;
  const actorDb = config.ACTOR_HOST_URL
    ? undefined
    : openPrivateDb(join(dataDir, "actors.db"), config.EDGEWISE_SQLITE_SYNC);
  const host = !actorDb
    ? undefined
    : new LocalActorHost({
        actors: options.actors,
        db: actorDb,
        inboxRetentionMs: config.EDGEWISE_INBOX_RETENTION,
        idleEvictMs: config.EDGEWISE_IDLE_EVICT,
        maxActiveActors: config.EDGEWISE_MAX_ACTORS,
        turnTimeoutMs: config.EDGEWISE_TURN_TIMEOUT,
        subscriptions: new SubscriptionRegistry(options.subscriptions ?? []),
        transport,
        onTurn: (record) => metrics.turn(record),
        onBackgroundError: (what, error, fields) =>
          logger.warn(what, { component: "host", ...fields, error: errorFields(error) }),
      });
  // The inbox is what makes a redelivery a duplicate: one that forgets sooner than the queue redelivers applies it again.
  const horizonMs = redeliveryHorizonMs(config.EDGEWISE_DELIVERY_RETRIES);
  if (host && config.EDGEWISE_INBOX_RETENTION < horizonMs)
    logger.warn(
      "EDGEWISE_INBOX_RETENTION is shorter than the queue's retries of a message (EDGEWISE_DELIVERY_RETRIES): a redelivery after the retention is applied again",
      { inboxRetentionMs: config.EDGEWISE_INBOX_RETENTION, redeliveryHorizonMs: horizonMs },
    );
  if (host) metrics.observeActors(() => host.stats().byType).observeOutbox(() => host.outboxBacklog());
  // Every relay of the node (the host's, billing's) publishes through this one transport.
  metrics.observeQueueRateLimit(() => transport.rateLimitedUntil?.());
  const remoteHost = host
    ? undefined
    : new RemoteActorHost({
        baseUrl: config.ACTOR_HOST_URL as string,
        secret: config.ACTOR_HOST_SECRET as string,
        ...(tlsFiles ? { fetch: mtlsFetch(tlsFiles) } : {}),
      });
  const actors: ActorHost = host ?? guardedHost(remoteHost as RemoteActorHost, dependencies, "actor-host");
  return { actorDb, host, remoteHost, actors };
}
