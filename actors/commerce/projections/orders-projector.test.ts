// The orders projector on the real Postgres: out-of-order and repeated events, search, filters, keyset pages.
import { encodeCursor } from "./cursor.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { OrderView } from "./order-merge.ts";
import { OrdersProjector } from "./orders-projector.ts";
import { listOrders } from "./orders-query.ts";
import postgres from "postgres";
import { event, TEST_DATABASE_URL, type TestDatabase, testDatabase } from "./testing.ts";

let db: TestDatabase;
let projector: OrdersProjector;
const target = "projector/orders";
const t0 = Date.UTC(2026, 2, 1);

const placed = (orderId: string, customerId: string, skus: string[], at = t0, version = 1) =>
  event(
    "OrderPlaced",
    {
      orderId,
      version,
      customerId,
      items: skus.map((sku, i) => ({ sku, quantity: i + 1 })),
      placedAt: new Date(at).toISOString(),
    },
    { target, time: at },
  );
const confirmed = (orderId: string, customerId: string, skus: string[], version = 4, at = t0 + 60_000) =>
  event(
    "OrderConfirmed",
    {
      orderId,
      version,
      customerId,
      items: skus.map((sku, i) => ({ sku, quantity: i + 1, unitPriceCents: 100 })),
      totalCents: skus.reduce((sum, _, i) => sum + (i + 1) * 100, 0),
    },
    { target, time: at },
  );
const rejected = (orderId: string, customerId: string, skus: string[], version = 3, at = t0 + 60_000) =>
  event(
    "OrderRejected",
    { orderId, version, customerId, reason: "out_of_stock", skus },
    { target, time: at },
  );

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    return error instanceof EdgewiseError ? String(error.code) : `not an EdgewiseError: ${error}`;
  }
  return "no error";
}

const ids = (items: OrderView[]) => items.map((item) => item.orderId);

beforeAll(async () => {
  db = await testDatabase("orders");
  projector = new OrdersProjector(db.sql);
  await projector.migrate();
  await Promise.all([projector.migrate(), new OrdersProjector(db.plain).migrate()]); // idempotent, concurrent
});
afterAll(async () => {
  await db?.drop();
});

