// The reference commerce system on one Postgres pool: its consumers and routes, for the node and the Worker to compose.
import type { Hono } from "hono";
import {
  type AccountSet,
  BillingLedger,
  type BillingOutcome,
  BillingOutboxRelay,
  type PruneSchedule,
} from "../actors/commerce/billing/index.ts";
import {
  ActivityLog,
  OrdersProjector,
  type ReadCache,
  ReadCacheConsumer,
  cachedRead,
} from "../actors/commerce/projections/index.ts";
import {
  describeWebhookTarget,
  type InboundRefusal,
  type PostWebhook,
  PostgresWebhookStore,
  parseInboundSecrets,
  type TargetPolicy,
  type WebhookStore,
  webhooksConsumer,
} from "../actors/commerce/webhooks/index.ts";
import {
  type ActorAddress,
  type ActorHost,
  type ConsumerPart,
  fanInConsumer,
  guardedConsumer,
  type MessageConsumer,
  type Transport,
} from "../actors/runtime/index.ts";
import { describeCustomerTarget } from "../actors/commerce/customer-target.ts";
import { EventSchemas, Participants } from "../actors/commerce/messages.ts";
import { readSideEvents, readSideKey } from "../actors/commerce/subscriptions.ts";
import { type BillingSql, billingSchema } from "../actors/commerce/billing/schema.ts";
import { activityLogSchema } from "../actors/commerce/projections/activity-table.ts";
import { ordersReadSchema } from "../actors/commerce/projections/orders-table.ts";
import { webhooksSchema } from "../actors/commerce/webhooks/postgres-store.ts";
import { createEnvelope } from "../shared/envelope/index.ts";
import {
  readSchemaMarkers,
  type SchemaComponent,
  type SchemaMarkers,
} from "../shared/postgres/schema-marker.ts";
import { type Dependencies, guardedPort } from "../shared/resilience/index.ts";
import {
  boundedSecurityEvents,
  errorFields,
  type Logger,
  type SecurityEvent,
} from "../shared/telemetry/log/index.ts";
import {
  type AdminAction,
  type AdminEvent,
  type AdminEvents,
  adminEventEnvelope,
  adminEvents,
} from "./audit/admin-events.ts";
import type { TargetDescription } from "./console/types.ts";
import type { GatewayEnv } from "./env.ts";
import type { CachedReads } from "./routes/commerce/cache.ts";
import { commerceRoutes } from "./routes/commerce/index.ts";

export interface CommerceSystemOptions {
  /** The pool (postgres.js) every Postgres part shares; never opened or closed here. */
  sql: BillingSql;
  /** How long billing keeps a handled message id for deduplication (a node's EDGEWISE_INBOX_RETENTION); 7 days. */
  processedRetentionMs?: number;
  /** Shared by systems built per request (Workers), so billing prunes handled ids once an hour between them. */
  billingPruneSchedule?: PruneSchedule;
  /** The queue: billing's relay, the webhook fan-out and inbound Restock commands publish through it. */
  transport: Transport;
  /** The actors, wherever they run (in process, on a remote actor host, as Durable Objects). */
  actors: ActorHost;
  /** The SSRF guard's DNS port and WEBHOOKS_ALLOW_PRIVATE. */
  webhookPolicy: TargetPolicy;
  /**
   * The webhook POST: `postWithNodeHttp` on Bun and Deno, which connects only to the addresses the guard
   * approved; `postWithFetch` on Workers, which resolves again (post.ts says why).
   */
  webhookPost: PostWebhook;
  /** INBOUND_WEBHOOK_SECRETS, unparsed; unset refuses every inbound webhook. */
  inboundWebhookSecrets: string | undefined;
  /** The read cache; without one, no `cache` consumer, and every read loads. */
  readCache?: ReadCache;
  /**
   * Runs after a billing delivery committed a reply to the outbox. Default: wakes the relay's loop, which a
   * long-running node starts; where nothing runs between requests (Workers), relay from here instead.
   */
  afterBillingCommit?: (relay: BillingOutboxRelay) => void;
  /** Hears what each billing delivery did once committed: `edgewise_billing_payments_total`. */
  onBillingOutcome?: (outcome: BillingOutcome) => void;
  /**
   * The breakers: Postgres work (billing, projections, the routes' reads) goes through `postgres`, each webhook
   * POST through `webhook:<host>`. Without it, calls are unguarded.
   */
  dependencies?: Dependencies;
  /** Hears whether each admin event was recorded: `edgewise_admin_events_total{action,outcome}`. */
  onAdminEvent?: (action: AdminAction, outcome: "recorded" | "failed") => void;
  log?: (line: string) => void;
  /** The structured logger: billing relay failures go here at warn when given (else to `log`). */
  logger?: Logger;
}

