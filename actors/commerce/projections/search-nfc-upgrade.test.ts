// An upgrade over an orders read model written before search text was NFC: its rows are found as new ones are.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { listOrders } from "./orders-query.ts";
import { migrateOrdersRead } from "./orders-table.ts";
import { type TestDatabase, testDatabase } from "./testing.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await testDatabase("search_nfc_upgrade");
});

afterAll(async () => {
  await db?.drop();
});

// A customer id as an identity provider may write it: the é decomposed (e + U+0301), not composed (U+00E9).
const decomposed = "jose\u0301-garcia";
const composed = decomposed.normalize("NFC");

test("rows a version before NFC search text wrote are found by an id typed composed or decomposed", async () => {
  // The read model as 862e52d (2026-12-07, a released version) left it: no `ids` or `refunded_at`, no schema
  // marker, and the search text as given, decomposed, since versions from e439968 take any JWT sub as customerId.
  await db.sql.unsafe(`
    CREATE TABLE orders_read (
      order_id text COLLATE "C" PRIMARY KEY,
      customer_id text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
      items jsonb NOT NULL DEFAULT '[]',
      skus text[] NOT NULL DEFAULT '{}',
      total_cents bigint CHECK (total_cents >= 0),
      reason text,
      version bigint NOT NULL CHECK (version >= 1),
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      search tsvector NOT NULL
    )`);
  const row = (orderId: string, customerId: string) => db.sql`
    INSERT INTO orders_read (order_id, customer_id, status, items, skus, total_cents, version, created_at,
      updated_at, search)
    VALUES (${orderId}, ${customerId}, 'confirmed', '[{"sku":"nfc-sku","quantity":1,"unitPriceCents":10}]',
      ARRAY['nfc-sku'], 10, 4, now(), now(),
      to_tsvector('simple', ${[orderId, customerId, "nfc-sku", "confirmed"].join(" ")}))`;
  await row("old-decomposed", decomposed);
  await row("old-ascii", "ada");

  await migrateOrdersRead(db.sql);

  const found = async (q: string) =>
    (await listOrders(db.sql, { q })).items.map((order) => order.orderId).join(",");
  // Before, only the decomposed forms found it: "", "", "old-decomposed" and "" (the first, a part of the id typed
  // as it was written, found it on 862e52d itself). An order written since is found all four ways.
  expect({
    partComposed: await found("jos\u00e9"),
    partDecomposed: await found("jose\u0301"),
    wholeComposed: await found(composed),
    wholeDecomposed: await found(decomposed),
  }).toEqual({
    partComposed: "old-decomposed",
    partDecomposed: "old-decomposed",
    wholeComposed: "old-decomposed",
    wholeDecomposed: "old-decomposed",
  });
  expect(await found("ada")).toBe("old-ascii");
});
