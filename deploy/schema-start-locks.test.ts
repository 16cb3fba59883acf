// A start whose Postgres stores are all migrated runs no DDL: it neither waits for their writers nor holds them up.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import {
  TEST_DATABASE_URL,
  type TestDatabase,
  testDatabase,
} from "../actors/commerce/projections/testing.ts";
import { readSchemaMarkers } from "../shared/postgres/schema-marker.ts";
import type { Sql } from "./local/broker/db.ts";
import { startStores } from "./schema-start-stores.ts";

/** Every table of every store the node and a Workers isolate migrate at start, and the embedded broker's. */
const tables = [
  "billing_accounts",
  "billing_transactions",
  "billing_entries",
  "billing_processed_messages",
  "billing_outbox",
  "orders_read",
  "activity_log",
  "webhook_subscriptions",
  "webhook_deliveries",
  "webhook_inbound_seen",
  "edgewise_api_keys",
  "qstash_messages",
  "qstash_dlq",
  "qstash_events",
  "qstash_queues",
  "qstash_dedup",
];

let db: TestDatabase;
let schema: string;
beforeAll(async () => {
  db = await testDatabase("start_locks");
  schema = (await db.sql<{ schema: string }[]>`SELECT current_schema() AS schema`)[0]?.schema as string;
});
afterAll(() => db?.drop());

const pool = (options: { lockTimeoutMs?: number } = {}) =>
  postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: {
      search_path: schema,
      ...(options.lockTimeoutMs ? { lock_timeout: options.lockTimeoutMs } : {}),
    },
  }) as unknown as Sql;

test("two nodes starting at once on an empty schema both succeed, and it ends complete and marked", async () => {
  const [first, second] = [pool(), pool()];
  try {
    await Promise.all([startStores(first), startStores(second)]);
  } finally {
    await first.end();
    await second.end();
  }
  const present = await db.sql<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`;
  expect(present.map((t) => t.name).sort()).toEqual([...tables, "edgewise_schema"].sort());
  expect([...(await readSchemaMarkers(db.sql)).keys()].sort()).toEqual(
    ["activity_log", "api_keys", "billing", "broker", "orders_read", "webhooks"].sort(),
  );
});

test("a second start while writers hold every store's tables completes without waiting for a lock", async () => {
  await startStores(db.sql);
  // Writers mid-transaction: each holds ROW EXCLUSIVE on its table (an INSERT or UPDATE does) until it commits.
  const writer = pool();
  // A node starting meanwhile, or a new Worker isolate: it gives up on any lock it waits 10 s for. Long, so that the
  // bound below (half of it) tells a start that waited for a lock from one a loaded machine or Postgres made slow.
  const starting = pool({ lockTimeoutMs: 10_000 });
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked: () => void = () => {};
  const lockedNow = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const writing = writer.begin(async (tx) => {
    await tx.unsafe(`LOCK TABLE ${tables.join(", ")} IN ROW EXCLUSIVE MODE`);
    locked();
    await held;
  });
  try {
    await lockedNow;
    // CREATE INDEX IF NOT EXISTS wants SHARE and CREATE OR REPLACE TRIGGER SHARE ROW EXCLUSIVE, even when nothing
    // changes: both conflict with ROW EXCLUSIVE, so lock_timeout ended this start before the markers.
    const started = performance.now();
    await startStores(starting);
    expect(performance.now() - started).toBeLessThan(5_000);
  } finally {
    release();
    await writing;
    await writer.end();
    await starting.end();
  }
});
