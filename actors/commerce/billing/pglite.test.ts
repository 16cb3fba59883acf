// Billing on the embedded PGlite (one connection): migrations, concurrent payments, refunds and the relay still hold.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type Sql } from "../../../deploy/local/broker/db.ts";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../../../deploy/local/pglite/index.ts";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { RecordingTransport } from "../../../test/support/memory-transport.ts";
import { BillingLedger, BillingOutboxRelay, ledgerInvariants } from "./index.ts";

const dataDir = mkdtempSync(join(tmpdir(), "edgewise-billing-"));
let pg: EmbeddedPostgres;
let sql: Sql;

beforeAll(async () => {
  pg = await startEmbeddedPostgres({ dataDir });
  sql = await connect({ url: pg.url, max: pg.maxConnections, socket: pg.socket });
}, 30_000);

afterAll(async () => {
  await sql?.end();
  await pg?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const request = (type: string, orderId: string, amountCents: number): Envelope =>
  createEnvelope({
    type,
    source: `edgewise://actor/order/${orderId}`,
    target: "billing/pg",
    data: { orderId, customerId: "pg", amountCents },
  });

describe("billing on embedded PGlite", () => {
  test("concurrent payments, a refund and the relay work over a single connection", async () => {
    const transport = new RecordingTransport();
    const relay = new BillingOutboxRelay(sql, transport, { intervalMs: 50 });
    const ledger = new BillingLedger(sql, { onCommitted: () => relay.notify() });
    await Promise.all([ledger.migrate(), ledger.migrate()]);
    await ledger.putAccount("pg", 100);
    relay.start();
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, i) => ledger.receive(request("PaymentRequested", `pg-${i}`, 30))),
      );
      const captured = outcomes.filter((outcome) => (outcome.reply as Envelope).type === "PaymentCaptured");
      expect(captured).toHaveLength(3);
      const first = captured[0]?.reply as Envelope<{ orderId: string }>;
      const orderId = first.data?.orderId ?? "";
      const refunds = await Promise.all(
        [1, 2].map(() => ledger.receive(request("RefundRequested", orderId, 30))),
      );
      expect(refunds.filter((outcome) => outcome.reply !== null)).toHaveLength(1);
      expect(await ledger.getAccount("pg")).toEqual({ customerId: "pg", balanceCents: 40 });
      await transport.waitFor(11, 5_000);
      expect((await ledgerInvariants(sql)).violations).toEqual([]);
    } finally {
      await relay.stop();
    }
    expect(await relay.pending()).toBe(0);
  }, 30_000);
});
