// The reference commerce system on Workers: its actors as Durable Objects, its consumers on a per-request Postgres pool.
import { Redis } from "@upstash/redis/cloudflare";
import postgres from "postgres";
import {
  commerceActorSubscriptions,
  inventoryActor,
  loyaltyActor,
  orderActor,
} from "../../actors/commerce/actors.ts";
import type { BillingOutboxRelay, PruneSchedule } from "../../actors/commerce/billing/index.ts";
import {
  ActivityLog,
  type ReadCache,
  RedisReadCache,
  activityPruner,
  retriesPerRequest,
  securityEventPruner,
} from "../../actors/commerce/projections/index.ts";
import { commerceConsumerSubscriptions } from "../../actors/commerce/subscriptions.ts";
import { resolveWithNodeDns } from "../../actors/commerce/webhooks/dns-resolver.ts";
import { postWithFetch } from "../../actors/commerce/webhooks/post.ts";
import { INBOUND_ID_KEEP_MS } from "../../actors/commerce/webhooks/inbound.ts";
import { PostgresWebhookStore } from "../../actors/commerce/webhooks/postgres-store.ts";
import { durableActor } from "../../actors/hosts/cloudflare/index.ts";
import { type QueueEnv, relayTransportFromEnv } from "../../actors/hosts/cloudflare/queue.ts";
import {
  type ActorHost,
  relayFailureFields,
  SubscriptionRegistry,
  type Transport,
} from "../../actors/runtime/index.ts";
import { dueAfter } from "../../shared/clock/index.ts";
import type { Config } from "../../shared/config/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { readSchemaMarkers } from "../../shared/postgres/schema-marker.ts";
import { type Dependencies, guardedPort, isBreakerOpen } from "../../shared/resilience/index.ts";
import {
  boundedSecurityEvents,
  createLogger,
  errorFields,
  type Logger,
  type SecurityEvent,
  type SecurityEvents,
} from "../../shared/telemetry/log/index.ts";
import type { EdgewiseMetrics } from "../../shared/telemetry/metrics/index.ts";
import { type CommerceSystem, commerceSchemas, commerceSystem, securityEventEnvelope } from "../commerce.ts";
import { cachedApiKeyVerifier } from "../middleware/auth/api-key-cache.ts";
import type { ApiKeyStore } from "../middleware/auth/api-key-store.ts";
import { apiKeysSchema, PostgresApiKeyStore } from "../middleware/auth/postgres-api-key-store.ts";
import { guardedRedis } from "../middleware/rate-limit/guarded-redis.ts";
import { upstashRestRedis } from "../middleware/rate-limit/upstash.ts";

/** The commerce bindings and variables (see wrangler.toml; DATABASE_URL and the Redis token are secrets). */
export interface CommerceEnv extends QueueEnv {
  ORDER: DurableObjectNamespace;
  INVENTORY: DurableObjectNamespace;
  LOYALTY: DurableObjectNamespace;
  /** Hyperdrive in production: its connection string wins over DATABASE_URL. */
  HYPERDRIVE?: Hyperdrive;
  DATABASE_URL?: string;
  /** With its token (a secret): the read cache. */
  UPSTASH_REDIS_REST_URL?: string;
}

/** Postgres for the consumers: Hyperdrive's connection string, else DATABASE_URL; undefined = no commerce consumers. */
export function databaseUrl(env: CommerceEnv): string | undefined {
  return env.HYPERDRIVE?.connectionString ?? (env.DATABASE_URL || undefined);
}

const registries = new Map<string, SubscriptionRegistry>();

/**
 * Who receives the commerce events. The consumers' subscriptions only where they can run (Postgres): otherwise
 * the broker would deliver to a consumer type nobody serves. (The read side takes each event whether or not a
 * cache is configured; without one it has no cache part.)
 */
export function commerceSubscriptions(env: CommerceEnv): SubscriptionRegistry {
  const withConsumers = databaseUrl(env) !== undefined;
  const id = String(withConsumers);
  let registry = registries.get(id);
  if (!registry) {
    const consumers = withConsumers ? commerceConsumerSubscriptions : [];
    registry = new SubscriptionRegistry([...commerceActorSubscriptions, ...consumers]);
    registries.set(id, registry);
  }
  return registry;
}

