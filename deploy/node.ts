// One self-hosted Edgewise node, on any runtime that brings a serve and a SQLite driver: the composition root.
import { join, resolve } from "node:path";
import { hostname } from "node:os";
import { Redis } from "@upstash/redis";
import { LocalActorHost } from "../actors/hosts/local/index.ts";
import type { SqlDatabase, SyncMode } from "../actors/hosts/local/sql.ts";
import { RemoteActorHost } from "../actors/hosts/remote/client.ts";
import { deliveryPath, QStashTransport } from "../actors/queue/qstash-transport.ts";
import type { Hono } from "hono";
import {
  type ActorAddress,
  type ActorHost,
  type AnyActorDefinition,
  type MessageConsumer,
  type Subscription,
  SubscriptionRegistry,
  guardedHost,
  guardedTransport,
  type Transport,
} from "../actors/runtime/index.ts";
import { createApp, type GatewayApp, securityReporters } from "../edge/app.ts";
import { dataDirCheck } from "./data-dir-check.ts";
import { createPrivateFile, reportTightened, tightenDataDir } from "./data-dir-files.ts";
import { localInspector, topologyOf } from "../edge/console/local.ts";
import type { ConsoleEventLog, ConsoleOptions, ConsoleTraces } from "../edge/console/index.tsx";
import { guardedRedis } from "../edge/middleware/rate-limit/guarded-redis.ts";
import {
  Dependencies,
  type DependencyPolicy,
  asPostgresFailure,
  guardedPort,
  sqlIsFailure,
} from "../shared/resilience/index.ts";
import { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import type { GatewayEnv } from "../edge/env.ts";
import { remoteKeySet } from "../edge/middleware/auth/jwks.ts";
import { jwtClaimChecks } from "../edge/middleware/auth/jwt.ts";
import { PostgresApiKeyStore } from "../edge/middleware/auth/postgres-api-key-store.ts";
import type { ApiKeyStore } from "../edge/middleware/auth/api-key-store.ts";
import { clientIp } from "../edge/middleware/client-ip/index.ts";
import { configuredLimiter } from "../edge/middleware/rate-limit/configured.ts";
import { rateLimit } from "../edge/middleware/rate-limit/index.ts";
import { type RatelimitRedis, upstashRestRedis } from "../edge/middleware/rate-limit/upstash.ts";
import type { DependencyCheck } from "../edge/routes/health.ts";
import type { Config } from "../shared/config/index.ts";
import { EdgewiseError } from "../shared/errors/index.ts";
import {
  boundedSecurityEvents,
  createLogger,
  errorFields,
  type Logger,
  type SecurityEvent,
  type SecurityEvents,
} from "../shared/telemetry/log/index.ts";
import { type Broker, defaultDeliveryConcurrency, startBroker } from "./local/broker/index.ts";
import { connect, type Sql } from "./local/broker/db.ts";
import { checkSchema } from "./local/broker/search-path.ts";
import { Maintenance } from "./local/broker/maintenance.ts";
import { startPGliteUpkeep } from "./local/pglite/upkeep.ts";
import { startEmbeddedPostgres } from "./local/pglite/index.ts";
import { lockDataDir } from "./data-dir-lock.ts";
import { followDeliveryOrigin } from "./delivery-origin.ts";
import { brokerCredentials, jwtSecret, privateDataDir, publicSigningKeysWarning } from "./secrets.ts";
import {
  caSummary,
  mtlsFetch,
  type TlsFiles,
  type TlsMaterial,
  tlsSummary,
  watchCaBundle,
  watchTlsFiles,
} from "./tls.ts";
import { brokerApiFetch, plainBrokerWarning } from "./broker-api.ts";
import { otlpMetricsConfigFromEnv, startOtlpMetricsExport } from "./metrics-export.ts";
import { type NodeTracing, startNodeTracing, tracingEnabled } from "./tracing.ts";
import { dialableHost, idleTimeoutFor, type RunningServer, type Serve } from "./serve.ts";
import { acquireActorHostLease } from "./actor-host-lease.ts";

export interface NodeOptions {
  config: Config;
  actors: AnyActorDefinition[];
  subscriptions?: Subscription[];
  serve: Serve;
  platform: "bun" | "deno";
  openActorDb: (path: string, sync: SyncMode) => SqlDatabase;
  /** A TCP Redis client for the rate limiter when REDIS_URL is set (Bun has one; elsewhere use Upstash REST). */
  tcpRedis?: (url: string) => RatelimitRedis & { close(): void };
  /** Where the broker delivers each actor's messages. Default: this node's own delivery endpoint. */
  deliveryUrl?: (target: ActorAddress, publicUrl: string) => string;
  /** Embedded broker only: shortens retry backoff (tests and development). */
  brokerTimeScale?: number;
  /** The Postgres schema for this node's tables, so several nodes can share one database in tests. */
  schema?: string;
  /** Adds an application (the reference commerce system) on the node's pool, queue and actors. */
  extend?: (context: ExtensionContext) => Promise<NodeExtension>;
  /**
   * Where the node's log lines go, each a JSON record at LOG_LEVEL or above. Default: the console (stdout; warn
   * and error to stderr). When given (tests, benches, the demo), the access log is off unless `accessLog` is set.
   */
  log?: (line: string) => void;
  /** The structured logger for everything the node writes; takes precedence over `log`. */
  logger?: Logger;
  /** One line per request at info (method, route, status, duration, client, subject). See `log` for the default. */
  accessLog?: boolean;
  /** The operator console at /_console (admins only). Default on; `false` turns it off. */
  console?: false | { traces?: ConsoleTraces };
  /**
   * Traces (deploy/tracing.ts): the process-wide SDK, OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set, and
   * the embedded trace store in the data dir. Default: on unless EDGEWISE_TRACING is `0`/`off`/`false`.
   */
  tracing?: boolean;
  /**
   * How long `stop` waits for the HTTP requests under way (after EDGEWISE_SHUTDOWN_DELAY) before it closes their
   * connections. Default 10 s.
   */
  httpDrainMs?: number;
  /**
   * Something this node cannot go on from: another node took the database's actor-host lease while this one's
   * Postgres connection was down (deploy/actor-host-lease.ts). Default: log it and exit with code 1.
   */
  onFatal?: (error: EdgewiseError) => void;
  /** How often an embedded PGlite whose queue is elsewhere looks for tables to vacuum. Default 10 s. */
  upkeepEveryMs?: number;
}

/** What a node shares with an extension. */
export interface ExtensionContext {
  config: Config;
  sql: Sql;
  /** Publishes to the queue; the broker delivers to `deliveryUrl(target)`. */
  transport: Transport;
  /** The actors, wherever they run (in process, or on a remote actor host). */
  actors: ActorHost;
  /** Whether this node hosts the actors (and so receives the queue's deliveries). */
  hostsActors: boolean;
  /** The node's Redis client (REST or TCP), when Redis is configured; the rate limiter uses the same one. */
  redis: RatelimitRedis | undefined;
  /** The node's breakers, one per dependency: use `dependencies.call("postgres", …)` for remote calls. */
  dependencies: Dependencies;
  /** The node's instruments (GET /metrics): an extension attaches its own sources, e.g. its read cache. */
  metrics: EdgewiseMetrics;
  /** Writes a line at info through `logger`. */
  log: (line: string) => void;
  /** The node's structured logger: prefer it, with a level and fields. */
  logger: Logger;
}

/** What an extension adds to the node. */
export interface NodeExtension {
  consumers?: MessageConsumer[];
  routes?: Array<Hono<GatewayEnv>>;
  readiness?: DependencyCheck[];
  /** Runs once the node serves (the port is bound and the public URL known). */
  start?: () => void;
  /** Runs before the pool closes. */
  stop?: () => Promise<void>;
  /**
   * Records a security event (auth failure, rate-limit denial, signature failure), e.g. in the activity log. The
   * node calls it at a bounded rate, after the request has moved on, and counts its failures.
   */
  securityEvents?: (event: SecurityEvent) => Promise<unknown>;
  /** The activity log, for the console's events and their live stream. */
  activity?: ConsoleEventLog;
  /** What the console's dead-letter table shows for a target the extension owns (a webhook's subscriber URL). */
  describeTarget?: ConsoleOptions["describeTarget"];
}

export interface EdgewiseNode {
  /** Where this machine reaches the node: 127.0.0.1 when HOST is every interface (the default), else HOST. */
  url: string;
  port: number;
  publicUrl: string;
  /** The local host; undefined on a gateway whose actors live on a remote actor host. */
  host: LocalActorHost | undefined;
  broker: Broker | undefined;
  brokerUrl: string;
  sql: Sql;
  /** A token with every scope, when the JWT secret is the node's own (embedded defaults). */
  adminToken: string | undefined;
  /** What GET /metrics serves. */
  metrics: EdgewiseMetrics;
  /** Security events reported, recorded and dropped (over the rate) so far. */
  securityEvents: SecurityEvents;
  /** The embedded trace store (`traces.db` in the data dir), when tracing is on. */
  tracing: NodeTracing | undefined;
  /** The gateway app the node serves (`app.request()` answers in process, as a request to `url` would). */
  app: GatewayApp;
  stop(): Promise<void>;
}

/**
 * Timeouts per dependency kind. Redis sits on the request path of every call (rate limit, cache), so it gets the
 * least; a webhook receiver the most (it is someone else's server).
 */
export const nodeDependencyPolicies: Record<string, Partial<DependencyPolicy>> = {
  // A refused statement (a value out of range, a constraint) is the database answering, not failing.
  // A lost connection reaches callers as 503 `unavailable` (asPostgresFailure), not as a driver error (a 500).
  postgres: { timeoutMs: 5_000, breaker: { isFailure: sqlIsFailure }, mapError: asPostgresFailure },
  redis: { timeoutMs: 500 },
  broker: { timeoutMs: 5_000 },
  "actor-host": { timeoutMs: 10_000 },
  webhook: { timeoutMs: 10_000 },
};

export async function startNode(options: NodeOptions): Promise<EdgewiseNode> {
  const stops: Stop[] = [];
  try {
    return await assembleNode(options, stops);
  } catch (error) {
    // A start that fails part way closes what it had opened, the data dir's locks last, so this process (a test,
    // a supervisor in process) can start a node on the same dir again.
    for (const stop of stops.reverse())
      await Promise.resolve()
        .then(stop)
        .catch(() => undefined);
    throw error;
  }
}

type Stop = () => Promise<unknown> | unknown;

async function assembleNode(options: NodeOptions, stops: Stop[]): Promise<EdgewiseNode> {
  const { config } = options;
  // PGlite ignores the search_path asked for at connect time: the tables would land in public, silently.
  if (options.schema && !config.DATABASE_URL) {
    throw new EdgewiseError(
      "config.invalid",
      "startNode's schema option needs DATABASE_URL (PGlite keeps its tables in public)",
    );
  }
  // Read first, so a malformed OTEL_* setting stops the node before it opens anything.
  const otlpMetrics = otlpMetricsConfigFromEnv();
  const logger =
    options.logger ??
    createLogger({
      level: config.LOG_LEVEL,
      ...(options.log ? { sink: options.log } : {}),
    });
  const log = (line: string) => logger.info(line);
  const dataDir = resolve(config.EDGEWISE_DATA_DIR);
  const openDataDir = privateDataDir(dataDir);
  if (openDataDir) logger.warn(openDataDir);
  // SQLite files made 0600 before SQLite opens them: it creates them 0644, and their -wal and -shm take that mode.
  const openPrivateDb = (path: string, sync: SyncMode) => {
    createPrivateFile(path);
    return options.openActorDb(path, sync);
  };
  // One process at a time on the embedded Postgres and on the local actors; released last, once they are closed.
  const openLockDb = (path: string) => options.openActorDb(path, "NORMAL");
  for (const part of [
    ...(config.DATABASE_URL ? [] : (["pglite"] as const)),
    ...(config.ACTOR_HOST_URL ? [] : (["actors"] as const)),
  ]) {
    const lock = lockDataDir(dataDir, part, openLockDb);
    stops.push(() => lock.release());
  }
  // Files an earlier version left readable by others (it made SQLite's 0644, PGlite's 0666): private from now on.
  // After the locks: a node still running on this dir is refused first, instead of its files changing under the walk.
  reportTightened(dataDir, tightenDataDir(dataDir), (message, paths) =>
    logger.warn(message, { dataDir, paths }),
  );
  // One actor host per shared database: a second node hosting actors there would keep its own copy of each.
  if (config.DATABASE_URL && !config.ACTOR_HOST_URL) {
    const lease = await acquireActorHostLease({
      url: config.DATABASE_URL,
      schema: options.schema,
      holder: `${hostname()} pid ${process.pid}`,
      onLost:
        options.onFatal ??
        ((error) => {
          logger.error(error.message);
          process.exit(1);
        }),
    });
    stops.push(() => lease.release());
  }
  const tracing =
    (options.tracing ?? tracingEnabled())
      ? startNodeTracing({
          dataDir,
          openDb: openPrivateDb,
          onError: (error) =>
            logger.warn("trace store: a write failed; those spans are not kept", {
              error: errorFields(error),
            }),
        })
      : undefined;
  if (tracing) stops.push(() => tracing.stop());
  // Everything GET /metrics serves (and the OTLP export pushes); each part below feeds it through a plain callback.
  const metrics = new EdgewiseMetrics({
    onError: (name, error) =>
      logger.warn("metrics: an instrument's source failed", { metric: name, error: errorFields(error) }),
  });

  // One pool for the node: the embedded PGlite serves a single connection, which everyone shares.
  const embedded = config.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ dataDir, sync: config.EDGEWISE_PGLITE_SYNC });
  if (embedded) stops.push(() => embedded.stop());
  const sql = await connect({
    url: config.DATABASE_URL ?? (embedded as { url: string }).url,
    max: embedded ? embedded.maxConnections : 10,
    socket: embedded?.socket,
    schema: options.schema,
    prepare: "detect",
  });
  stops.push(() => sql.end({ timeout: 5 }));
  if (config.DATABASE_URL) await checkSchema(sql, config.DATABASE_URL, options.schema);
  // PGlite runs no checkpointer and no WAL writer: the node runs their stand-ins (local/pglite/upkeep.ts).
  if (embedded) {
    const upkeep = startPGliteUpkeep(sql, (line) => logger.warn(line));
    stops.push(() => upkeep.stop());
  }

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

  const publicKeys = publicSigningKeysWarning(config.HOST, queue);
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

  const apiKeys = new PostgresApiKeyStore(sql);
  await apiKeys.migrate();
  const secret = await jwtSecret(config, dataDir);

  // Every remote dependency has one breaker and a timeout (shared/resilience); /readyz and /metrics show them.
  const dependencies = new Dependencies({
    policies: nodeDependencyPolicies,
    onStateChange: (change) =>
      logger[change.to === "closed" ? "info" : "warn"](
        `breaker ${change.name}: ${change.from} → ${change.to}`,
        {
          breaker: change.name,
          from: change.from,
          to: change.to,
          reason: change.reason,
        },
      ),
  });
  const rawRedis = config.UPSTASH_REDIS_REST_URL
    ? upstashRestRedis(Redis, config.UPSTASH_REDIS_REST_URL, config.UPSTASH_REDIS_REST_TOKEN as string)
    : config.REDIS_URL && options.tcpRedis
      ? options.tcpRedis(config.REDIS_URL)
      : undefined;
  if (rawRedis && "close" in rawRedis) stops.push(() => (rawRedis as { close(): void }).close());
  const rateLimitRedis = rawRedis ? guardedRedis(rawRedis, dependencies) : undefined;
  const limiter = configuredLimiter({
    rate: config.RATE_LIMIT,
    onRedisFailure: config.RATE_LIMIT_ON_REDIS_FAILURE,
    ...(rateLimitRedis ? { redis: rateLimitRedis } : {}),
    // Told of every request that found Redis failing (thousands a second under load, the breaker open): one line
    // per interval, with how many it stands for, so the outage shows without flooding the log.
    report: everyInterval(10_000, (error, failures) =>
      logger.warn(
        "rate limiter: Redis failed; counting locally or refusing, as RATE_LIMIT_ON_REDIS_FAILURE says",
        {
          failures,
          error: errorFields(error),
        },
      ),
    ),
  });

  // The public URL depends on the port actually bound (PORT=0 picks one), so it is read lazily.
  let publicUrl = config.PUBLIC_URL ?? "";
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
          (options.deliveryUrl as NonNullable<NodeOptions["deliveryUrl"]>)(target, actorsOrigin ?? publicUrl)
      : (target) => `${actorsOrigin ?? publicUrl}${deliveryPath(target)}`,
    retries: config.EDGEWISE_DELIVERY_RETRIES,
    // The SDK's own HTTP client unless a private CA is to be trusted (a refused certificate is then also named).
    ...(brokerCa ? { fetch: queueFetch } : {}),
  });
  // While the broker's breaker is open, relays keep every message in their outboxes and back off.
  const transport = guardedTransport(queueTransport, dependencies, "broker");
  // Mutual TLS (SECURITY.md): this process's certificate, followed as its files are rotated. An actor host serves
  // with it (and, with TLS_CA_FILE, admits only clients of those CAs); a gateway presents it to its actor host.
  const tlsFiles: TlsFiles | undefined = config.TLS_CERT_FILE
    ? watchTlsFiles(
        {
          cert: config.TLS_CERT_FILE,
          key: config.TLS_KEY_FILE as string,
          ...(config.TLS_CA_FILE ? { ca: config.TLS_CA_FILE } : {}),
        },
        {
          onError: (error) =>
            logger.warn("tls: a rotated certificate was not applied", { error: errorFields(error) }),
        },
      )
    : undefined;
  const tlsApplied = (material: TlsMaterial) =>
    logger.info("tls: certificate files applied", { ...tlsSummary(material) });
  if (tlsFiles) {
    stops.push(() => tlsFiles.close());
    // What it presents and trusts, at start and on every change applied: during a CA rotation, the line an
    // operator waits for on each process before the next step (SECURITY.md, "Rotating a role CA").
    logger.info("tls: certificate files loaded", { ...tlsSummary(tlsFiles.current()) });
    // A node that serves TLS logs it once its listener has switched (below); a gateway's next call uses them.
    if (config.ACTOR_HOST_URL) tlsFiles.onChange(tlsApplied);
  }
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
  if (host) metrics.observeActors(() => host.stats().byType).observeOutbox(() => host.outboxBacklog());
  const remoteHost = host
    ? undefined
    : new RemoteActorHost({
        baseUrl: config.ACTOR_HOST_URL as string,
        secret: config.ACTOR_HOST_SECRET as string,
        ...(tlsFiles ? { fetch: mtlsFetch(tlsFiles) } : {}),
      });
  const actors: ActorHost = host ?? guardedHost(remoteHost as RemoteActorHost, dependencies, "actor-host");

  const readiness: DependencyCheck[] = [
    {
      name: "postgres",
      critical: true,
      check: async () => void (await sql`SELECT 1`),
      breaker: () => dependencies.state("postgres"),
    },
    {
      name: "broker",
      critical: true,
      breaker: () => dependencies.state("broker"),
      check: async (signal) => {
        const response = await queueFetch(`${queue.url}/v2/keys`, {
          headers: { authorization: `Bearer ${queue.token}` },
          signal,
        });
        await response.body?.cancel();
        if (response.status >= 500) throw new Error(`broker answered ${response.status}`);
      },
    },
  ];
  // A gateway of a split deployment serves nothing without its actor host: the hop, its TLS and the secret.
  if (remoteHost) {
    readiness.push({
      name: "actorHost",
      critical: true,
      check: (signal) => remoteHost.ping(signal),
      breaker: () => dependencies.state("actor-host"),
    });
  }
  // Critical where the node's own state lives there: the local actors' SQLite, or the embedded Postgres.
  readiness.push(dataDirCheck(dataDir, host !== undefined || embedded !== undefined));
  if (rateLimitRedis) {
    readiness.push({
      name: "redis",
      critical: false,
      // The raw client: a readiness probe must see Redis itself, not its breaker's fast failure.
      check: async () => void (await rawRedis?.get("edgewise:ping")),
      breaker: () => dependencies.state("redis"),
    });
  }

  const extension = options.extend
    ? await options.extend({
        config,
        sql,
        transport,
        actors,
        hostsActors: host !== undefined,
        redis: rateLimitRedis,
        dependencies,
        metrics,
        log,
        logger,
      })
    : {};
  if (extension.stop) stops.push(extension.stop);
  readiness.push(...(extension.readiness ?? []));
  // Bounded per kind and recorded off the request path, so a flood of bad tokens cannot flood the log.
  const securityEvents = boundedSecurityEvents({
    ...(extension.securityEvents ? { record: extension.securityEvents } : {}),
    logger,
  });
  stops.push(() => securityEvents.settled());
  const security = securityReporters(securityEvents.emit);
  const consoleShutdown = new AbortController();
  // Set when stop begins: /readyz answers 503 `draining` from then on.
  let draining = false;
  let requestsUnderWay = 0;

  const app = createApp({
    actors,
    consumers: extension.consumers ?? [],
    routes: extension.routes ?? [],
    ...(host
      ? {
          delivery: {
            currentSigningKey: queue.currentSigningKey,
            nextSigningKey: queue.nextSigningKey,
            publicUrl: () => publicUrl,
          },
        }
      : {}),
    ...(host && config.ACTOR_HOST_SECRET ? { actorHost: { secret: config.ACTOR_HOST_SECRET } } : {}),
    clientIp: clientIp({
      trustedProxies: config.TRUSTED_PROXIES,
      forwardedHeader: config.TRUSTED_PROXY_HEADER,
      platform: options.platform,
    }),
    auth: {
      secret: secret.value,
      // One key set for the API and the console's logins; a provider outage is logged, once per failed round.
      ...(config.JWT_JWKS_URL
        ? {
            jwks: remoteKeySet(config.JWT_JWKS_URL, {
              report: (error) =>
                logger.warn("JWKS: the key set could not be fetched; the last one answers up to 1 h", {
                  error: errorFields(error),
                }),
            }),
          }
        : {}),
      ...jwtClaimChecks(config),
    },
    // Verifying a key may query Postgres: behind its breaker, so a dead database answers 503 at once.
    apiKeys: guardedPort<ApiKeyStore>(
      apiKeys,
      ["create", "find", "revoke", "list"],
      dependencies,
      "postgres",
    ),
    rateLimit: rateLimit({
      limiterFor: () => limiter,
      onDecision: (decision, routeClass) => metrics.rateLimit(decision, routeClass),
      onDenied: security.onDenied,
    }),
    readiness,
    draining: () => draining,
    dependencies,
    metrics,
    ...(config.METRICS_TOKEN ? { metricsToken: config.METRICS_TOKEN } : {}),
    // Rendered at most once a second: /metrics is public unless METRICS_TOKEN is set, and a render costs ms of CPU
    // and the broker's counts on the one Postgres pool.
    metricsReuseMs: 1_000,
    corsOrigins: config.CORS_ORIGINS,
    bodyLimitBytes: config.BODY_LIMIT,
    requestTimeoutMs: config.REQUEST_TIMEOUT,
    logger,
    accessLog: options.accessLog ?? (options.logger !== undefined || options.log === undefined),
    securityEvents: securityEvents.emit,
    ...(options.console === false
      ? {}
      : {
          console: {
            topology: topologyOf(
              host ? options.actors : [],
              extension.consumers ?? [],
              options.subscriptions ?? [],
            ),
            breakers: () => dependencies.snapshots(),
            broker: {
              url: queue.url,
              token: queue.token,
              fetch: queueFetch,
              guard: (call, signal) => dependencies.call("broker", call, signal),
            },
            ...(extension.activity ? { events: extension.activity } : {}),
            ...(extension.describeTarget ? { describeTarget: extension.describeTarget } : {}),
            signal: consoleShutdown.signal,
            live: {
              onError: (error) =>
                logger.warn("console: the live event stream cannot read the activity log; retrying", {
                  error: errorFields(error),
                }),
            },
            ...(host ? { inspect: localInspector((address) => host.inspect(address), actorDb) } : {}),
            ...(options.console?.traces
              ? { traces: options.console.traces }
              : tracing
                ? { traces: tracing.console }
                : {}),
          },
        }),
  });
  const server = await options.serve({
    port: config.PORT,
    hostname: config.HOST,
    // On Bun: a request may take REQUEST_TIMEOUT to answer before the connection counts as idle.
    idleTimeoutSeconds: idleTimeoutFor(config.REQUEST_TIMEOUT),
    fetch: async (request, peer) => {
      requestsUnderWay++;
      try {
        const response = await app.fetch(request, peer.address ? { remoteAddress: peer.address } : {});
        // While the node drains, a kept-alive connection is closed after its answer: the client's next request
        // opens a new one, which the load balancer sends elsewhere, instead of meeting this listener's close.
        return draining ? closingConnection(response) : response;
      } finally {
        requestsUnderWay--;
      }
    },
    // Answered problem+json by the serve; reported here, as the app's own failures are.
    onError: (error) => logger.error("request failed outside the app", { error: errorFields(error) }),
    // A gateway's certificate is a client's; a node that hosts actors listens with its own.
    ...(tlsFiles && host
      ? {
          tls: {
            files: tlsFiles,
            requireClientCert: config.TLS_CA_FILE !== undefined,
            onApplied: tlsApplied,
          },
        }
      : {}),
  });
  const scheme = tlsFiles && host ? "https" : "http";
  // What this machine dials to reach the node: 127.0.0.1 when bound to every interface, else the bound address.
  const localUrl = `${scheme}://${dialableHost(config.HOST)}:${server.port}`;
  publicUrl = (config.PUBLIC_URL ?? localUrl).replace(/\/+$/, "");
  ownOrigin = publicUrl;
  // A delivery for this node skips the gateway's middleware (see GatewayApp.deliverInProcess); nothing else does.
  const deliveryOrigin = `${ownOrigin}/_edgewise/deliver/`;
  const { deliverInProcess } = app;
  appFetch = (request) =>
    deliverInProcess && request.url.startsWith(deliveryOrigin)
      ? deliverInProcess(request, { remoteAddress: "127.0.0.1" })
      : app.fetch(request, { remoteAddress: "127.0.0.1" });
  // The embedded broker's messages for this node follow it to a new port or PUBLIC_URL (delivery-origin.ts).
  if (broker && !options.deliveryUrl) {
    const moved = await followDeliveryOrigin(broker.sql, dataDir, ownOrigin);
    if (moved) logger.info(`deliveries moved from ${moved.from} to ${ownOrigin}`, { ...moved });
  }
  serving();
  host?.start();
  extension.start?.();
  // OTLP metrics push, when configured; pushed last so that it stops first: its final export sees every request.
  const metricsExport = otlpMetrics
    ? startOtlpMetricsExport(metrics.registry, otlpMetrics, logger.child({ component: "metrics-export" }))
    : undefined;
  if (metricsExport) stops.push(() => metricsExport.stop());

  let stopped: Promise<void> | undefined;
  return {
    url: localUrl,
    port: server.port,
    publicUrl,
    host,
    broker,
    brokerUrl: queue.url,
    sql,
    adminToken: await secret.adminToken(),
    metrics,
    securityEvents,
    tracing,
    app,
    stop() {
      stopped ??= (async () => {
        // Readiness fails first, and the node keeps serving while load balancers notice (EDGEWISE_SHUTDOWN_DELAY).
        draining = true;
        logger.info("stopping: /readyz answers 503 draining", { delay_ms: config.EDGEWISE_SHUTDOWN_DELAY });
        if (config.EDGEWISE_SHUTDOWN_DELAY > 0) await sleep(config.EDGEWISE_SHUTDOWN_DELAY);
        // The console's live streams never end on their own: end them, or the server's graceful stop waits.
        consoleShutdown.abort();
        await drainServer(server, () => requestsUnderWay, options.httpDrainMs ?? 10_000, logger);
        // The embedded broker's deliveries under way finish while the actors are still there; no new one starts.
        await broker?.pauseDeliveries();
        await host?.stop();
        for (const stop of stops.reverse()) await stop();
      })();
      return stopped;
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * For a failure told per request: `report` runs for the first one, then at most once per `intervalMs`, with how
 * many failures (this one included) happened since the last line.
 */
export function everyInterval(
  intervalMs: number,
  report: (error: unknown, failures: number) => void,
  now: () => number = Date.now,
): (error: unknown) => void {
  let last = Number.NEGATIVE_INFINITY;
  let failures = 0;
  return (error) => {
    failures++;
    const at = now();
    // An `at` before the last line: the wall clock was stepped back. Due, or the failures went unlogged for as long.
    if (at >= last && at - last < intervalMs) return;
    last = at;
    report(error, failures);
    failures = 0;
  };
}

/** The answer with `Connection: close` (a copy when its headers are immutable, as a fetched response's are). */
function closingConnection(response: Response): Response {
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set("connection", "close");
    return copy;
  }
}

/**
 * Stops listening and lets the requests under way finish, for up to `drainMs`; then closes the connections still
 * open (an upload that never ends, a client that stopped reading), so a stop is bounded.
 */
async function drainServer(
  server: RunningServer,
  underWay: () => number,
  drainMs: number,
  logger: Logger,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const finished = await Promise.race([
    server.stop().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), drainMs);
    }),
  ]);
  clearTimeout(timer);
  if (finished) return;
  logger.warn("stopping: requests still under way after the drain; closing their connections", {
    requests: underWay(),
    drain_ms: drainMs,
  });
  await server.stop(true);
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