/** The stores `CommerceSystem.migrate` makes: give them to readSchemaMarkers for the markers it is given. */
export const commerceSchemas: readonly SchemaComponent[] = [
  billingSchema,
  ordersReadSchema,
  activityLogSchema,
  webhooksSchema,
];

export interface CommerceSystem {
  billing: BillingLedger;
  relay: BillingOutboxRelay;
  projector: OrdersProjector;
  activity: ActivityLog;
  /**
   * The outbound webhooks' attempt log, for its retention (EDGEWISE_WEBHOOK_ATTEMPT_RETENTION), and the inbound ids
   * seen, for theirs (`INBOUND_ID_KEEP_MS`).
   */
  webhookRetention: Pick<WebhookStore, "pruneAttempts" | "pruneInbound">;
  /** The queue consumers that are not actors: billing, projector, activity, webhooks, and cache when given. */
  consumers: MessageConsumer[];
  routes: Hono<GatewayEnv>;
  /**
   * Creates the tables if missing, one part after another (the embedded PGlite serves one connection); parts whose
   * schema marker is current run no DDL. `markers`: the start's readSchemaMarkers (asked about `commerceSchemas`),
   * else read here, once.
   */
  migrate(markers?: SchemaMarkers): Promise<void>;
  /**
   * Appends a security event to the activity log as the CloudEvent `security.<kind>` (through the `postgres`
   * breaker). Give it to `boundedSecurityEvents`, which caps the rate and keeps it off the request path.
   */
  recordSecurityEvent(event: SecurityEvent): Promise<void>;
  /**
   * Records admin actions in the activity log as `admin.<action>`, awaited by the route before it answers. Grants are
   * written in the action's own transaction, so the grant is kept only with its record (a record that cannot be
   * written is the request's 503, nothing changed): `admin.account_set` (the ledger's), `admin.api_key_created` (the
   * API key store's, through `writeIn`: give this to the app only with an API key store on this system's pool, as
   * every host does), `admin.webhook_subscription_created` (the webhook store's). Revocations
   * (`admin.api_key_revoked`, `admin.webhook_secret_rotated`, `admin.webhook_subscription_deleted`) never wait on
   * their record, and the others (stock, dead letters, backups, console sign-ins: not in this database) cannot: they
   * are written after the action, through the `postgres` breaker; a failure there is logged at warn and counted, and
   * the action's answer stands. The commerce routes use it; give it to the app (API keys, console) and the backup
   * route too.
   */
  adminEvents: AdminEvents;
  /**
   * A message target as the console's dead-letter table shows it: `webhooks/<subscriptionId>` as the subscription
   * and its URL (through the `postgres` breaker), `billing/…` and `loyalty/…` as the customer (decoded from the
   * key); undefined for the others.
   */
  describeTarget(target: ActorAddress): Promise<TargetDescription | undefined>;
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
    advance: async (key, version) => {
      try {
        await cache.advance(key, version);
      } catch {
        // Counted by the cache; the write's event advances the key when the cache is back.
      }
    },
  };
}

/** A gateway's security event as the activity log keeps it: the CloudEvent `security.<kind>`. */
export function securityEventEnvelope(event: SecurityEvent) {
  return createEnvelope({
    type: `security.${event.kind}`,
    source: "edgewise://gateway",
    subject: event.subject.slice(0, 1024),
    data: event.data,
  });
}

/**
 * Versions before the read side took one delivery per event (`readside/events`) sent each event to every part at
 * its own address: `projector/orders`, `activity/all`, `cache/reads` (`webhooks/outbound` is still served). A node
 * upgraded from one may find such deliveries in its queue or its actors' outboxes; each is handed to its part (as
 * the read side would: schema first, that key only) instead of being refused as an unknown type and dead-lettered,
 * which lost them from the activity log and the read model. The parts are idempotent on the event id. Without a
 * read cache, a delivery to `cache/reads` has nothing to refresh and is taken as done.
 */
