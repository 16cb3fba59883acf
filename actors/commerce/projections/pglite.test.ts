// The read side on the embedded PGlite (the default without DATABASE_URL): one connection, same DDL and queries.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type Sql } from "../../../deploy/local/broker/db.ts";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../../../deploy/local/pglite/index.ts";
import { ActivityLog } from "./activity-log.ts";
import { OrdersProjector } from "./orders-projector.ts";
import { event } from "./testing.ts";

const dataDir = mkdtempSync(join(tmpdir(), "edgewise-projections-"));
let pg: EmbeddedPostgres;
let sql: Sql;

beforeAll(async () => {
  pg = await startEmbeddedPostgres({ dataDir });
  sql = await connect({ url: pg.url, max: pg.maxConnections, socket: pg.socket });
}, 60_000);
afterAll(async () => {
  await sql?.end();
  await pg?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("projector, search, activity log and its trigger work over the single PGlite connection", async () => {
  const projector = new OrdersProjector(sql);
  const log = new ActivityLog(sql);
  await Promise.all([projector.migrate(), log.migrate(), projector.migrate()]);
  const placed = event(
    "OrderPlaced",
    {
      orderId: "o-1",
      version: 1,
      customerId: "c-1",
      items: [{ sku: "SKU-123", quantity: 1 }],
      placedAt: "2026-01-01T00:00:00Z",
    },
    { target: "projector/orders" },
  );
  const confirmed = event(
    "OrderConfirmed",
    {
      orderId: "o-1",
      version: 3,
      customerId: "c-1",
      items: [{ sku: "SKU-123", quantity: 1, unitPriceCents: 5 }],
      totalCents: 5,
    },
    { target: "projector/orders" },
  );
  // Concurrent deliveries queue on the one connection; the transactions stay short.
  await Promise.all([
    projector.receive(confirmed),
    projector.receive(placed),
    log.receive(placed),
    log.receive(confirmed),
  ]);
  expect((await projector.receive(placed)).duplicate).toBe(true);
  expect((await log.receive(placed)).duplicate).toBe(true);
  const page = await projector.listOrders({ q: "SKU-123", customerId: "c-1" });
  expect(page.items.map((order) => [order.orderId, order.status, order.totalCents])).toEqual([
    ["o-1", "confirmed", 5],
  ]);
  // An id the text parser drops is found by itself here too (the generated `ids` column, on PGlite's Postgres).
  await projector.receive(
    event(
      "OrderPlaced",
      {
        orderId: "o-2",
        version: 1,
        customerId: "😀🎉",
        items: [{ sku: "---", quantity: 1 }],
        placedAt: "2026-01-02T00:00:00Z",
      },
      { target: "projector/orders" },
    ),
  );
  for (const q of ["😀🎉", "---"]) {
    expect((await projector.listOrders({ q })).items.map((order) => order.orderId)).toEqual(["o-2"]);
  }
  expect((await log.listActivity({ subject: "o-1" })).items.map((item) => item.type).sort()).toEqual([
    "OrderConfirmed",
    "OrderPlaced",
  ]);
  await expect(sql`DELETE FROM activity_log`).rejects.toThrow("append-only");
  expect(await log.pruneActivity({ olderThan: Date.now() + 60_000 })).toBe(2);
}, 60_000);
