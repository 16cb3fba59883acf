// GET /v1/orders?customerId=…&status=… reads the customer's orders of that status by index, not all of theirs.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { listOrders } from "./orders-query.ts";
import { migrateOrdersRead } from "./orders-table.ts";
import { type PlanProbe, planProbe } from "./plan-probe.ts";
import { type TestDatabase, testDatabase } from "./testing.ts";

/** A regular customer's orders: a tenth of the table. */
const history = 10_000;
let db: TestDatabase;
let probe: PlanProbe;

beforeAll(async () => {
  db = await testDatabase("orders_customer_status_plan");
  await migrateOrdersRead(db.sql);
  // c-big places every 10th order: confirmed, but for its 6 oldest (pending) and every 100th (cancelled: 99), never
  // rejected. Other customers' orders: 2% pending, 8% rejected, 4% cancelled, as a shop's might be.
  await db.sql`
    INSERT INTO orders_read (order_id, customer_id, status, skus, total_cents, version, created_at, updated_at,
      search)
    SELECT o.id, o.customer, o.status, ARRAY['SKU-' || (o.i % 7)], 100, 1, o.at, o.at,
           to_tsvector('simple', array_to_string(ARRAY[o.id, o.customer, 'SKU-' || (o.i % 7), o.status], ' '))
    FROM (
      SELECT i, 'o-' || lpad(i::text, 6, '0') AS id, CASE WHEN i % 10 = 3 THEN 'c-big' ELSE 'c-' || (i % 1009) END AS customer,
             CASE WHEN i % 10 = 3 AND i <= 60 THEN 'pending'
                  WHEN i % 10 = 3 AND i % 1000 = 3 THEN 'cancelled'
                  WHEN i % 10 = 3 THEN 'confirmed'
                  WHEN i % 50 = 0 THEN 'pending'
                  WHEN i % 25 = 1 OR i % 25 = 2 THEN 'rejected'
                  WHEN i % 25 = 4 THEN 'cancelled'
                  ELSE 'confirmed' END AS status,
             timestamptz '2026-01-01' + i * interval '30 seconds' AS at
      FROM generate_series(1, ${10 * history}::int) AS i
    ) AS o`;
  await db.sql`ANALYZE orders_read`;
  probe = await planProbe(db.sql);
});
afterAll(async () => {
  await probe?.end();
  await db?.drop();
});

/** The customer's orders of that status, newest first, as the pages must list them. */
async function expected(status: string): Promise<string[]> {
  const rows = await db.sql<{ order_id: string }[]>`
    SELECT order_id FROM orders_read WHERE customer_id = 'c-big' AND status = ${status}
    ORDER BY created_at DESC, order_id DESC`;
  return rows.map((row) => row.order_id);
}

test("a status the customer seldom has is read alone, however long their history", async () => {
  probe.reset();
  const page = await listOrders(probe.sql, { customerId: "c-big", status: "pending" });
  expect(page.items.map((order) => order.orderId)).toEqual(await expected("pending"));
  expect(page.items.length).toBeGreaterThan(0);
  // The same statement and parameters, explained; enable_seqscan left on. The page's rows, not 10,000 (nor the
  // table's pending orders).
  expect(await probe.rowsRead("orders_read")).toBeLessThanOrEqual(6);
});

test("a status the customer never had, common among others, reads nothing", async () => {
  probe.reset();
  expect((await listOrders(probe.sql, { customerId: "c-big", status: "rejected" })).items).toEqual([]);
  expect(await probe.rowsRead("orders_read")).toBe(0);
});

test("a customer's status pages, to the last, are those orders newest first, each once", async () => {
  const found: string[] = [];
  let cursor: string | undefined;
  do {
    probe.reset();
    const page = await listOrders(probe.sql, {
      customerId: "c-big",
      status: "cancelled",
      limit: 3,
      ...(cursor === undefined ? {} : { cursor }),
    });
    // Each page, the last included, reads its own rows and the one after, not the history between them.
    expect(await probe.rowsRead("orders_read")).toBeLessThanOrEqual(4);
    found.push(...page.items.map((order) => order.orderId));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  expect(found).toEqual(await expected("cancelled"));
  expect(found.length).toBe(99);
});
