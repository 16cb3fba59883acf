// The reference commerce system on a self-hosted node: billing, projections, read cache, webhooks, and the API routes.
import {
  MemoryReadCache,
  type ReadCache,
  RedisReadCache,
  securityEventPruner,
} from "../actors/commerce/projections/index.ts";
import {
  INBOUND_ID_KEEP_MS,
  parseInboundSecrets,
  type PostWebhook,
  type Resolve,
} from "../actors/commerce/webhooks/index.ts";
import { commerceSchemas, commerceSystem } from "../edge/commerce.ts";
import type { Config } from "../shared/config/index.ts";
import { EdgewiseError } from "../shared/errors/index.ts";
import { errorFields } from "../shared/telemetry/log/index.ts";
import { ActivityRetention } from "./activity-retention.ts";
import { Retention } from "./retention.ts";
import type { ExtensionContext, NodeExtender, NodeExtension } from "./node.ts";

export { routeCache } from "../edge/commerce.ts";

export interface CommerceOptions {
  /** Resolves webhook hosts for the SSRF guard (node:dns on Bun and Deno). */
  resolve: Resolve;
  /** Sends webhooks to the addresses the guard approved, never to a second lookup's (node:http on Bun and Deno). */
  post: PostWebhook;
  /**
   * The read cache. Default: Redis when the node has it (REDIS_URL or Upstash REST), else in-process memory on a
   * node that hosts the actors, else none.
   */
  readCache?: ReadCache;
}

/**
 * Said at every start with WEBHOOKS_ALLOW_PRIVATE=1: the setting is for development and tests, and nothing else tells
 * an operator who left it on that an admin's subscription URL may now reach the node's own network.
 */
export const allowPrivateWarning =
  "WEBHOOKS_ALLOW_PRIVATE=1: outbound webhooks may reach loopback, private and link-local addresses (this node's own ports, the internal network, a cloud metadata service at 169.254.169.254); for development and tests only, unset it in production (SECURITY.md, 'Outbound webhooks: SSRF')";

