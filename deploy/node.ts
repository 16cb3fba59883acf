// One self-hosted Edgewise node, on any runtime that brings a serve and a SQLite driver: the composition root.
import { apiKeysSchema, PostgresApiKeyStore } from "../edge/middleware/auth/postgres-api-key-store.ts";
import { placedBefore } from "../edge/routes/commerce/orders.ts";
import { readSchemaMarkers } from "../shared/postgres/schema-marker.ts";
import { boundedSecurityEvents, createLogger, errorFields } from "../shared/telemetry/log/index.ts";
import { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import { onlineBackupRoutes } from "./backup/online-route.ts";
import { followDeliveryOrigin } from "./delivery-origin.ts";
import { brokerSchema } from "./local/broker/db.ts";
import { otlpMetricsConfigFromEnv, startOtlpMetricsExport } from "./metrics-export.ts";
import { nodeActors, nodeTransport } from "./node-actors.ts";
import { createNodeApp } from "./node-app.ts";
import { checkNodeConfig } from "./node-config-check.ts";
import { claimDataDir } from "./node-data-dir.ts";
import { nodeDependencies } from "./node-dependencies.ts";
import { type HttpTraffic, serveNodeApp } from "./node-listener.ts";
import { stoppingOnListenerFailure } from "./node-listener-failure.ts";
import { nodeLoad } from "./node-load.ts";
import type { EdgewiseNode, NodeExtension, NodeOptions } from "./node-options.ts";
import { portBindable } from "./node-port.ts";
import {
  clearReadCacheAfterRestore,
  externalQueueWarning,
  restoredSinceStart,
} from "./read-cache-restored.ts";
import { openNodePostgres } from "./node-postgres.ts";
import { startNodeQueue } from "./node-queue.ts";
import { nodeRateLimit } from "./node-rate-limit.ts";
import { nodeReadiness } from "./node-readiness.ts";
import { type Stop, stopNode } from "./node-stop.ts";
import { watchNodeTls } from "./node-tls.ts";
import { rotationWarnings } from "../shared/config/rotation.ts";
import { jwtSecret } from "./secrets.ts";
import { dialableHost } from "./serve.ts";
import { startNodeTracing, tracingEnabled } from "./tracing.ts";

export type {
  EdgewiseNode,
  ExtensionContext,
  NodeExtender,
  NodeExtension,
  NodeOptions,
} from "./node-options.ts";
export { nodeDependencyPolicies } from "./node-dependencies.ts";
export { everyInterval } from "./node-rate-limit.ts";

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

/**
 * The node's parts in the order they open; `stops` gets what closes each, and a stop runs them in reverse (the data
 * dir's locks last). Each step's file says what it opens and why it comes where it does.
 */
async function assembleNode(options: NodeOptions, stops: Stop[]): Promise<EdgewiseNode> {
  const { config } = options;
  const tracingOn = options.tracing ?? tracingEnabled();
  // Settings refused from the environment alone are refused first, before the node opens or makes anything.
  checkNodeConfig(options, tracingOn);
  // Read first too, so a malformed OTEL_* setting stops the node before it opens anything.
  const otlpMetrics = otlpMetricsConfigFromEnv();
  const logger =
    options.logger ??
    createLogger({
      level: config.LOG_LEVEL,
      ...(options.log ? { sink: options.log } : {}),
    });
  const log = (line: string) => logger.info(line);
  // A listener that stops accepting (Deno.serve on EMFILE) stops this node in order, once it exists.
  let stopThisNode: (() => Promise<void>) | undefined;
  const serve = stoppingOnListenerFailure(
    options.serve,
    logger,
    () => stopThisNode?.() ?? Promise.resolve(),
    options.onFatal,
  );

  // Before anything is made in the data dir: a start refused for a busy port leaves no data dir, secrets or PGlite
  // files behind (the listener itself comes last, once the node is assembled).
  await portBindable(config.HOST, config.PORT);

  // The data dir's locks and a shared database's actor-host lease, before anything is opened there.
  const { dataDir, openPrivateDb } = await claimDataDir(options, logger, stops);
  const tracing = tracingOn
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

  const { embedded, sql } = await openNodePostgres(options, dataDir, logger, stops);
  // Every store's schema marker in one read: the broker's, the API keys' and the extension's stores' (each then runs
  // its DDL only when its marker is not current, re-checked under its lock).
  const schemaMarkers = await readSchemaMarkers(sql, [
    brokerSchema,
    apiKeysSchema,
    ...(options.extend?.schemas ?? []),
  ]);
  // The broker's deliveries wait until the node serves (`queue.serving()` below).
  const queue = await startNodeQueue({
    options: { ...options, serve },
    sql,
    schemaMarkers,
    embedded,
    dataDir,
    metrics,
    logger,
    stops,
  });
  const { broker } = queue;

  const apiKeys = new PostgresApiKeyStore(sql);
  await apiKeys.migrate(schemaMarkers);
  const secret = await jwtSecret(config, dataDir);
  // A rotation left half done keeps the old secret honoured: said at every start until it is unset.
  // (A node's console sessions live in its memory: CONSOLE_SESSION_PREVIOUS_SECRET is the Workers' only.)
  for (const warning of rotationWarnings(config, [
    "JWT_PREVIOUS_SECRET",
    "METRICS_PREVIOUS_TOKEN",
    "ACTOR_HOST_PREVIOUS_SECRET",
  ]))
    logger.warn(warning);

  // Every remote dependency has one breaker and a timeout (shared/resilience); /readyz and /metrics show them.
  const dependencies = nodeDependencies(logger, options.postgresTimeoutMs);
  const rateLimit = nodeRateLimit(options, dependencies, logger, stops);
  // Redis and an external queue outlive `npm run restore`: the first start after one drops the read cache's newer
  // entries and floors, and says what the queue needs.
  if (config.QSTASH_URL && restoredSinceStart(dataDir)) logger.warn(externalQueueWarning);
  await clearReadCacheAfterRestore({
    dataDir,
    redis: rateLimit.rawRedis,
    prefix: `${config.REDIS_KEY_PREFIX}read:`,
    logger,
  });

  // The public URL depends on the port actually bound (PORT=0 picks one), so it is read lazily.
  let publicUrl = config.PUBLIC_URL ?? "";
  const transport = nodeTransport(options, queue, dependencies, () => publicUrl);
  const tls = watchNodeTls(config, logger, stops);
  const actors = nodeActors({
    options,
    dataDir,
    openPrivateDb,
    transport,
    tls,
    dependencies,
    metrics,
    logger,
  });
  const { host } = actors;

  const readiness = nodeReadiness({
    sql,
    embedded,
    dataDir,
    queue,
    actors,
    redis: rateLimit,
    redisKeyPrefix: config.REDIS_KEY_PREFIX,
    dependencies,
    transport,
  });
  const extension: NodeExtension = options.extend
    ? await options.extend({
        config,
        sql,
        schemaMarkers,
        transport,
        actors: actors.actors,
        hostsActors: host !== undefined,
        redis: rateLimit.rateLimitRedis,
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
  const consoleShutdown = new AbortController();
  // `draining` is set when stop begins: /readyz answers 503 `draining` from then on.
  const traffic: HttpTraffic = { draining: false, requestsUnderWay: 0 };

  // How far behind the embedded broker is, read every 250 ms: new orders are refused above EDGEWISE_MAX_QUEUE_DELAY.
  // A placement repeating an accepted order's Idempotency-Key writes nothing new: it is answered, never refused.
  const load = nodeLoad({
    options,
    brokerSql: broker?.sql,
    metrics,
    logger,
    stops,
    repeatsAccepted: placedBefore(actors.actors),
  });

  const app = createNodeApp({
    options,
    actors,
    extension,
    queue,
    publicUrl: () => publicUrl,
    secret,
    apiKeys,
    rateLimit,
    readiness,
    traffic,
    dependencies,
    metrics,
    admission: load.admission,
    securityEvents,
    consoleShutdown,
    tracing,
    backup: onlineBackupRoutes({
      dataDir,
      embedded,
      openDb: (path) => options.openActorDb(path, "NORMAL"),
      quiesceMs: options.backupQuiesceMs ?? 5_000,
      ...(extension.adminEvents ? { adminEvents: extension.adminEvents } : {}),
    }),
    logger,
  });
  const server = await serveNodeApp({ serve, config, app, traffic, tls, host, logger });
  const scheme = tls.tlsFiles && host ? "https" : "http";
  // What this machine dials to reach the node: 127.0.0.1 when bound to every interface, else the bound address.
  const localUrl = `${scheme}://${dialableHost(config.HOST)}:${server.port}`;
  publicUrl = (config.PUBLIC_URL ?? localUrl).replace(/\/+$/, "");
  const ownOrigin = publicUrl;
  queue.deliverTo(ownOrigin, app);
  // The embedded broker's messages for this node follow it to a new port or PUBLIC_URL (delivery-origin.ts).
  if (broker && !options.deliveryUrl) {
    const moved = await followDeliveryOrigin(broker.sql, dataDir, ownOrigin);
    if (moved) logger.info(`deliveries moved from ${moved.from} to ${ownOrigin}`, { ...moved });
  }
  queue.serving();
  host?.start();
  extension.start?.();
  // OTLP metrics push, when configured; pushed last so that it stops first: its final export sees every request.
  const metricsExport = otlpMetrics
    ? startOtlpMetricsExport(metrics.registry, otlpMetrics, logger.child({ component: "metrics-export" }))
    : undefined;
  if (metricsExport) stops.push(() => metricsExport.stop());

  let stopped: Promise<void> | undefined;
  const node: EdgewiseNode = {
    url: localUrl,
    port: server.port,
    publicUrl,
    host,
    broker,
    brokerUrl: queue.queue.url,
    sql,
    adminToken: await secret.adminToken(),
    metrics,
    securityEvents,
    tracing,
    app,
    stop() {
      // The order is node-stop.ts's: readiness fails, HTTP drains, deliveries pause, the actors stop, then `stops`.
      stopped ??= stopNode({
        config,
        logger,
        traffic,
        consoleShutdown,
        server,
        httpDrainMs: options.httpDrainMs ?? config.EDGEWISE_SHUTDOWN_DRAIN,
        broker,
        host,
        stops,
      });
      return stopped;
    },
  };
  stopThisNode = () => node.stop();
  return node;
}