describe("projecting order events", () => {
  test("OrderPlaced creates the row; a redelivery is a duplicate", async () => {
    const envelope = placed("p-1", "cust-1", ["SKU-1", "SKU-2"]);
    expect(await projector.receive(envelope)).toEqual({
      duplicate: false,
      reply: { orderId: "p-1", version: 1, applied: true },
    });
    expect(await projector.receive(envelope)).toEqual({
      duplicate: true,
      reply: { orderId: "p-1", version: 1, applied: false },
    });
    expect(await projector.getOrder("p-1")).toEqual({
      orderId: "p-1",
      customerId: "cust-1",
      status: "pending",
      items: [
        { sku: "SKU-1", quantity: 1 },
        { sku: "SKU-2", quantity: 2 },
      ],
      createdAt: new Date(t0).toISOString(),
      updatedAt: new Date(t0).toISOString(),
    });
  });

  test("OrderConfirmed then a late OrderPlaced: stays confirmed, createdAt becomes placedAt", async () => {
    const outcome = await projector.receive(confirmed("p-2", "cust-1", ["SKU-3"], 4, t0 + 5000));
    expect(outcome.duplicate).toBe(false);
    expect(await projector.getOrder("p-2")).toMatchObject({
      status: "confirmed",
      totalCents: 100,
      createdAt: new Date(t0 + 5000).toISOString(),
    });
    const late = await projector.receive(placed("p-2", "cust-1", ["SKU-3"], t0 + 1000));
    expect(late.reply).toEqual({ orderId: "p-2", version: 4, applied: false });
    expect(await projector.getOrder("p-2")).toEqual({
      orderId: "p-2",
      customerId: "cust-1",
      status: "confirmed",
      items: [{ sku: "SKU-3", quantity: 1, unitPriceCents: 100 }],
      totalCents: 100,
      createdAt: new Date(t0 + 1000).toISOString(),
      updatedAt: new Date(t0 + 5000).toISOString(),
    });
    expect((await projector.receive(placed("p-2", "cust-1", ["SKU-3"], t0 + 1000))).duplicate).toBe(true);
  });

  test("an order first seen as rejected keeps its skus (searchable) and reason", async () => {
    await projector.receive(rejected("p-3", "cust-2", ["SKU-4", "SKU-5"]));
    expect(await projector.getOrder("p-3")).toMatchObject({
      status: "rejected",
      reason: "out_of_stock",
      items: [],
    });
    expect(ids((await projector.listOrders({ q: "SKU-5" })).items)).toEqual(["p-3"]);
  });

  test("OrderRefunded: the list shows refundedAt as the order's own view does, whatever order the events come in", async () => {
    const refundedAt = new Date(t0 + 120_000).toISOString();
    const lines = [{ sku: "SKU-R", quantity: 1, unitPriceCents: 100 }];
    const cancelled = (orderId: string) =>
      event(
        "OrderCancelled",
        {
          orderId,
          version: 5,
          customerId: "cust-refund",
          skus: ["SKU-R"],
          wasConfirmed: true,
          items: lines,
          totalCents: 100,
        },
        { target, time: t0 + 90_000 },
      );
    const refunded = (orderId: string) =>
      event(
        "OrderRefunded",
        {
          orderId,
          version: 6,
          customerId: "cust-refund",
          status: "cancelled",
          skus: ["SKU-R"],
          items: lines,
          totalCents: 100,
          refundedAt,
        },
        { target, time: t0 + 120_000 },
      );
    const expected = (orderId: string): OrderView => ({
      orderId,
      customerId: "cust-refund",
      status: "cancelled",
      items: lines,
      totalCents: 100,
      refundedAt,
      createdAt: new Date(t0).toISOString(),
      updatedAt: refundedAt,
    });
    // In order: placed, cancelled (no refund yet), refunded; a redelivery changes nothing.
    await projector.receive(placed("p-refund-1", "cust-refund", ["SKU-R"]));
    await projector.receive(cancelled("p-refund-1"));
    expect(await projector.getOrder("p-refund-1")).not.toHaveProperty("refundedAt");
    expect((await projector.receive(refunded("p-refund-1"))).reply).toMatchObject({
      version: 6,
      applied: true,
    });
    expect((await projector.receive(refunded("p-refund-1"))).duplicate).toBe(true);
    // Out of order: the refund first, then the older events only fill in what it lacks.
    await projector.receive(refunded("p-refund-2"));
    await projector.receive(cancelled("p-refund-2"));
    await projector.receive(placed("p-refund-2", "cust-refund", ["SKU-R"]));
    const page = await projector.listOrders({ customerId: "cust-refund" });
    expect(page.items.sort((a, b) => a.orderId.localeCompare(b.orderId))).toEqual([
      expected("p-refund-1"),
      expected("p-refund-2"),
    ]);
    expect(await projector.getOrder("p-refund-2")).toEqual(expected("p-refund-2"));
  });

  test("the first two events of one order, concurrently: the newer wins", async () => {
    for (let i = 0; i < 5; i++) {
      const orderId = `p-race-${i}`;
      await Promise.all([
        projector.receive(placed(orderId, "cust-3", ["SKU-6"], t0 + 100)),
        projector.receive(confirmed(orderId, "cust-3", ["SKU-6"], 4, t0 + 200)),
      ]);
      expect(await projector.getOrder(orderId)).toMatchObject({
        status: "confirmed",
        items: [{ sku: "SKU-6", quantity: 1, unitPriceCents: 100 }],
        createdAt: new Date(t0 + 100).toISOString(),
      });
    }
  });

  test("bad input: unknown type, invalid data, invalid envelope", async () => {
    expect(await codeOf(projector.receive(event("StockChanged", { sku: "x" }, { target })))).toBe(
      "message.unknown_type",
    );
    expect(
      await codeOf(projector.receive(event("OrderPlaced", { orderId: "p-x", version: 0 }, { target }))),
    ).toBe("message.invalid");
    const broken = { ...placed("p-x", "c", ["S"]), time: "yesterday" };
    expect(await codeOf(projector.receive(broken))).toBe("envelope.invalid");
    expect(await projector.getOrder("p-x")).toBeUndefined();
  });

  test("a pool that returns int8 as strings reads the same numbers", async () => {
    expect(await new OrdersProjector(db.plain).getOrder("p-2")).toEqual(await projector.getOrder("p-2"));
  });
});