/** The extension for startNode: everything the commerce API needs beyond its actors (wired in edge/commerce.ts). */
export function commerce(options: CommerceOptions): NodeExtender {
  const extend = async (context: ExtensionContext): Promise<NodeExtension> => {
    const { sql, transport, config, actors, log, logger } = context;
    if (config.WEBHOOKS_ALLOW_PRIVATE) logger.warn(allowPrivateWarning);
    // A node without Redis caches in its own memory only if it hosts the actors: the consumer that invalidates the
    // cache runs where the actors' events are delivered, so a gateway-only node's memory would never be told.
    const readCache =
      options.readCache ??
      (context.redis
        ? new RedisReadCache(context.redis, { prefix: `${config.REDIS_KEY_PREFIX}read:` })
        : context.hostsActors
          ? new MemoryReadCache()
          : undefined);
    const system = commerceSystem({
      sql,
      transport,
      actors,
      webhookPolicy: { resolve: options.resolve, allowPrivate: config.WEBHOOKS_ALLOW_PRIVATE },
      webhookPost: options.post,
      inboundWebhookSecrets: config.INBOUND_WEBHOOK_SECRETS,
      processedRetentionMs: config.EDGEWISE_INBOX_RETENTION,
      readCache,
      dependencies: context.dependencies,
      // Billing is delivered where the actors are; the counter is bumped only after its transaction commits.
      onBillingOutcome: (outcome) => context.metrics.billingPayment(outcome),
      onAdminEvent: (action, outcome) => context.metrics.adminEvent(action, outcome),
      log,
      logger,
    });
    await system.migrate(context.schemaMarkers);
    if (readCache) context.metrics.observeReadCache("reads", readCache);
    // Where billing's relay runs: a reply stuck in its outbox would otherwise show in no gauge.
    if (context.hostsActors) {
      context.metrics.observeBillingOutbox(() => system.relay.backlog());
      context.metrics.countBillingPayments();
    }
    // Security events are what anyone can make the node write: they leave the activity log after their retention.
    const pruneSecurityEvents = securityEventPruner(system.activity, {
      onError: (error) => logger.warn("security events: pruning failed", { error: errorFields(error) }),
    });

    // EDGEWISE_ACTIVITY_RETENTION, when set: older entries leave the activity log (unset, it keeps everything).
    const activityRetention =
      config.EDGEWISE_ACTIVITY_RETENTION === undefined
        ? undefined
        : new ActivityRetention(system.activity, {
            keepMs: config.EDGEWISE_ACTIVITY_RETENTION,
            onError: (error) => logger.warn("activity log: pruning failed", { error: errorFields(error) }),
          });

    // EDGEWISE_WEBHOOK_ATTEMPT_RETENTION: the attempt log grows by a row per attempt per subscription otherwise.
    const webhookAttemptRetention = new Retention(
      (olderThan) => system.webhookRetention.pruneAttempts(new Date(olderThan)),
      {
        keepMs: config.EDGEWISE_WEBHOOK_ATTEMPT_RETENTION,
        onError: (error) => logger.warn("webhook attempts: pruning failed", { error: errorFields(error) }),
      },
    );

    // Inbound webhook ids are forgotten after an accepted webhook as well (inboundPruner), but while none comes
    // they would stay: this forgets them at start and every minute, whatever arrives.
    const inboundIdRetention = new Retention(
      (olderThan) => system.webhookRetention.pruneInbound(new Date(olderThan)),
      {
        keepMs: INBOUND_ID_KEEP_MS,
        everyMs: 60_000,
        onError: (error) => logger.warn("inbound webhook ids: pruning failed", { error: errorFields(error) }),
      },
    );

    return {
      consumers: context.hostsActors ? system.consumers : [],
      routes: [system.routes],
      start: () => {
        // Billing runs where the actors do (its consumer is delivered there), and so does the relay of its outbox:
        // a gateway polling the same table would only compete for its rows.
        if (context.hostsActors) void system.relay.start();
        activityRetention?.start();
        webhookAttemptRetention.start();
        inboundIdRetention.start();
      },
      stop: async () => {
        await activityRetention?.stop();
        await webhookAttemptRetention.stop();
        await inboundIdRetention.stop();
        await system.relay.stop();
        // Stops retrying advances that failed while Redis was away (the queue retries their events anyway).
        if (readCache instanceof RedisReadCache) readCache.close();
      },
      securityEvents: (event) => {
        pruneSecurityEvents(Date.now());
        return system.recordSecurityEvent(event);
      },
      adminEvents: system.adminEvents,
      activity: system.activity,
      describeTarget: system.describeTarget,
    };
  };
  return Object.assign(extend, { checkConfig: checkCommerceConfig, schemas: commerceSchemas });
}

/** What commerce refuses from its settings alone: startNode asks before it makes anything (see NodeExtender). */
function checkCommerceConfig(config: Config): void {
  // A gateway's actors live on its actor host (node-actors.ts): it hosts none of its own.
  if (config.ACTOR_HOST_URL !== undefined) requireSharedWithActorHost(config);
  parseInboundSecrets(config.INBOUND_WEBHOOK_SECRETS);
}

/**
 * A gateway serves the commerce API on its actor host's data: billing, the read side and the activity log in the
 * same Postgres, and the inbound webhooks' restocks published to the same queue, which delivers them to the actor
 * host. Without them its reads would come from a database of its own and its restocks would never arrive.
 */
function requireSharedWithActorHost(config: Config): void {
  const missing = (["DATABASE_URL", "QSTASH_URL"] as const).filter((name) => config[name] === undefined);
  if (missing.length === 0) return;
  throw new EdgewiseError(
    "config.invalid",
    `Invalid configuration:\n  a gateway (ACTOR_HOST_URL) serves commerce on its actor host's database and queue: set ${missing.join(" and ")} as the actor host has them`,
    { issues: missing.map((name) => ({ path: name, message: "required on a gateway (ACTOR_HOST_URL)" })) },
  );
}
