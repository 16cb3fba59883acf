// GET /v1/orders?q= reads a bounded number of orders whatever the planner thinks of the word, with the same pages.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { listOrders } from "./orders-query.ts";
import { migrateOrdersRead } from "./orders-table.ts";
import { type PlanProbe, planProbe } from "./plan-probe.ts";
import { type TestDatabase, testDatabase } from "./testing.ts";

const total = 20_000;
/** The oldest orders hold the sku SKU-OLD: 1.5% of the table, which the planner thinks common enough to walk for. */
const oldOnes = 300;
let db: TestDatabase;
let probe: PlanProbe;

beforeAll(async () => {
  db = await testDatabase("orders_search_plan");
  await migrateOrdersRead(db.sql);
  // Three orders per second, so pages and the read window end inside a tie of created_at; 20 lines each, so a
  // page of the table holds a few orders, as a shop's would; the search text is the one searchText makes (order id,
  // customer id, skus, status).
  await db.sql`
    INSERT INTO orders_read (order_id, customer_id, status, items, skus, total_cents, version, created_at, updated_at,
      search)
    SELECT o.id, o.customer, 'confirmed', o.items, o.skus, 100, 1, o.at, o.at,
           to_tsvector('simple', array_to_string(ARRAY[o.id, o.customer] || o.skus || ARRAY['confirmed'], ' '))
    FROM (
      SELECT 'o-' || lpad(i::text, 6, '0') AS id, 'c-' || (i % 50) AS customer,
             timestamptz '2026-01-01' + (i / 3) * interval '1 second' AS at,
             (SELECT jsonb_agg(jsonb_build_object('sku', 'SKU-' || (i % 7), 'quantity', line, 'unitPriceCents', 1999))
              FROM generate_series(1, 20) AS line) AS items,
             ARRAY['SKU-' || (i % 7)]
               || CASE WHEN i <= ${oldOnes}::int THEN ARRAY['SKU-OLD'] ELSE '{}' END
               || CASE WHEN i % 100 = 0 THEN ARRAY['SKU-HUNDRED'] ELSE '{}' END
               || CASE WHEN i > ${total - 10}::int THEN ARRAY['SKU-NEW'] ELSE '{}' END AS skus
      FROM generate_series(1, ${total}::int) AS i
    ) AS o`;
  await db.sql`ANALYZE orders_read`;
  probe = await planProbe(db.sql);
});
afterAll(async () => {
  await probe?.end();
  await db?.drop();
});

/** Every order a word matches, newest first, as a page walk must visit them. */
async function allMatches(sku: string, customerId?: string): Promise<string[]> {
  const rows = await db.sql<{ order_id: string }[]>`
    SELECT order_id FROM orders_read
    WHERE ${sku} = ANY (skus) ${customerId === undefined ? db.sql`` : db.sql`AND customer_id = ${customerId}`}
    ORDER BY created_at DESC, order_id DESC`;
  return rows.map((row) => row.order_id);
}

/** The ids of every page of a search, following nextCursor to the end. */
async function walk(query: { q: string; customerId?: string; limit: number }): Promise<string[]> {
  const found: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listOrders(probe.sql, { ...query, ...(cursor === undefined ? {} : { cursor }) });
    found.push(...page.items.map((order) => order.orderId));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return found;
}

test("a word whose orders are all old is found by reading them, not the whole table newest first", async () => {
  probe.reset();
  const page = await listOrders(probe.sql, { q: "SKU-OLD" });
  expect(page.items.map((order) => order.orderId)).toEqual((await allMatches("SKU-OLD")).slice(0, 20));
  // The same statement and parameters, explained; enable_seqscan left on. At most a window of 250 orders per row
  // wanted (21), the word's orders as both indexes find them (its id and its text, ORed in one bitmap), and the
  // page's rows: not 20,000.
  expect(await probe.rowsRead("orders_read")).toBeLessThanOrEqual(21 * 250 + 2 * oldOnes + 21);
});

test("every word's pages, to the last, are its orders newest first, each once, through either reading", async () => {
  for (const [query, sku] of [
    [{ q: "SKU-OLD", limit: 100 }, "SKU-OLD"], // all old: read by index
    [{ q: "SKU-HUNDRED", limit: 7 }, "SKU-HUNDRED"], // the newest pages within the window, deeper ones by index
    [{ q: "SKU-NEW", limit: 3 }, "SKU-NEW"], // few and recent
    [{ q: "sku-hundred c-0", limit: 4 }, "SKU-HUNDRED"], // words combine with AND (every 100th order is c-0's)
    [{ q: "SKU-NONE", limit: 20 }, "SKU-NONE"],
  ] as const) {
    expect({ query, found: await walk(query) }).toEqual({ query, found: await allMatches(sku) });
  }
  // A common word with a customer: the first pages, read within the window.
  const common = await allMatches("SKU-3", "c-7");
  const first = await listOrders(probe.sql, { q: "SKU-3", customerId: "c-7", limit: 50 });
  expect(first.items.map((order) => order.orderId)).toEqual(common.slice(0, 50));
  const second = await listOrders(probe.sql, {
    q: "SKU-3",
    customerId: "c-7",
    limit: 50,
    cursor: first.nextCursor as string,
  });
  expect(second.items.map((order) => order.orderId)).toEqual(common.slice(50, 100));
});

test("the same pages once the server plans the statement generically (after 5 runs, or forced)", async () => {
  await probe.sql`SET plan_cache_mode = force_generic_plan`;
  try {
    expect(await walk({ q: "SKU-OLD", limit: 100 })).toEqual(await allMatches("SKU-OLD"));
    expect(await walk({ q: "SKU-HUNDRED", limit: 9 })).toEqual(await allMatches("SKU-HUNDRED"));
  } finally {
    await probe.sql`RESET plan_cache_mode`;
  }
});
