// The billing ledger on a role whose default_transaction_isolation is serializable: concurrent payments all apply.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ledgerInvariants } from "./index.ts";
import { type BillingTestDatabase, billingTestDatabase, paymentRequested } from "./testing.ts";

let db: BillingTestDatabase;

beforeAll(async () => {
  // As an operator's `ALTER ROLE … SET default_transaction_isolation = serializable` gives every session.
  db = await billingTestDatabase("serializable", {
    max: 10,
    settings: { default_transaction_isolation: "serializable" },
  });
});

afterAll(() => db?.drop());

test("30 payments of one customer at once, on a serializable role: each is captured once, none refused", async () => {
  const [isolation] = await db.sql<
    { level: string }[]
  >`SELECT current_setting('transaction_isolation') AS level`;
  expect(isolation?.level).toBe("serializable");
  await db.ledger.putAccount("busy", 1_000_000);
  const outcomes = await Promise.allSettled(
    Array.from({ length: 30 }, (_, n) => db.ledger.receive(paymentRequested("busy", `o-busy-${n}`, 100 + n))),
  );
  const refused = outcomes.filter((outcome) => outcome.status === "rejected");
  expect(refused.map((outcome) => String((outcome as PromiseRejectedResult).reason))).toEqual([]);
  for (const outcome of outcomes) {
    const reply = (outcome as PromiseFulfilledResult<{ reply: { type: string } }>).value.reply;
    expect(reply.type).toBe("PaymentCaptured");
  }
  const spent = Array.from({ length: 30 }, (_, n) => 100 + n).reduce((a, b) => a + b, 0);
  expect((await db.ledger.getAccount("busy")).balanceCents).toBe(1_000_000 - spent);
  expect((await ledgerInvariants(db.sql)).violations).toEqual([]);
}, 60_000);