describe("listOrders", () => {
  beforeAll(async () => {
    // s-1: SKU-9 and ABC-123 (a near miss for "SKU-123"); s-2: SKU-123; s-3 for another customer.
    await projector.receive(placed("s-1", "cust-9", ["SKU-9", "ABC-123"], t0 + 10));
    await projector.receive(placed("s-2", "cust-9", ["SKU-123"], t0 + 20));
    await projector.receive(placed("s-3", "cust-8", ["SKU-123", "widget-blue"], t0 + 30));
    await projector.receive(confirmed("s-3", "cust-8", ["SKU-123", "widget-blue"], 4, t0 + 40));
  });

  test("search by sku: exact phrase, not a scatter of its parts; any case", async () => {
    expect(ids((await projector.listOrders({ q: "SKU-123" })).items)).toEqual(["s-3", "s-2"]);
    expect(ids((await projector.listOrders({ q: "sku-123" })).items)).toEqual(["s-3", "s-2"]);
    expect(ids((await projector.listOrders({ q: "ABC-123" })).items)).toEqual(["s-1"]);
    expect(ids((await projector.listOrders({ q: "widget" })).items)).toEqual(["s-3"]);
  });

  test("search by order id, customer id and status; words combine with AND", async () => {
    expect(ids((await projector.listOrders({ q: "s-2" })).items)).toEqual(["s-2"]);
    expect(ids((await projector.listOrders({ q: "cust-9" })).items)).toEqual(["s-2", "s-1"]);
    expect(ids((await projector.listOrders({ q: "cust-8 confirmed" })).items)).toEqual(["s-3"]);
    expect(ids((await projector.listOrders({ q: "cust-9 confirmed" })).items)).toEqual([]);
    expect(await projector.listOrders({ q: "!!! ---" })).toEqual({ items: [], nextCursor: null });
    expect((await projector.listOrders({ q: "   " })).items.length).toBeGreaterThan(3);
  });

  test("search finds every id by itself: ones the text parser drops or splits, whole ids with spaces", async () => {
    // Ids the API accepts that the 'simple' parser cannot give back: no letter or digit (dropped), a leading '~' (read
    // as `abc` inside the document but `~abc` alone), a space inside. None was found by itself before.
    await projector.receive(placed("w-1", "😀🎉", ["---"], t0 + 50));
    await projector.receive(placed("w-2", "% %", ["~abc"], t0 + 60));
    await projector.receive(placed("w-3", "~u.YQ", ["SKU-w3"], t0 + 70));
    for (const [q, expected] of [
      ["😀🎉", ["w-1"]],
      ["---", ["w-1"]],
      ["~abc", ["w-2"]],
      ["% %", ["w-2"]],
      ["~u.YQ", ["w-3"]],
      ["😀🎉 ---", ["w-1"]], // words still combine with AND
      ["😀🎉 ~abc", []],
    ] as const) {
      expect({ q, found: ids((await projector.listOrders({ q })).items) }).toEqual({
        q,
        found: [...expected],
      });
    }
    // Exact means exact: a part of such an id, or another case of it, is no id.
    expect(ids((await projector.listOrders({ q: "😀" })).items)).toEqual([]);
    expect(ids((await projector.listOrders({ q: "~ABC" })).items)).toEqual([]);
  });

  test("searches make few statement shapes, whichever of their words the text parser can match", async () => {
    // Each distinct statement is prepared and kept on the connection that runs it: a shape per word order was 256
    // for 8 words, which anyone who may search could multiply on the embedded Postgres.
    const schema = (await db.sql<{ schema: string }[]>`SELECT current_schema() AS schema`)[0]
      ?.schema as string;
    const shapes = new Set<string>();
    const probe = postgres(TEST_DATABASE_URL, {
      max: 1,
      onnotice: () => {},
      connection: { search_path: schema },
      debug: (_connection, query) => {
        if (query.includes("FROM orders_read")) shapes.add(query);
      },
    });
    try {
      for (let mask = 0; mask < 256; mask++) {
        const words = Array.from({ length: 8 }, (_, i) => ((mask >> i) & 1 ? `w${i}` : "-".repeat(i + 1)));
        expect((await listOrders(probe, { q: words.join(" ") })).items).toEqual([]);
      }
    } finally {
      await probe.end();
    }
    expect(shapes.size).toBeLessThanOrEqual(9);
  });

  test("search compares words in composed form: café typed as NFC or NFD finds either customer", async () => {
    const nfc = "café-nfc".normalize("NFC");
    const nfd = "café-nfd".normalize("NFD");
    await projector.receive(placed("u-1", nfc, ["SKU-u1"], t0 + 80));
    await projector.receive(placed("u-2", nfd, ["SKU-u2"], t0 + 90));
    for (const q of [nfc, nfd.normalize("NFC"), nfc.normalize("NFD"), nfd]) {
      const expected = q.endsWith("nfc") ? "u-1" : "u-2";
      expect(ids((await projector.listOrders({ q })).items)).toEqual([expected]);
    }
    // The customer filter stays exact: they are two customers.
    expect(ids((await projector.listOrders({ customerId: nfd.normalize("NFC") })).items)).toEqual([]);
    expect(ids((await projector.listOrders({ customerId: nfd })).items)).toEqual(["u-2"]);
  });

  test("a read model made before the ids column gets it, filled for its old rows, when it migrates", async () => {
    await projector.receive(placed("w-old", "🎈", ["___"], t0 + 100));
    await db.sql`ALTER TABLE orders_read DROP COLUMN ids`; // as the table was before
    await db.sql`DELETE FROM edgewise_schema WHERE component = 'orders_read'`; // and a version before markers
    await projector.migrate();
    expect(ids((await projector.listOrders({ q: "🎈" })).items)).toEqual(["w-old"]);
    expect(ids((await projector.listOrders({ q: "___" })).items)).toEqual(["w-old"]);
  });

  test("filters: customerId, status, and both with q", async () => {
    expect(ids((await projector.listOrders({ customerId: "cust-9" })).items)).toEqual(["s-2", "s-1"]);
    expect(ids((await projector.listOrders({ customerId: "cust-8", status: "confirmed" })).items)).toEqual([
      "s-3",
    ]);
    expect(ids((await projector.listOrders({ customerId: "cust-8", status: "pending" })).items)).toEqual([]);
    expect(ids((await projector.listOrders({ customerId: "cust-9", q: "SKU-123" })).items)).toEqual(["s-2"]);
    const rejectedOnly = await projector.listOrders({ status: "rejected" });
    expect(rejectedOnly.items.every((order) => order.status === "rejected")).toBe(true);
    expect(ids(rejectedOnly.items)).toContain("p-3");
  });

  test("bad queries are request.invalid (400)", async () => {
    for (const query of [
      { limit: 0 },
      { limit: 101 },
      { limit: "ten" },
      { status: "shipped" },
      { customerId: "a\nb" },
      { customerId: "x".repeat(129) },
      { cursor: "not a cursor!" },
      { cursor: "eyJ0IjoxfQ" }, // {"t":1}: base64url JSON, but not ours
      // Well formed, but out of Postgres's range or of any row's: refused here, never sent to the database.
      { cursor: encodeCursor({ t: "0000-01-01T00:00:00.000Z", id: "x" }) },
      { cursor: encodeCursor({ t: "+275760-09-13T00:00:00.000Z", id: "x" }) },
    ]) {
      expect(await codeOf(projector.listOrders(query as never))).toBe("request.invalid");
    }
    expect((await projector.listOrders({ limit: "2" as unknown as number })).items).toHaveLength(2);
  });
});