const actorOptions = {
  transport: (env: CommerceEnv) => relayTransportFromEnv(env),
  subscriptions: commerceSubscriptions,
};

export const Order = durableActor<CommerceEnv>(orderActor, actorOptions);
export const Inventory = durableActor<CommerceEnv>(inventoryActor, actorOptions);
export const Loyalty = durableActor<CommerceEnv>(loyaltyActor, actorOptions);

/** The commerce parts of one request (or one cron run), on a pool of their own. */
export interface CommerceScope {
  system: CommerceSystem;
  /** The API-key store on this scope's pool: POST and DELETE /v1/api-keys. */
  apiKeys: ApiKeyStore;
  /** Creates the tables, once per isolate (the first scope that needs them pays). */
  ready(): Promise<void>;
  /** The readiness check: one round trip on this scope's pool. */
  ping(): Promise<void>;
  /** Drains the billing outbox as far as it is due. */
  drainBilling(): Promise<void>;
  /** Ends the pool once the request's background work (the relay after a commit) is done. */
  close(): void;
}

/** Relay passes after one commit: enough for a burst, bounded so one request cannot relay forever. */
const drainPasses = 10;

/**
 * The commerce consumers and routes on Workers, one per isolate. workerd forbids a socket opened in one
 * request from being used in another ("Cannot perform I/O on behalf of a different request"), so a
 * postgres.js pool cannot outlive its request: each request opens its own (lazily: postgres.js connects on
 * the first query, so a request that never touches Postgres opens nothing) and ends it in `waitUntil`.
 * With Hyperdrive in front, those connections are cheap; without it, each costs a TCP and auth round trip.
 * With `dependencies` (the isolate's breakers), Postgres work, Redis and webhook POSTs go through their breakers.
 */
export class CommerceOnWorkers {
  private readonly readCache: ReadCache | undefined;
  private migrated = false;
  /**
   * X-API-Key, verified across the isolate's requests: its cache (4 s, API.md's "within 5 s" for a revoke) is
   * the isolate's, and a miss looks the key up on a connection of its own, opened in the request that missed and
   * ended with the lookup, since no pool outlives a request here.
   */
  readonly apiKeyVerifier = cachedApiKeyVerifier({ find: (id) => this.findApiKey(id) });

  /**
   * The gateway's security events (refused credentials, rate-limit denials, forged deliveries) into the activity log,
   * as on a node: at most 10 a second per kind across the isolate's requests, each written on a connection of its
   * own (opened in the request that reported it, which waits for it in waitUntil), and those older than their
   * retention pruned at most once an hour the same way.
   */
  readonly securityEvents: SecurityEvents = boundedSecurityEvents({
    record: (event) => this.recordSecurityEvent(event),
  });
  /**
   * EDGEWISE_ACTIVITY_RETENTION, when set: the cron calls it every minute, and it prunes the activity log at most
   * once an hour per isolate (as a node does at start and then hourly), on a connection of its own.
   */
  readonly pruneActivity: (now: number) => Promise<void> | undefined;
  /**
   * EDGEWISE_WEBHOOK_ATTEMPT_RETENTION: the cron calls it every minute, and it prunes the outbound webhooks' attempt
   * log at most once an hour per isolate, on a connection of its own.
   */
  readonly pruneWebhookAttempts: (now: number) => Promise<void> | undefined;
  /**
   * The cron calls it every minute: inbound webhook ids past replay (`INBOUND_ID_KEEP_MS`) are forgotten whether or
   * not webhooks still arrive (each accepted one prunes too), on a connection of its own.
   */
  readonly pruneInboundIds: (now: number) => Promise<void> | undefined;
  /** When billing last pruned its handled ids in this isolate: at most once an hour across its requests. */
  private readonly billingPrunes: PruneSchedule = { lastAt: undefined };
  private readonly pruneSecurityEvents = securityEventPruner(
    { pruneActivity: (query) => this.onActivityLog((log) => log.pruneActivity(query)) },
    {
      onError: (error) => this.logger.warn("security events: pruning failed", { error: errorFields(error) }),
    },
  );

