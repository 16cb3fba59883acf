// The orders projector under a role's default_transaction_isolation = serializable: a conflict is run again in place.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { OrdersProjector } from "./orders-projector.ts";
import { event, TEST_DATABASE_URL, type TestDatabase, testDatabase } from "./testing.ts";

const target = "projector/orders";
const t0 = Date.UTC(2026, 2, 1);

const placed = (orderId: string) =>
  event(
    "OrderPlaced",
    {
      orderId,
      version: 1,
      customerId: "c-1",
      items: [{ sku: "sku-1", quantity: 1 }],
      placedAt: new Date(t0).toISOString(),
    },
    { target, time: t0 },
  );
const confirmed = (orderId: string) =>
  event(
    "OrderConfirmed",
    {
      orderId,
      version: 4,
      customerId: "c-1",
      items: [{ sku: "sku-1", quantity: 1, unitPriceCents: 100 }],
      totalCents: 100,
    },
    { target, time: t0 + 60_000 },
  );

let db: TestDatabase;
/** The projector's pool, as an operator's `ALTER ROLE … SET default_transaction_isolation = serializable` gives it. */
let serializable: postgres.Sql;
let projector: OrdersProjector;

beforeAll(async () => {
  db = await testDatabase("projector_serializable");
  await new OrdersProjector(db.sql).migrate();
  const schema = (await db.sql<{ schema: string }[]>`SELECT current_schema() AS schema`)[0]?.schema as string;
  serializable = postgres(TEST_DATABASE_URL, {
    max: 10,
    onnotice: () => {},
    connection: { search_path: schema, default_transaction_isolation: "serializable" },
  });
  projector = new OrdersProjector(serializable as unknown as TestDatabase["sql"]);
});
afterAll(async () => {
  await serializable?.end({ timeout: 1 });
  await db?.drop();
});

/**
 * Another transaction holds the order's row (as the projector of another event of the order does), and writes it
 * once `apply` waits on it: that transaction began before the write committed, so the server ends it with 40001.
 */
async function concurrentWrite(orderId: string, apply: () => Promise<unknown>) {
  let result: Promise<unknown> | undefined;
  await db.plain.begin(async (tx) => {
    await tx`SELECT 1 FROM orders_read WHERE order_id = ${orderId} FOR UPDATE`;
    result = apply();
    result.catch(() => {});
    // The projector's transaction has begun and waits on the row.
    for (let i = 0; i < 200; i++) {
      const [waiting] = await tx<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))`;
      if ((waiting?.n ?? 0) > 0) break;
      await Bun.sleep(10);
    }
    await tx`UPDATE orders_read SET version = version WHERE order_id = ${orderId}`;
  });
  return await result;
}

test("an event whose transaction the server ends for a concurrent write of its order is applied, once", async () => {
  const orderId = "o-serializable-1";
  await projector.receive(placed(orderId));
  // Before, 40001 (could not serialize access due to concurrent update): the delivery failed, and redelivered
  // under a short backoff, dead-lettered after a few such refusals.
  const outcome = await concurrentWrite(orderId, () => projector.receive(confirmed(orderId)));
  expect(outcome).toMatchObject({ duplicate: false, reply: { orderId, version: 4, applied: true } });
  expect((await projector.getOrder(orderId))?.status).toBe("confirmed");
  // Delivered again, it changes nothing.
  expect(await projector.receive(confirmed(orderId))).toMatchObject({ duplicate: true });
});

test("the first events of many orders at once are all applied: none is ended for another's insert", async () => {
  // Serializable, their inserts conflicted through the index pages they read and wrote (40001, read/write
  // dependencies among transactions), though no two touch the same order: run once more, some failed again.
  const orders = Array.from({ length: 40 }, (_, i) => `o-many-${i}`);
  const outcomes = await Promise.allSettled(orders.map((orderId) => projector.receive(placed(orderId))));
  expect(outcomes.filter((outcome) => outcome.status === "rejected")).toEqual([]);
  const [stored] = await db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM orders_read WHERE order_id LIKE 'o-many-%'`;
  expect(stored?.n).toBe(orders.length);
});
