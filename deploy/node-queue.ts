// The node's queue: the embedded broker (unless QSTASH_URL), its deliveries to this node in process, the broker's CAs.
import type { GatewayApp } from "../edge/app.ts";
import type { SchemaMarkers } from "../shared/postgres/schema-marker.ts";
import { errorFields, type Logger } from "../shared/telemetry/log/index.ts";
import type { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import { brokerApiFetch, plainBrokerWarning } from "./broker-api.ts";
import { type Broker, defaultDeliveryConcurrency, startBroker } from "./local/broker/index.ts";
import type { Sql } from "./local/broker/db.ts";
import { Maintenance } from "./local/broker/maintenance.ts";
import type { EmbeddedPostgres } from "./local/pglite/index.ts";
import type { NodeOptions } from "./node-options.ts";
import type { Stop } from "./node-stop.ts";
import { brokerCredentials, publicSigningKeysWarning } from "./secrets.ts";
import { caSummary, watchCaBundle, type WatchedFiles } from "./tls.ts";

export interface NodeQueue {
  /** The embedded broker; undefined when the queue is QSTASH_URL's. */
  broker: Broker | undefined;
  /** Where the queue is, and the keys its deliveries are signed with. */
  queue: { url: string; token: string; currentSigningKey: string; nextSigningKey: string };
  /** QSTASH_CA_FILE's CAs, followed as they rotate. */
  brokerCa: WatchedFiles<string> | undefined;
  /** The fetch for every call to the broker's API (publishes, readiness, the console). */
  queueFetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  /** Once the node serves at `ownOrigin`: the embedded broker's deliveries for it go to `app` in process. */
  deliverTo(ownOrigin: string, app: GatewayApp): void;
  /** The node serves: the embedded broker's deliveries may begin. */
  serving(): void;
}

export interface NodeQueueParts {
  options: NodeOptions;
  sql: Sql;
  /** The start's schema markers of `sql`, asked about `brokerSchema` too: the broker reads none of its own. */
  schemaMarkers: SchemaMarkers;
  embedded: EmbeddedPostgres | undefined;
  dataDir: string;
  metrics: EdgewiseMetrics;
  logger: Logger;
  stops: Stop[];
}

export async function startNodeQueue(parts: NodeQueueParts): Promise<NodeQueue> {
  const { options, sql, schemaMarkers, embedded, dataDir, metrics, logger, stops } = parts;
  const { config } = options;
  // The embedded broker hands deliveries for this node straight to the app: the same signed request, route and
  // verification, without a loopback TCP hop. Anything else (another node, a webhook) goes out over fetch.
  let ownOrigin = "";
  let appFetch: ((request: Request) => Response | Promise<Response>) | undefined;
  // The broker may find work the moment it starts (messages left by a crash), before this node listens: its
  // deliveries wait until the node serves, instead of failing with ECONNREFUSED and taking a retry's backoff.
  let serving: () => void = () => {};
  const nodeServing = new Promise<void>((resolve) => {
    serving = resolve;
  });
  const brokerFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    await nodeServing;
    const request = new Request(input, init);
    return appFetch && ownOrigin && request.url.startsWith(`${ownOrigin}/`)
      ? answerUnlessAborted(appFetch, request)
      : fetch(request);
  };
  const brokerLog = logger.child({ component: "broker" });
  const broker = config.QSTASH_URL
    ? undefined
    : await startBroker({
        sql,
        schemaMarkers,
        port: 0,
        serve: options.serve,
        fetch: brokerFetch,
        // Not before the node serves, at the address its waiting messages were moved to (followDeliveryOrigin).
        deliverAfter: nodeServing,
        ...brokerCredentials(dataDir),
        deliveryConcurrency:
          config.QSTASH_DELIVERY_CONCURRENCY ?? defaultDeliveryConcurrency(embedded !== undefined),
        ...(options.brokerTimeScale ? { timeScale: options.brokerTimeScale } : {}),
        eventRetentionMs: config.EDGEWISE_BROKER_EVENT_RETENTION,
        dlqRetentionMs: config.EDGEWISE_BROKER_DLQ_RETENTION,
        // The embedded PGlite has no autovacuum: the broker vacuums its own tables there.
        ...(embedded ? { maintenance: { vacuumEveryMs: 10_000 } } : {}),
        log: (line) => brokerLog.warn(line),
      });
  // PGlite has no autovacuum: the embedded broker's upkeep covers every table of it; with the queue elsewhere
  // (QSTASH_URL), the node runs that upkeep for the application's tables itself.
  if (embedded && !broker) {
    const upkeep = new Maintenance(
      sql,
      { vacuumEveryMs: options.upkeepEveryMs ?? 10_000, vacuumEveryOutcomes: Number.POSITIVE_INFINITY },
      (line) => logger.warn(line),
    );
    upkeep.start({ always: true });
    stops.push(() => upkeep.stop());
  }
  if (broker) {
    stops.push(() => broker.stop());
    // Two counts on the broker's tables per scrape; the DLQ's is what an operator alerts on.
    metrics.observeBroker(async () => {
      const [row] = await broker.sql<Array<{ dead: number; pending: number }>>`
        SELECT (SELECT count(*) FROM qstash_dlq)::int AS dead, (SELECT count(*) FROM qstash_messages)::int AS pending`;
      return { deadLetters: row?.dead ?? 0, pending: row?.pending ?? 0 };
    }, broker.delivered);
  }
  const queue = {
    url: config.QSTASH_URL ?? (broker as Broker).url,
    token: config.QSTASH_TOKEN ?? (broker as Broker).token,
    currentSigningKey: config.QSTASH_CURRENT_SIGNING_KEY ?? (broker as Broker).currentSigningKey,
    nextSigningKey: config.QSTASH_NEXT_SIGNING_KEY ?? (broker as Broker).nextSigningKey,
  };

  // A gateway (ACTOR_HOST_URL) serves no delivery endpoint: the queue delivers to its actor host. A node that hosts
  // actors with TLS_CERT_FILE and TLS_CA_FILE serves them over mutual TLS (node-listener.ts).
  const hostsActors = config.ACTOR_HOST_URL === undefined;
  const publicKeys = publicSigningKeysWarning(config.HOST, queue, {
    servesDeliveries: hostsActors,
    requiresClientCert: hostsActors && config.TLS_CERT_FILE !== undefined && config.TLS_CA_FILE !== undefined,
  });
  if (publicKeys) logger.warn(publicKeys);
  const plainBroker = plainBrokerWarning(config.QSTASH_URL);
  if (plainBroker) logger.warn(plainBroker);
  // A self-hosted broker's CAs (QSTASH_CA_FILE), followed as they rotate: every call to the broker trusts them.
  const brokerCa = config.QSTASH_CA_FILE
    ? watchCaBundle(config.QSTASH_CA_FILE, {
        onError: (error) =>
          logger.warn("tls: a rotated broker CA bundle was not applied", { error: errorFields(error) }),
      })
    : undefined;
  if (brokerCa) {
    stops.push(() => brokerCa.close());
    // The line an operator waits for on each node during a rotation of the broker CA (SECURITY.md).
    logger.info("tls: broker CA loaded", { trusts: caSummary(brokerCa.current()) });
    brokerCa.onChange((bundle) => logger.info("tls: broker CA applied", { trusts: caSummary(bundle) }));
  }
  const queueFetch = brokerApiFetch(queue.url, {
    ca: brokerCa,
    onRefused: (error) => logger.warn(`queue: ${error.message}`, { code: error.meta?.code }),
  });
  return {
    broker,
    queue,
    brokerCa,
    queueFetch,
    deliverTo(origin, app) {
      ownOrigin = origin;
      // A delivery for this node skips the gateway's middleware (see GatewayApp.deliverInProcess); nothing else does.
      const deliveryOrigin = `${ownOrigin}/_edgewise/deliver/`;
      const { deliverInProcess } = app;
      appFetch = (request) =>
        deliverInProcess && request.url.startsWith(deliveryOrigin)
          ? deliverInProcess(request, { remoteAddress: "127.0.0.1" })
          : app.fetch(request, { remoteAddress: "127.0.0.1" });
    },
    serving,
  };
}

/**
 * What `fetch` does for a request's signal, for a delivery answered in process: once the signal aborts (the
 * message's Upstash-Timeout), the broker stops waiting and retries the message later. The node's work goes on, as a
 * server's does when its client hangs up; if that turn commits, the retry is a duplicate its inbox acknowledges.
 */
function answerUnlessAborted(
  answer: (request: Request) => Response | Promise<Response>,
  request: Request,
): Promise<Response> {
  const { signal } = request;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<Response>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    Promise.resolve()
      .then(() => answer(request))
      .then(resolve, reject)
      .finally(() => signal.removeEventListener("abort", onAbort));
  });
}