function legacyReadSideConsumers(parts: readonly ConsumerPart[]): MessageConsumer[] {
  const legacy = [
    { type: Participants.activity, key: "all" },
    { type: Participants.projector, key: "orders" },
    { type: Participants.cache, key: "reads" },
  ];
  return legacy.map(({ type, key }) => {
    const part = parts.find((candidate) => candidate.consumer.type === type);
    if (part) return fanInConsumer(type, [part], { schemas: EventSchemas, key });
    const nothing: MessageConsumer = { type, receive: async () => ({ duplicate: false, reply: null }) };
    return fanInConsumer(type, [{ consumer: nothing, key, events: readSideEvents.cache }], {
      schemas: EventSchemas,
      key,
    });
  });
}

/** Builds the parts; no I/O until they are used (so a Worker may build them per request). */
export function commerceSystem(options: CommerceSystemOptions): CommerceSystem {
  const { sql, transport, actors, readCache } = options;
  const log = options.log ?? ((line: string) => console.log(`[edgewise] ${line}`));
  const relay = new BillingOutboxRelay(sql, transport, {
    // `what` names the billing relay already ("billing relay: 3 messages will be retried").
    onError: (what, error, fields) =>
      options.logger
        ? options.logger.warn(what, { ...fields, error: errorFields(error) })
        : log(
            `${what} (${error instanceof Error ? error.message : "error"}${fields ? `; ${JSON.stringify(fields)}` : ""})`,
          ),
  });
  const afterCommit = options.afterBillingCommit ?? ((outbox: BillingOutboxRelay) => outbox.notify());
  const billing = new BillingLedger(sql, {
    onCommitted: () => afterCommit(relay),
    ...(options.onBillingOutcome ? { onOutcome: options.onBillingOutcome } : {}),
    ...(options.processedRetentionMs ? { processedRetentionMs: options.processedRetentionMs } : {}),
    ...(options.billingPruneSchedule ? { pruneSchedule: options.billingPruneSchedule } : {}),
    onPruneError: (error) =>
      options.logger
        ? options.logger.warn("billing: pruning handled message ids failed", { error: errorFields(error) })
        : log(
            `billing: pruning handled message ids failed (${error instanceof Error ? error.message : "error"})`,
          ),
  });
  const projector = new OrdersProjector(sql);
  const activity = new ActivityLog(sql);
  const postgresWebhookStore = new PostgresWebhookStore(sql);
  const policy = options.webhookPolicy;
  const dependencies = options.dependencies;
  // Subscriptions, attempts and inbound ids live in Postgres too: behind its breaker like every other query.
  // `createSubscription` gets the call's signal: a subscription whose caller was answered 504 is rolled back.
  const webhookStore: WebhookStore = dependencies
    ? guardedPort<WebhookStore>(
        postgresWebhookStore,
        [
          "createSubscription",
          "deleteSubscription",
          "getSubscription",
          "listSubscriptions",
          "pageSubscriptions",
          "rotateSecret",
          "recordAttempt",
          "listAttempts",
          "pageAttempts",
          "wasDelivered",
          "recordInbound",
          "hasSeenInbound",
          "pruneInbound",
        ],
        dependencies,
        "postgres",
        { createSubscription: 2 },
      )
    : postgresWebhookStore;
  const webhooks = webhooksConsumer({
    store: webhookStore,
    transport,
    ...policy,
    post: options.webhookPost,
    ...(dependencies ? { guard: (host, post) => dependencies.call(`webhook:${host}`, post) } : {}),
  });
  // Postgres work behind the `postgres` breaker: while it is open, deliveries fail fast with 503 (the broker
  // retries later) and reads answer 503 at once instead of waiting on a dead database.
  const viaPostgres = (consumer: MessageConsumer) =>
    dependencies ? guardedConsumer(consumer, dependencies, "postgres") : consumer;
  const pg = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    dependencies ? (...args: A) => dependencies.call("postgres", () => fn(...args)) : fn;

  // A refused inbound webhook is a security event: who tried what, never the signature or the secret. Anyone can
  // send one, so they are recorded at a bounded rate (10 a second per outcome), as the gateway's own are.
  const refusals = boundedSecurityEvents({
    record: (event) =>
      activity.recordActivity(
        createEnvelope({
          type: `security.${event.kind}`,
          source: `edgewise://webhooks/inbound/${event.subject}`,
          data: event.data,
        }),
      ),
  });
  const recordRefusal = async (refusal: InboundRefusal, outcome: "refused" | "replayed") => {
    const webhookId = refusal.webhookId?.slice(0, 256);
    refusals.emit({
      kind: `webhook_${outcome}`,
      subject: refusal.source,
      data: { ...refusal, ...(webhookId !== undefined ? { webhookId } : {}) },
    });
    // Recorded before the answer when within the rate, so the caller's next read of the activity log sees it.
    await refusals.settled();
  };

  const admin = adminEvents({
    write: pg((event) => activity.recordActivity(adminEventEnvelope(event))),
    // On a store's transaction of this pool: the webhook store here, and the API key store each host builds on the
    // same pool (deploy/node.ts, the Worker's per-request connection), so a grant and its record commit together.
    writeIn: (tx, event) => activity.recordActivityIn(tx, adminEventEnvelope(event)),
    ...(options.onAdminEvent ? { onOutcome: options.onAdminEvent } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });

  const readSideParts: ConsumerPart[] = [
    { consumer: viaPostgres(activity), key: "all", events: readSideEvents.activity },
    { consumer: viaPostgres(projector), key: "orders", events: readSideEvents.projector },
    ...(readCache
      ? [{ consumer: new ReadCacheConsumer(readCache), key: "reads", events: readSideEvents.cache }]
      : []),
  ];

  return {
    billing,
    relay,
    projector,
    activity,
    webhookRetention: postgresWebhookStore,
    consumers: [
      viaPostgres(billing),
      // Deliveries to one subscription (`webhooks/{id}`) come here; the fan-out of events goes through the read side.
      webhooks,
      fanInConsumer(
        Participants.readSide,
        [...readSideParts, { consumer: webhooks, key: "outbound", events: readSideEvents.webhooks }],
        // A malformed event is refused before any part runs, so the activity log never keeps half of one.
        { schemas: EventSchemas, key: readSideKey },
      ),
      ...legacyReadSideConsumers(readSideParts),
    ],
    adminEvents: admin,
    routes: commerceRoutes({
      actors,
      adminEvents: admin,
      ledger: {
        // The admin event goes into the ledger's transaction, on the same pool: the activity log is a table of the
        // same database on every host (one pool per node, one connection per request on Workers). The `postgres`
        // timeout's signal (with the request's) goes in too: a set whose caller was answered 504 is rolled back.
        putAccount: (
          customerId: string,
          cents: number,
          audit?: (set: AccountSet) => AdminEvent,
          signal?: AbortSignal,
        ) => {
          const put = (deadline: AbortSignal | undefined) =>
            billing.putAccount(
              customerId,
              cents,
              audit && ((tx, set) => activity.recordActivityIn(tx, adminEventEnvelope(audit(set)))),
              deadline,
            );
          return dependencies ? dependencies.call("postgres", put, signal) : put(signal);
        },
        getAccount: pg((customerId: string) => billing.getAccount(customerId)),
      },
      readModel: { listOrders: pg((query) => projector.listOrders(query)) },
      activity: { listActivity: pg((query) => activity.listActivity(query)) },
      ...(readCache ? { cache: routeCache(readCache) } : {}),
      webhooks: {
        store: webhookStore,
        policy,
        inboundSecrets: parseInboundSecrets(options.inboundWebhookSecrets),
        transport,
        onRefusal: recordRefusal,
      },
    }),
    async recordSecurityEvent(event) {
      await pg(() => activity.recordActivity(securityEventEnvelope(event)))();
    },
    describeTarget: async (target) =>
      describeCustomerTarget(target) ?? describeWebhookTarget(webhookStore, target),
    async migrate(markers) {
      const known = markers ?? (await readSchemaMarkers(sql, commerceSchemas));
      await billing.migrate(known);
      await projector.migrate(known);
      await activity.migrate(known);
      await postgresWebhookStore.migrate(known);
    },
  };
}