  constructor(
    private readonly config: Config,
    private readonly url: string,
    private readonly transport: Transport,
    private readonly actors: ActorHost,
    private readonly dependencies?: Dependencies,
    /**
     * The isolate's gateway metrics, where billing's deliveries land (`edgewise_billing_payments_total`) and the read
     * cache counts its lookups (`edgewise_read_cache_*`).
     */
    private readonly metrics?: EdgewiseMetrics,
    /** The isolate's JSON logger (the gateway's, at LOG_LEVEL): pruning and billing relay failures, at warn. */
    private readonly logger: Logger = createLogger({ level: config.LOG_LEVEL }),
  ) {
    metrics?.countBillingPayments();
    const keepMs = config.EDGEWISE_ACTIVITY_RETENTION;
    this.pruneActivity =
      keepMs === undefined
        ? () => undefined
        : activityPruner(
            { pruneActivity: (query) => this.onActivityLog((log) => log.pruneActivity(query)) },
            {
              keepMs,
              onError: (error) =>
                this.logger.warn("activity log: pruning failed", { error: errorFields(error) }),
            },
          );
    let attemptsPrunedAt = Number.NEGATIVE_INFINITY;
    this.pruneWebhookAttempts = (now) => {
      if (!dueAfter(now, attemptsPrunedAt, 3_600_000)) return undefined;
      attemptsPrunedAt = now;
      const before = new Date(now - config.EDGEWISE_WEBHOOK_ATTEMPT_RETENTION);
      return this.onPostgres((sql) => new PostgresWebhookStore(sql).pruneAttempts(before)).then(
        () => undefined,
        (error: unknown) =>
          this.logger.warn("webhook attempts: pruning failed", { error: errorFields(error) }),
      );
    };
    let inboundPrunedAt = Number.NEGATIVE_INFINITY;
    this.pruneInboundIds = (now) => {
      if (!dueAfter(now, inboundPrunedAt, 60_000)) return undefined;
      inboundPrunedAt = now;
      const before = new Date(now - INBOUND_ID_KEEP_MS);
      return this.onPostgres((sql) => new PostgresWebhookStore(sql).pruneInbound(before)).then(
        () => undefined,
        (error: unknown) =>
          this.logger.warn("inbound webhook ids: pruning failed", { error: errorFields(error) }),
      );
    };
    // An isolate-local memory cache is unsafe here: another isolate would keep serving what this one
    // invalidated. Redis over REST (fetch, so fine across requests) or no cache at all.
    const redis = config.UPSTASH_REDIS_REST_URL
      ? upstashRestRedis(Redis, config.UPSTASH_REDIS_REST_URL, config.UPSTASH_REDIS_REST_TOKEN as string)
      : undefined;
    this.readCache = redis
      ? new RedisReadCache(dependencies ? guardedRedis(redis, dependencies) : redis, {
          prefix: `${config.REDIS_KEY_PREFIX}read:`,
          // Each retry runs in some request's background, out of that request's subrequests.
          retriesPerDrain: retriesPerRequest,
        })
      : undefined;
    // The isolate's hits and misses, as a node's /metrics shows its cache's (`edgewise_read_cache_*`).
    if (this.readCache) metrics?.observeReadCache("reads", this.readCache);
  }

  private async findApiKey(id: string) {
    const sql = this.connect();
    try {
      const find = () => new PostgresApiKeyStore(sql).find(id);
      return await (this.dependencies ? this.dependencies.call("postgres", find) : find());
    } finally {
      await sql.end({ timeout: 5 }).catch(() => {});
    }
  }

  private async recordSecurityEvent(event: SecurityEvent): Promise<void> {
    await Promise.all([
      this.pruneSecurityEvents(Date.now()),
      this.onActivityLog((log) => log.recordActivity(securityEventEnvelope(event))),
    ]);
  }

  /** `work` on the activity log over a connection of its own, behind the `postgres` breaker; ended after it. */
  private onActivityLog<T>(work: (log: ActivityLog) => Promise<T>): Promise<T> {
    return this.onPostgres((sql) => work(new ActivityLog(sql)));
  }

  /** `work` on a connection of its own, through the `postgres` breaker; the connection ends after it. */
  private async onPostgres<T>(
    work: (sql: ReturnType<CommerceOnWorkers["connect"]>) => Promise<T>,
  ): Promise<T> {
    const sql = this.connect();
    try {
      const run = () => work(sql);
      return await (this.dependencies ? this.dependencies.call("postgres", run) : run());
    } finally {
      await sql.end({ timeout: 5 }).catch(() => {});
    }
  }

