// Test support: what a node start migrates in Postgres (every store's schema, then the broker's), markers read once.
import { BillingLedger } from "../actors/commerce/billing/index.ts";
import { ActivityLog } from "../actors/commerce/projections/activity-log.ts";
import { OrdersProjector } from "../actors/commerce/projections/orders-projector.ts";
import { PostgresWebhookStore } from "../actors/commerce/webhooks/postgres-store.ts";
import { PostgresApiKeyStore } from "../edge/middleware/auth/postgres-api-key-store.ts";
import { readSchemaMarkers } from "../shared/postgres/schema-marker.ts";
import { migrate as migrateBroker, type Sql } from "./local/broker/db.ts";

/** What a node start runs (deploy/node.ts, deploy/commerce.ts, the broker), with the markers read once. */
export async function startStores(sql: Sql): Promise<void> {
  const markers = await readSchemaMarkers(sql);
  await new BillingLedger(sql).migrate(markers);
  await new OrdersProjector(sql).migrate(markers);
  await new ActivityLog(sql).migrate(markers);
  await new PostgresWebhookStore(sql).migrate(markers);
  await new PostgresApiKeyStore(sql).migrate(markers);
  await migrateBroker(sql, markers);
}
