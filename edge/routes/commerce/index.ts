// The commerce API of API.md, assembled: inventory, accounts, orders, loyalty, activity and webhooks.
import { Hono } from "hono";
import type { ActorHost } from "../../../actors/runtime/index.ts";
import type { AdminEvents } from "../../audit/admin-events.ts";
import type { GatewayEnv } from "../../env.ts";
import { type AccountsLedger, accountRoutes } from "./accounts.ts";
import { type ActivityLog, activityRoutes } from "./activity.ts";
import type { CachedReads } from "./cache.ts";
import { inventoryRoutes } from "./inventory.ts";
import { loyaltyRoutes } from "./loyalty.ts";
import { type OrdersReadModel, orderRoutes } from "./orders.ts";
import { type WebhookRoutesOptions, webhookRoutes } from "./webhooks.ts";

export interface CommerceRoutesOptions {
  actors: ActorHost;
  ledger: AccountsLedger;
  readModel: OrdersReadModel;
  activity: ActivityLog;
  cache?: CachedReads;
  webhooks: WebhookRoutesOptions;
  /** Records balances and stock set and webhook subscriptions changed as `admin.*` in the activity log. */
  adminEvents?: AdminEvents;
}

export function commerceRoutes(options: CommerceRoutesOptions): Hono<GatewayEnv> {
  const cache = options.cache ? { cache: options.cache } : {};
  const app = new Hono<GatewayEnv>();
  const adminEvents = options.adminEvents;
  app.route("/", inventoryRoutes({ actors: options.actors, ...cache, adminEvents }));
  app.route("/", accountRoutes(options.ledger, adminEvents));
  app.route("/", orderRoutes({ actors: options.actors, readModel: options.readModel, ...cache }));
  app.route("/", loyaltyRoutes(options.actors));
  app.route("/", activityRoutes(options.activity));
  app.route("/", webhookRoutes({ ...options.webhooks, adminEvents }));
  return app;
}

export type { CachedReads } from "./cache.ts";