  /** One connection: the commerce code runs on one (it does under the embedded PGlite), each a fresh handshake. */
  private connect() {
    return postgres(this.url, {
      max: 1,
      connect_timeout: 5,
      onnotice: () => {},
      transform: { undefined: null },
    });
  }

  open(ctx: ExecutionContext): CommerceScope {
    // Read-cache advances that failed in an earlier request: its retry timer does not run once that request ended.
    if (this.readCache instanceof RedisReadCache && this.readCache.pendingAdvances() > 0) {
      ctx.waitUntil(this.readCache.retryPending());
    }
    const sql = this.connect();
    const store = new PostgresApiKeyStore(sql);
    // As on a node: behind the `postgres` breaker, and a dead database is 503 `unavailable`, not 500 `internal`;
    // `create` gets the call's signal, so a key whose caller was answered 504 is rolled back.
    const apiKeys = this.dependencies
      ? guardedPort<PostgresApiKeyStore>(
          store,
          ["create", "find", "revoke", "list"],
          this.dependencies,
          "postgres",
          { create: 2 },
        )
      : store;
    const background: Array<Promise<unknown>> = [];
    const drain = async (relay: BillingOutboxRelay) => {
      for (let pass = 0; pass < drainPasses; pass++) {
        const { sent, failed, lastError, failedMessages } = await relay.relayOnce();
        if (lastError !== undefined) {
          this.logger.warn(`billing relay: ${failed} messages will be retried`, {
            ...relayFailureFields(failedMessages ?? []),
            error: errorFields(lastError),
          });
        }
        if (sent === 0) return;
      }
    };
    const system = commerceSystem({
      sql,
      logger: this.logger,
      transport: this.transport,
      actors: this.actors,
      webhookPolicy: { resolve: resolveWithNodeDns, allowPrivate: this.config.WEBHOOKS_ALLOW_PRIVATE },
      // fetch resolves the name again (Workers' fetch cannot be given an address), but a deployed Worker
      // cannot reach your loopback or private networks anyway (post.ts).
      webhookPost: postWithFetch,
      inboundWebhookSecrets: this.config.INBOUND_WEBHOOK_SECRETS,
      processedRetentionMs: this.config.EDGEWISE_INBOX_RETENTION,
      billingPruneSchedule: this.billingPrunes,
      ...(this.metrics ? { onBillingOutcome: (outcome) => this.metrics?.billingPayment(outcome) } : {}),
      ...(this.metrics
        ? { onAdminEvent: (action, outcome) => this.metrics?.adminEvent(action, outcome) }
        : {}),
      ...(this.readCache ? { readCache: this.readCache } : {}),
      ...(this.dependencies ? { dependencies: this.dependencies } : {}),
      // No relay loop runs between requests: relay right after the commit, in the background of the same
      // request; what fails there (or lands after the pool ended) waits for the next commit or the cron.
      afterBillingCommit: (relay) => {
        const relayed = drain(relay).catch((error) =>
          this.logger.warn("billing relay after commit failed", { error: errorFields(error) }),
        );
        background.push(relayed);
        ctx.waitUntil(relayed);
      },
    });
    return {
      system,
      apiKeys,
      ready: async () => {
        if (this.migrated) return;
        const dependencies = this.dependencies;
        try {
          // Behind the `postgres` breaker: while it is open, a new isolate answers 503 at once instead of
          // waiting out the connect timeout on every request.
          // One round trip when every store's schema marker is current: no DDL, no table lock.
          const migrate = async () => {
            const markers = await readSchemaMarkers(sql, [...commerceSchemas, apiKeysSchema]);
            await system.migrate(markers);
            await apiKeys.migrate(markers);
          };
          await (dependencies ? dependencies.call("postgres", migrate) : migrate());
        } catch (error) {
          if (isBreakerOpen(error)) throw error;
          throw new EdgewiseError("unavailable", "Postgres is unavailable; retry", { cause: error });
        }
        this.migrated = true;
      },
      ping: async () => void (await sql`SELECT 1`),
      drainBilling: () => drain(system.relay),
      close: () => {
        ctx.waitUntil(Promise.allSettled(background).then(() => sql.end({ timeout: 5 }).catch(() => {})));
      },
    };
  }
}
