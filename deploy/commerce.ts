// The reference commerce system on a self-hosted node: billing, projections, read cache, webhooks, and the API routes.
import { BillingLedger, BillingOutboxRelay } from "../actors/commerce/billing/index.ts";
import {
  ActivityLog,
  MemoryReadCache,
  OrdersProjector,
  type ReadCache,
  ReadCacheConsumer,
  RedisReadCache,
  cachedRead,
} from "../actors/commerce/projections/index.ts";
import {
  type InboundRefusal,
  PostgresWebhookStore,
  parseInboundSecrets,
  type Resolve,
  webhooksConsumer,
} from "../actors/commerce/webhooks/index.ts";
import { createEnvelope } from "../shared/envelope/index.ts";
import type { CachedReads } from "../edge/routes/commerce/cache.ts";
import { commerceRoutes } from "../edge/routes/commerce/index.ts";
import type { ExtensionContext, NodeExtension } from "./node.ts";

export interface CommerceOptions {
  /** Resolves webhook hosts for the SSRF guard (node:dns on Bun and Deno). */
  resolve: Resolve;
  /** The read cache. Default: Redis when the node has it (REDIS_URL or Upstash REST), else in-process memory. */
  readCache?: ReadCache;
}

/** Adapts the projections' read cache to what the routes call. */
export function routeCache(cache: ReadCache): CachedReads {
  return {
    read: async (key, load, options) => {
      const read = await cachedRead(
        cache,
        key,
        load,
        options?.cacheable ? { cacheable: options.cacheable } : {},
      );
      return { value: read.value, hit: read.hit };
    },
  };
}

/** The extension for startNode: everything the commerce API needs beyond its actors. */
export function commerce(options: CommerceOptions) {
  return async (context: ExtensionContext): Promise<NodeExtension> => {
    const { sql, transport, config, actors, log } = context;
    const relay = new BillingOutboxRelay(sql, transport, {
      onError: (what, error) =>
        log(`billing relay: ${what} (${error instanceof Error ? error.message : "error"})`),
    });
    const billing = new BillingLedger(sql, { onCommitted: () => relay.notify() });
    const projector = new OrdersProjector(sql);
    const activity = new ActivityLog(sql);
    const webhookStore = new PostgresWebhookStore(sql);
    // One at a time: the embedded PGlite serves a single connection.
    await billing.migrate();
    await projector.migrate();
    await activity.migrate();
    await webhookStore.migrate();

    const readCache =
      options.readCache ?? (context.redis ? new RedisReadCache(context.redis) : new MemoryReadCache());
    const policy = { resolve: options.resolve, allowPrivate: config.WEBHOOKS_ALLOW_PRIVATE };
    const recordRefusal = async (refusal: InboundRefusal, outcome: "refused" | "replayed") => {
      // A security event: who tried what, never the signature or the secret.
      await activity.recordActivity(
        createEnvelope({
          type: `security.webhook_${outcome}`,
          source: `edgewise://webhooks/inbound/${refusal.source}`,
          data: { ...refusal },
        }),
      );
    };

    return {
      consumers: context.hostsActors
        ? [
            billing,
            projector,
            activity,
            new ReadCacheConsumer(readCache),
            webhooksConsumer({ store: webhookStore, transport, ...policy }),
          ]
        : [],
      routes: [
        commerceRoutes({
          actors,
          ledger: billing,
          readModel: projector,
          activity,
          cache: routeCache(readCache),
          webhooks: {
            store: webhookStore,
            policy,
            inboundSecrets: parseInboundSecrets(config.INBOUND_WEBHOOK_SECRETS),
            transport,
            onRefusal: recordRefusal,
          },
        }),
      ],
      start: () => void relay.start(),
      stop: () => relay.stop(),
    };
  };
}
