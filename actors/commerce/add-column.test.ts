// Migrations that add columns: a second start while a long reader holds its tables does not wait for that reader.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { OrdersProjector } from "./projections/orders-projector.ts";
import { TEST_DATABASE_URL, type TestDatabase, testDatabase } from "./projections/testing.ts";
import { PostgresWebhookStore } from "./webhooks/postgres-store.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase("add_column");
  await new OrdersProjector(db.sql).migrate();
  await new PostgresWebhookStore(db.sql).migrate();
});
afterAll(() => db?.drop());

test("migrating again while a reader holds orders_read and webhook_subscriptions takes no lock that waits for it", async () => {
  const schema = (await db.sql<{ schema: string }[]>`SELECT current_schema() AS schema`)[0]?.schema as string;
  // A long reader (a pg_dump, a slow search): its transaction holds ACCESS SHARE on both tables until it ends.
  const reader = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema },
  });
  // A node starting meanwhile, or a new Worker isolate: its migration gives up on any lock it waits 1 s for.
  const starting = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema, lock_timeout: 1000 },
  });
  try {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reading: () => void = () => {};
    const readingNow = new Promise<void>((resolve) => {
      reading = resolve;
    });
    const readerDone = reader.begin(async (tx) => {
      await tx`SELECT count(*) FROM orders_read`;
      await tx`SELECT count(*) FROM webhook_subscriptions`;
      reading();
      await held;
    });
    await readingNow;
    // Markers gone, as on the first start of a version whose DDL changed: the whole DDL runs again.
    await db.sql`DELETE FROM edgewise_schema`;
    try {
      // ADD COLUMN IF NOT EXISTS took ACCESS EXCLUSIVE even with the column there: lock_timeout ended these.
      await new OrdersProjector(starting).migrate();
      await new PostgresWebhookStore(starting).migrate();
    } finally {
      release();
      await readerDone;
    }
  } finally {
    await reader.end();
    await starting.end();
  }
  // And a table made before a column (by a version before schema markers) still gets it.
  await db.sql`ALTER TABLE webhook_subscriptions DROP COLUMN previous_secret_expires_at`;
  await db.sql`DELETE FROM edgewise_schema WHERE component = 'webhooks'`;
  await new PostgresWebhookStore(db.sql).migrate();
  const columns = await db.sql<{ name: string }[]>`
    SELECT column_name AS name FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'webhook_subscriptions'`;
  expect(columns.map((c) => c.name)).toContain("previous_secret_expires_at");
});