describe("pagination", () => {
  const customerId = "cust-pages";
  const expected: string[] = [];

  beforeAll(async () => {
    // 23 orders; groups of three share a createdAt, so the order id breaks ties.
    for (let i = 0; i < 23; i++) {
      const orderId = `pg-${String(i).padStart(2, "0")}`;
      await projector.receive(
        placed(orderId, customerId, [`SKU-P${i}`], t0 + 1_000_000 + Math.floor(i / 3) * 1000),
      );
    }
    const rows = await db.sql<{ order_id: string }[]>`
      SELECT order_id FROM orders_read WHERE customer_id = ${customerId} ORDER BY created_at DESC, order_id DESC`;
    expected.push(...rows.map((row) => row.order_id));
  });

  test("a cursor round trip visits every order once, newest first, in pages of 5", async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await projector.listOrders({ customerId, limit: 5, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(5);
      seen.push(...ids(page.items));
      cursor = page.nextCursor ?? undefined;
      if (cursor) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      pages++;
    } while (cursor && pages < 20);
    expect(pages).toBe(5);
    expect(seen).toEqual(expected);
    expect(new Set(seen).size).toBe(23);
    expect(seen[0]).toBe("pg-22");
  });

  test("a last page that is full ends with nextCursor null, not a cursor to an empty page", async () => {
    const first = await projector.listOrders({ customerId, q: "SKU-P0" });
    expect(first).toMatchObject({ nextCursor: null });
    const all = await projector.listOrders({ customerId, limit: 23 });
    expect(all.items).toHaveLength(23);
    expect(all.nextCursor).toBeNull();
  });

  test("an order added ahead of the cursor does not shift later pages", async () => {
    const first = await projector.listOrders({ customerId, limit: 10 });
    await projector.receive(placed("pg-new", customerId, ["SKU-N"], t0 + 9_000_000));
    const second = await projector.listOrders({ customerId, limit: 10, cursor: first.nextCursor as string });
    expect([...ids(first.items), ...ids(second.items)]).toEqual(expected.slice(0, 20));
  });
});
