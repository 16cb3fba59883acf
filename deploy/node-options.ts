// What startNode takes and returns, and what an extension (the reference commerce system) gets from a node and adds.
import type { Hono } from "hono";
import type { LocalActorHost } from "../actors/hosts/local/index.ts";
import type { SqlDatabase, SyncMode } from "../actors/hosts/local/sql.ts";
import type {
  ActorAddress,
  ActorHost,
  AnyActorDefinition,
  MessageConsumer,
  Subscription,
  Transport,
} from "../actors/runtime/index.ts";
import type { GatewayApp } from "../edge/app.ts";
import type { AdminEvents } from "../edge/audit/admin-events.ts";
import type { ConsoleEventLog, ConsoleOptions, ConsoleTraces } from "../edge/console/index.tsx";
import type { GatewayEnv } from "../edge/env.ts";
import type { RatelimitRedis } from "../edge/middleware/rate-limit/upstash.ts";
import type { DependencyCheck } from "../edge/routes/health.ts";
import type { Config } from "../shared/config/index.ts";
import type { EdgewiseError } from "../shared/errors/index.ts";
import type { SchemaComponent, SchemaMarkers } from "../shared/postgres/schema-marker.ts";
import type { Dependencies } from "../shared/resilience/index.ts";
import type { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import type { Logger, SecurityEvent, SecurityEvents } from "../shared/telemetry/log/index.ts";
import type { Broker } from "./local/broker/index.ts";
import type { Sql } from "./local/broker/db.ts";
import type { Serve } from "./serve.ts";
import type { NodeTracing } from "./tracing.ts";

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
  extend?: NodeExtender;
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
   * connections. Default EDGEWISE_SHUTDOWN_DRAIN (10 s).
   */
  httpDrainMs?: number;
  /** How long an online backup (POST /v1/backup) may wait for a quiet instant before it answers 503. Default 5 s. */
  backupQuiesceMs?: number;
  /**
   * How long one call to Postgres may take (its `postgres` dependency timeout, deploy/node-dependencies.ts) before
   * it fails and the request is answered 504; its breaker's time window is twice that. Default 5 s; tests of that
   * deadline set it shorter.
   */
  postgresTimeoutMs?: number;
  /**
   * Something this node cannot go on from: another node took the database's actor-host lease while this one's
   * Postgres connection was down (deploy/actor-host-lease.ts). Default: log it and exit with code 1.
   */
  onFatal?: (error: EdgewiseError) => void;
  /** How often an embedded PGlite whose queue is elsewhere looks for tables to vacuum. Default 10 s. */
  upkeepEveryMs?: number;
}

/**
 * Makes an extension once the node's pool, queue and actors are open. `checkConfig`, when given, is asked first,
 * before the node makes anything (its data dir, secrets, PGlite's files): it throws `config.invalid` for settings
 * the extension cannot run with, decided from the configuration alone.
 */
export type NodeExtender = ((context: ExtensionContext) => Promise<NodeExtension>) & {
  checkConfig?: (config: Config) => void;
  /**
   * The Postgres stores the extension migrates at start: the node reads their schema markers with its own stores',
   * in the one read of its start, and gives them to it as `ExtensionContext.schemaMarkers`.
   */
  schemas?: readonly SchemaComponent[];
};

/** What a node shares with an extension. */
export interface ExtensionContext {
  config: Config;
  sql: Sql;
  /**
   * The start's schema markers of `sql`, asked about the node's stores and the extender's `schemas`: give them to
   * those stores' `migrate`, which then reads none of its own.
   */
  schemaMarkers: SchemaMarkers;
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
  /**
   * Records admin actions (API keys, the console's dead letters, online backups) in the activity log. Its
   * `writeIn`, when it has one, writes on the node's API key store's transactions (a key's creation): only for an activity log on the
   * node's own pool (`ExtensionContext.sql`), as the commerce extension's is.
   */
  adminEvents?: AdminEvents;
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
