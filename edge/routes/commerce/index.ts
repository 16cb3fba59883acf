// The commerce API of API.md, assembled: inventory, accounts, orders, loyalty, activity and webhooks.
import { Hono } from "hono";
import type { ActorHost } from "../../../actors/runtime/index.ts";
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
}

export function commerceRoutes(options: CommerceRoutesOptions): Hono<GatewayEnv> {
  const cache = options.cache ? { cache: options.cache } : {};
  const app = new Hono<GatewayEnv>();
  app.route("/", inventoryRoutes({ actors: options.actors, ...cache }));
  app.route("/", accountRoutes(options.ledger));
  app.route("/", orderRoutes({ actors: options.actors, readModel: options.readModel, ...cache }));
  app.route("/", loyaltyRoutes(options.actors));
  app.route("/", activityRoutes(options.activity));
  app.route("/", webhookRoutes(options.webhooks));
  return app;
}

export type { CachedReads } from "./cache.ts";
