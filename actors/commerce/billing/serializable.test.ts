// The billing ledger on a role whose default_transaction_isolation is serializable: concurrent payments all apply.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Sql } from "../../../deploy/local/broker/db.ts";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import { BillingLedger, ledgerInvariants } from "./index.ts";

const base = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
// As an operator's `ALTER ROLE … SET default_transaction_isolation = serializable` gives every session.
const url = `${base}${base.includes("?") ? "&" : "?"}default_transaction_isolation=serializable`;
const schema = `billing_test_serializable_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
let sql: Sql;
let ledger: BillingLedger;

beforeAll(async () => {
  sql = await connect({ url, max: 10, schema });
  ledger = new BillingLedger(sql);
  await ledger.migrate();
});

afterAll(async () => {
  await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
  await sql.end();
});

const payment = (customerId: string, orderId: string, amountCents: number) =>
  createEnvelope({
    type: "PaymentRequested",
    source: `edgewise://actor/order/${orderId}`,
    target: `billing/${customerId}`,
    data: { orderId, customerId, amountCents },
  });

test("30 payments of one customer at once, on a serializable role: each is captured once, none refused", async () => {
  const [isolation] = await sql<
    { level: string }[]
  >`SELECT current_setting('transaction_isolation') AS level`;
  expect(isolation?.level).toBe("serializable");
  await ledger.putAccount("busy", 1_000_000);
  const outcomes = await Promise.allSettled(
    Array.from({ length: 30 }, (_, n) => ledger.receive(payment("busy", `o-busy-${n}`, 100 + n))),
  );
  const refused = outcomes.filter((outcome) => outcome.status === "rejected");
  expect(refused.map((outcome) => String((outcome as PromiseRejectedResult).reason))).toEqual([]);
  for (const outcome of outcomes) {
    const reply = (outcome as PromiseFulfilledResult<{ reply: { type: string } }>).value.reply;
    expect(reply.type).toBe("PaymentCaptured");
  }
  const spent = Array.from({ length: 30 }, (_, n) => 100 + n).reduce((a, b) => a + b, 0);
  expect((await ledger.getAccount("busy")).balanceCents).toBe(1_000_000 - spent);
  expect((await ledgerInvariants(sql)).violations).toEqual([]);
}, 60_000);
