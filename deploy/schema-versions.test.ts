// Every Postgres store's DDL is pinned to its schema version: changing the DDL without raising the version fails here.
import { expect, test } from "bun:test";
import { billingSchema } from "../actors/commerce/billing/schema.ts";
import { activityLogSchema } from "../actors/commerce/projections/activity-table.ts";
import { ordersReadSchema } from "../actors/commerce/projections/orders-table.ts";
import { webhooksSchema } from "../actors/commerce/webhooks/postgres-store.ts";
import { apiKeysSchema } from "../edge/middleware/auth/postgres-api-key-store.ts";
import {
  type SchemaComponent,
  schemaFingerprint,
  schemaRelations,
} from "../shared/postgres/schema-marker.ts";
import { brokerSchema } from "./local/broker/db.ts";

const components: SchemaComponent[] = [
  billingSchema,
  ordersReadSchema,
  activityLogSchema,
  webhooksSchema,
  apiKeysSchema,
  brokerSchema,
];

/**
 * The first 12 hex digits of each version's DDL fingerprint. A changed DDL must raise its component's version
 * (so a node of an older version, seeing a higher one in the marker, leaves the newer schema alone): add the new
 * version's line here. The DDL stays additive (nothing dropped or narrowed), since older nodes keep running on it.
 */
const pinned: Record<string, Record<number, string>> = {
  billing: { 1: "5d5c58685ba6", 2: "02a8d2340bc5" },
  orders_read: { 1: "71dcfb49dab8", 2: "5f53c7d65ffe", 3: "e89276929c15", 4: "6059c0d00202" },
  activity_log: { 1: "069e4df9bdd6", 2: "1d681227d707", 3: "7a5c02efa6de" },
  webhooks: { 1: "b2f57953623f", 2: "ba703d6953fe" },
  api_keys: { 1: "b15426a3b78b" },
  broker: { 1: "6cc442d735c6", 2: "7e508fd3cf65", 3: "d2529b53baf1" },
};

test("each component's DDL is the one pinned for its version", async () => {
  const actual: Record<string, string> = {};
  const expected: Record<string, string> = {};
  for (const c of components) {
    actual[`${c.name} v${c.version}`] = (await schemaFingerprint(c)).slice(0, 12);
    expected[`${c.name} v${c.version}`] = pinned[c.name]?.[c.version] ?? "(not pinned)";
  }
  expect(actual).toEqual(expected);
});

test("components have their own names and advisory locks", () => {
  expect(new Set(components.map((c) => c.name)).size).toBe(components.length);
  expect(new Set(components.map((c) => c.lock)).size).toBe(components.length);
});

test("each component names the tables and indexes its DDL creates (a marker is current only while they are there)", () => {
  const tables = Object.fromEntries(
    components.map((c) => [c.name, schemaRelations(c).filter((name) => !indexes.has(name))]),
  );
  expect(tables).toEqual({
    billing: [
      "billing_accounts",
      "billing_transactions",
      "billing_entries",
      "billing_processed_messages",
      "billing_outbox",
    ],
    orders_read: ["orders_read"],
    activity_log: ["activity_log"],
    webhooks: ["webhook_subscriptions", "webhook_deliveries", "webhook_inbound_seen"],
    api_keys: ["edgewise_api_keys"],
    broker: ["qstash_messages", "qstash_dlq", "qstash_events", "qstash_queues", "qstash_dedup"],
  });
  for (const c of components) expect(schemaRelations(c).length).toBeGreaterThan(tables[c.name]?.length ?? 0);
});

/** Every index the components' DDL creates, by name. */
const indexes = new Set(
  components.flatMap((c) =>
    [...c.ddl.matchAll(/CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)/gi)].map(
      (m) => m[1] as string,
    ),
  ),
);
