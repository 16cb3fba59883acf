// The billing ledger on a real Postgres: funding, captures, refunds, deduplication, concurrency and the invariants.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Sql } from "../../../deploy/local/broker/db.ts";
import { ManualClock } from "../../../shared/clock/index.ts";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { ActivityLog } from "../projections/index.ts";
import {
  type AccountSet,
  type AccountSetRecorder,
  BillingLedger,
  ledgerInvariants,
  SystemAccounts,
} from "./index.ts";

const url = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `billing_test_ledger_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
let sql: Sql;
let ledger: BillingLedger;

beforeAll(async () => {
  sql = await connect({ url, max: 8, schema });
  ledger = new BillingLedger(sql);
  await Promise.all([ledger.migrate(), ledger.migrate()]);
  await ledger.migrate();
});

afterAll(async () => {
  await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
  await sql.end();
});

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
let orders = 0;
const nextOrder = () => `o-${++orders}`;

function payment(customerId: string, orderId: string, amountCents: number, id?: string): Envelope {
  return createEnvelope({
    type: "PaymentRequested",
    source: `edgewise://actor/order/${orderId}`,
    target: `billing/${customerId}`,
    data: { orderId, customerId, amountCents },
    correlationid: `corr-${orderId}`,
    traceparent,
    ...(id ? { id } : {}),
  });
}

function refund(customerId: string, orderId: string, amountCents: number): Envelope {
  return createEnvelope({
    type: "RefundRequested",
    source: `edgewise://actor/order/${orderId}`,
    target: `billing/${customerId}`,
    data: { orderId, customerId, amountCents },
  });
}

const replyOf = (outcome: { reply: unknown }) => outcome.reply as Envelope<Record<string, unknown>>;
const balance = async (customerId: string) => (await ledger.getAccount(customerId)).balanceCents;
const outboxFor = async (orderId: string) =>
  (await sql`SELECT envelope::text AS e FROM billing_outbox ORDER BY seq`)
    .map((row) => JSON.parse(row.e) as Envelope<{ orderId: string }>)
    .filter((envelope) => envelope.data?.orderId === orderId);
const transactionsOf = async (orderId: string) =>
  (await sql`SELECT kind FROM billing_transactions WHERE order_id = ${orderId} ORDER BY kind`).map(
    (row) => row.kind,
  );

async function expectCode(work: Promise<unknown>, code: string) {
  try {
    await work;
  } catch (error) {
    expect(error).toBeInstanceOf(EdgewiseError);
    expect((error as EdgewiseError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

async function expectInvariants() {
  const report = await ledgerInvariants(sql);
  expect(report.violations).toEqual([]);
  return report;
}

describe("accounts", () => {
  test("PUT sets the balance absolutely, through funding transactions of the difference", async () => {
    expect(await ledger.putAccount("acc-1", 1_000)).toEqual({
      customerId: "acc-1",
      balanceCents: 1_000,
      previousBalanceCents: 0,
    });
    expect(await ledger.putAccount("acc-1", 400)).toEqual({
      customerId: "acc-1",
      balanceCents: 400,
      previousBalanceCents: 1_000,
    });
    await ledger.putAccount("acc-1", 400);
    expect(await ledger.getAccount("acc-1")).toEqual({ customerId: "acc-1", balanceCents: 400 });
    const funding = await sql`
      SELECT e.amount_cents FROM billing_entries e JOIN billing_transactions t ON t.id = e.transaction_id
      WHERE t.customer_id = 'acc-1' AND e.account_id = 'acc-1' AND t.kind = 'funding'`;
    expect(funding.map((row) => Number(row.amount_cents)).sort()).toEqual([-600, 1_000]);
    await expectInvariants();
  });

  test("an unknown account is not_found; bad input is request.invalid", async () => {
    await expectCode(ledger.getAccount("nobody"), "not_found");
    await expectCode(ledger.getAccount(SystemAccounts.revenue), "request.invalid");
    await expectCode(ledger.putAccount("acc-2", -1), "request.invalid");
    await expectCode(ledger.putAccount("acc-2", 1.5), "request.invalid");
    await expectCode(ledger.putAccount("bad\nid", 1), "request.invalid");
    await expectCode(ledger.putAccount("", 1), "request.invalid");
  });

  test("the CHECK constraint rejects a negative customer balance written directly", async () => {
    await ledger.putAccount("acc-check", 5);
    const write = sql`UPDATE billing_accounts SET balance_cents = -1 WHERE id = 'acc-check'`;
    await expect(write).rejects.toMatchObject({ code: "23514" });
    // A system account may go negative (rolled back, so the journal still matches).
    const rolledBack = new Error("roll back");
    const system = sql.begin(async (tx) => {
      const [row] = await tx`
        UPDATE billing_accounts SET balance_cents = -1 WHERE id = ${SystemAccounts.revenue} RETURNING balance_cents`;
      expect(Number(row?.balance_cents)).toBe(-1);
      throw rolledBack;
    });
    await expect(system).rejects.toBe(rolledBack);
    expect(await balance("acc-check")).toBe(5);
  });

  test("the deferred trigger rejects an unbalanced transaction at commit", async () => {
    await ledger.putAccount("acc-trigger", 5);
    const unbalanced = sql.begin(async (tx) => {
      await tx`INSERT INTO billing_transactions (id, kind, customer_id) VALUES ('t-bad', 'funding', 'acc-trigger')`;
      await tx`INSERT INTO billing_entries VALUES ('t-bad', 'acc-trigger', 10), ('t-bad', ${SystemAccounts.funding}, -9)`;
    });
    await expect(unbalanced).rejects.toMatchObject({ code: "23514" });
    expect((await sql`SELECT id FROM billing_transactions WHERE id = 't-bad'`).length).toBe(0);
  });

  test("a set's recorder writes on the set's transaction: kept with it, and if it throws neither is kept", async () => {
    // The activity log on the same database (this schema), as the gateway wires it for admin.account_set.
    const activity = new ActivityLog(sql);
    await activity.migrate();
    const recordOf = (set: AccountSet) =>
      createEnvelope({
        type: "admin.account_set",
        source: "edgewise://test",
        subject: set.customerId,
        data: { before: set.previousBalanceCents, after: set.balanceCents },
      });
    const logged = async (customerId: string) =>
      (await activity.listActivity({ subject: customerId })).items.map((event) => event.data);
    const record: AccountSetRecorder = (tx, set) => activity.recordActivityIn(tx, recordOf(set));

    await ledger.putAccount("acc-rec", 700, record);
    expect(await logged("acc-rec")).toEqual([{ before: 0, after: 700 }]);

    // The record is written, then the recorder fails: the row it wrote goes with the balance it recorded.
    const failing: AccountSetRecorder = async (tx, set) => {
      await record(tx, set);
      throw new Error("the record's write failed");
    };
    await expectCode(ledger.putAccount("acc-rec", 50, failing), "unavailable");
    expect(await balance("acc-rec")).toBe(700);
    expect(await logged("acc-rec")).toEqual([{ before: 0, after: 700 }]);
    // A new account is not created either.
    await expectCode(ledger.putAccount("acc-rec-new", 50, failing), "unavailable");
    await expectCode(ledger.getAccount("acc-rec-new"), "not_found");
    expect(await logged("acc-rec-new")).toEqual([]);
    await expectInvariants();
  });
});

describe("payments", () => {
  test("a capture debits the customer and answers PaymentCaptured to the order, through the outbox", async () => {
    await ledger.putAccount("cap", 1_000);
    const orderId = nextOrder();
    const request = payment("cap", orderId, 250);
    const outcome = await ledger.receive(request);
    expect(outcome.duplicate).toBe(false);
    const reply = replyOf(outcome);
    expect(reply).toMatchObject({
      type: "PaymentCaptured",
      source: "edgewise://billing",
      target: `order/${orderId}`,
      causationid: request.id,
      correlationid: `corr-${orderId}`,
      data: { orderId, customerId: "cap", amountCents: 250, balanceCents: 750 },
    });
    // The reply stays in the request's trace: the same trace id (its span is billing's own when a tracer runs).
    expect(reply.traceparent?.split("-")[1]).toBe(traceparent.split("-")[1]);
    expect(await balance("cap")).toBe(750);
    expect(await outboxFor(orderId)).toEqual([reply as Envelope<{ orderId: string }>]);
    const [revenue] =
      await sql`SELECT balance_cents FROM billing_accounts WHERE id = ${SystemAccounts.revenue}`;
    expect(Number(revenue?.balance_cents)).toBeGreaterThanOrEqual(250);
    await expectInvariants();
  });

  test("insufficient funds answers PaymentFailed and debits nothing", async () => {
    await ledger.putAccount("poor", 100);
    const orderId = nextOrder();
    const reply = replyOf(await ledger.receive(payment("poor", orderId, 101)));
    expect(reply).toMatchObject({
      type: "PaymentFailed",
      target: `order/${orderId}`,
      data: { orderId, customerId: "poor", amountCents: 101, reason: "insufficient_funds" },
    });
    expect(await balance("poor")).toBe(100);
    expect(await transactionsOf(orderId)).toEqual([]);
    // Exactly the balance is fine.
    expect(replyOf(await ledger.receive(payment("poor", nextOrder(), 100))).type).toBe("PaymentCaptured");
    expect(await balance("poor")).toBe(0);
    await expectInvariants();
  });

  test("a customer without an account fails the payment", async () => {
    const orderId = nextOrder();
    const reply = replyOf(await ledger.receive(payment("ghost", orderId, 1)));
    expect(reply.type).toBe("PaymentFailed");
    await expectCode(ledger.getAccount("ghost"), "not_found");
  });

  test("a refund credits the capture back once, however often it is requested", async () => {
    await ledger.putAccount("ref", 500);
    const orderId = nextOrder();
    await ledger.receive(payment("ref", orderId, 300));
    const first = await ledger.receive(refund("ref", orderId, 300));
    expect(replyOf(first)).toMatchObject({
      type: "PaymentRefunded",
      target: `order/${orderId}`,
      data: { orderId, customerId: "ref", amountCents: 300, balanceCents: 500 },
    });
    const second = await ledger.receive(refund("ref", orderId, 300));
    expect(second).toEqual({ duplicate: false, reply: null });
    expect(await balance("ref")).toBe(500);
    expect(await transactionsOf(orderId)).toEqual(["capture", "refund"]);
    expect((await outboxFor(orderId)).map((envelope) => envelope.type)).toEqual([
      "PaymentCaptured",
      "PaymentRefunded",
    ]);
    await expectInvariants();
  });

  test("a balance set leaves room for the refunds of the captures not refunded yet", async () => {
    await ledger.putAccount("roomy", 1_000);
    const orderId = nextOrder();
    await ledger.receive(payment("roomy", orderId, 100));
    // Before, this was set, and the order's refund then took the balance past the bound: refused, retried and
    // dead-lettered, the order cancelled but its 100 cents never back.
    await expectCode(ledger.putAccount("roomy", Number.MAX_SAFE_INTEGER), "conflict");
    expect(await balance("roomy")).toBe(900);
    await ledger.putAccount("roomy", Number.MAX_SAFE_INTEGER - 100);
    expect(replyOf(await ledger.receive(refund("roomy", orderId, 100)))).toMatchObject({
      type: "PaymentRefunded",
      data: { balanceCents: Number.MAX_SAFE_INTEGER },
    });
    // Refunded, the capture no longer holds room.
    await ledger.putAccount("roomy", Number.MAX_SAFE_INTEGER);
    await expectInvariants();
  });

  test("a refund that would take a balance past the largest safe integer is refused whole, and applies once it fits", async () => {
    await ledger.putAccount("rich", 1_000);
    const orderId = nextOrder();
    await ledger.receive(payment("rich", orderId, 100));
    // A balance set before PUT left room for refunds (above), made here by a funding transaction of its own.
    await sql.begin(async (tx) => {
      const delta = Number.MAX_SAFE_INTEGER - 900;
      await tx`INSERT INTO billing_transactions (id, kind, customer_id) VALUES ('t-rich', 'funding', 'rich')`;
      await tx`INSERT INTO billing_entries VALUES ('t-rich', 'rich', ${delta}), ('t-rich', ${SystemAccounts.funding}, ${-delta})`;
      await tx`UPDATE billing_accounts SET balance_cents = balance_cents + ${delta} WHERE id = 'rich'`;
      await tx`UPDATE billing_accounts SET balance_cents = balance_cents - ${delta} WHERE id = ${SystemAccounts.funding}`;
    });
    expect(await balance("rich")).toBe(Number.MAX_SAFE_INTEGER);
    const message = refund("rich", orderId, 100);
    // Postgres would hold MAX_SAFE_INTEGER + 100 exactly; read back it would round, and the reply would fail.
    await expectCode(ledger.receive(message), "conflict");
    expect(await balance("rich")).toBe(Number.MAX_SAFE_INTEGER);
    expect(await transactionsOf(orderId)).toEqual(["capture"]);
    expect((await outboxFor(orderId)).map((envelope) => envelope.type)).toEqual(["PaymentCaptured"]);
    // Nothing recorded the message as handled: its redelivery, once the balance leaves room, applies it.
    await ledger.putAccount("rich", 5_000);
    expect(replyOf(await ledger.receive(message))).toMatchObject({
      type: "PaymentRefunded",
      data: { orderId, customerId: "rich", amountCents: 100, balanceCents: 5_100 },
    });
    expect(await transactionsOf(orderId)).toEqual(["capture", "refund"]);
    await expectInvariants();
  });

  test("a refund without a capture is a no-op, but the message is recorded", async () => {
    await ledger.putAccount("nocap", 50);
    const orderId = nextOrder();
    const message = refund("nocap", orderId, 10);
    expect(await ledger.receive(message)).toEqual({ duplicate: false, reply: null });
    expect(await ledger.receive(message)).toEqual({ duplicate: true, reply: null });
    expect(await balance("nocap")).toBe(50);
    expect(await transactionsOf(orderId)).toEqual([]);
    expect(await outboxFor(orderId)).toEqual([]);
    // A failed payment has no capture either: nothing to refund.
    await ledger.receive(payment("nocap", orderId, 51));
    expect((await ledger.receive(refund("nocap", orderId, 51))).reply).toBeNull();
    expect(await balance("nocap")).toBe(50);
  });

  test("the same message delivered three times is applied once, and answers the first reply", async () => {
    await ledger.putAccount("dup", 1_000);
    const orderId = nextOrder();
    const message = payment("dup", orderId, 100);
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await ledger.receive(message));
    expect(outcomes.map((outcome) => outcome.duplicate)).toEqual([false, true, true]);
    expect(outcomes[1]?.reply).toEqual(outcomes[0]?.reply);
    expect(outcomes[2]?.reply).toEqual(outcomes[0]?.reply);
    expect(await balance("dup")).toBe(900);
    expect(await outboxFor(orderId)).toHaveLength(1);
    // Concurrent deliveries of one message too.
    const racing = payment("dup", nextOrder(), 100);
    const raced = await Promise.all([1, 2, 3].map(() => ledger.receive(racing)));
    expect(raced.filter((outcome) => !outcome.duplicate)).toHaveLength(1);
    expect(await balance("dup")).toBe(800);
    await expectInvariants();
  });

  test("another message id for the same order charges once, and re-answers under the same reply id", async () => {
    await ledger.putAccount("resent", 1_000);
    const orderId = nextOrder();
    const first = replyOf(await ledger.receive(payment("resent", orderId, 100)));
    const again = await ledger.receive(payment("resent", orderId, 100));
    expect(again.duplicate).toBe(false);
    expect(replyOf(again).id).toBe(first.id);
    expect(replyOf(again).data).toMatchObject({ amountCents: 100, balanceCents: 900 });
    const raced = await Promise.all([1, 2, 3, 4].map(() => ledger.receive(payment("resent", orderId, 100))));
    expect(raced.every((outcome) => replyOf(outcome).type === "PaymentCaptured")).toBe(true);
    expect(await balance("resent")).toBe(900);
    expect(await transactionsOf(orderId)).toEqual(["capture"]);
    await expectInvariants();
  });

  test("handled message ids older than the retention are pruned after a commit; the order is still charged once", async () => {
    const pruning = new BillingLedger(sql, { processedRetentionMs: 60_000, pruneEveryMs: 0 });
    await pruning.putAccount("kept", 1_000);
    const old = payment("kept", nextOrder(), 100);
    await pruning.receive(old);
    // Handled two minutes ago, as far as the table says.
    await sql`UPDATE billing_processed_messages SET processed_at = now() - interval '2 minutes'
      WHERE message_id = ${old.id}`;
    const recent = payment("kept", nextOrder(), 100);
    await pruning.receive(recent);
    const processed = async (id: string) =>
      (await sql`SELECT 1 FROM billing_processed_messages WHERE message_id = ${id}`).length;
    for (const deadline = Date.now() + 10_000; (await processed(old.id)) > 0 && Date.now() < deadline; )
      await Bun.sleep(10);
    expect(await processed(old.id)).toBe(0);
    expect(await processed(recent.id)).toBe(1);
    // A redelivery after the retention is handled again, and still charges the order once.
    const again = await pruning.receive(old);
    expect(again.duplicate).toBe(false);
    expect(replyOf(again).type).toBe("PaymentCaptured");
    expect(await balance("kept")).toBe(800);
    await expectInvariants();
  });

  test("ledgers sharing a prune schedule (Workers builds one a request) prune once a period between them", async () => {
    const schedule = { lastAt: undefined as number | undefined };
    const options = { processedRetentionMs: 60_000, pruneSchedule: schedule };
    const processed = async (id: string) =>
      (await sql`SELECT 1 FROM billing_processed_messages WHERE message_id = ${id}`).length;
    const first = new BillingLedger(sql, options);
    await first.putAccount("shared-prune", 1_000);
    // A handled id already past the retention: its disappearance shows that the first prune has run to its end
    // (it is not awaited), so it cannot be what removes `old` below.
    const sentinel = `sentinel-${nextOrder()}`;
    await sql`INSERT INTO billing_processed_messages (message_id, target, type, processed_at)
      VALUES (${sentinel}, 'billing/shared-prune', 'PaymentRequested', now() - interval '2 minutes')`;
    const old = payment("shared-prune", nextOrder(), 100);
    await first.receive(old);
    const prunedAt = schedule.lastAt;
    expect(prunedAt).toBeNumber();
    for (const deadline = Date.now() + 10_000; (await processed(sentinel)) > 0 && Date.now() < deadline; )
      await Bun.sleep(10);
    expect(await processed(sentinel)).toBe(0);
    await sql`UPDATE billing_processed_messages SET processed_at = now() - interval '2 minutes'
      WHERE message_id = ${old.id}`;
    // The next request's ledger: within the hour of the shared schedule, it does not prune.
    await new BillingLedger(sql, options).receive(payment("shared-prune", nextOrder(), 100));
    expect(schedule.lastAt).toBe(prunedAt as number);
    await Bun.sleep(200);
    expect(await processed(old.id)).toBe(1);
    // A ledger with a schedule of its own prunes at its first payment, as before.
    await new BillingLedger(sql, { processedRetentionMs: 60_000 }).receive(
      payment("shared-prune", nextOrder(), 100),
    );
    for (const deadline = Date.now() + 10_000; (await processed(old.id)) > 0 && Date.now() < deadline; )
      await Bun.sleep(10);
    expect(await processed(old.id)).toBe(0);
    await expectInvariants();
  });

  test("a wall clock stepped back an hour does not stop the pruning for the hour: the next commit prunes", async () => {
    const clock = new ManualClock(Date.now());
    const stepped = new BillingLedger(sql, { processedRetentionMs: 60_000, clock });
    const processed = async (id: string) =>
      (await sql`SELECT 1 FROM billing_processed_messages WHERE message_id = ${id}`).length;
    await stepped.putAccount("stepped-prune", 1_000);
    // Its first commit prunes, and starts the hour.
    await stepped.receive(payment("stepped-prune", nextOrder(), 100));
    const old = payment("stepped-prune", nextOrder(), 100);
    await stepped.receive(old);
    await sql`UPDATE billing_processed_messages SET processed_at = now() - interval '2 hours'
      WHERE message_id = ${old.id}`;
    clock.step(-3_600_000);
    clock.advance(1_000);
    await stepped.receive(payment("stepped-prune", nextOrder(), 100));
    for (const deadline = Date.now() + 10_000; (await processed(old.id)) > 0 && Date.now() < deadline; )
      await Bun.sleep(10);
    expect(await processed(old.id)).toBe(0);
    await expectInvariants();
  });

  test("50 concurrent payments on one small account never overdraw it", async () => {
    await ledger.putAccount("rush", 1_000);
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ledger.receive(payment("rush", `rush-${i}`, 70))),
    );
    const captured = outcomes.filter((outcome) => replyOf(outcome).type === "PaymentCaptured");
    const failed = outcomes.filter((outcome) => replyOf(outcome).type === "PaymentFailed");
    expect(captured).toHaveLength(14);
    expect(failed).toHaveLength(36);
    expect(await balance("rush")).toBe(20);
    const balances = captured
      .map((outcome) => replyOf(outcome).data?.balanceCents as number)
      .sort((a, b) => a - b);
    expect(balances).toEqual(Array.from({ length: 14 }, (_, i) => 20 + 70 * i));
    const [sums] = await sql`
      SELECT coalesce(sum(-e.amount_cents) FILTER (WHERE t.kind = 'capture'), 0)::text AS captures,
        coalesce(sum(e.amount_cents) FILTER (WHERE t.kind = 'funding'), 0)::text AS funding
      FROM billing_entries e JOIN billing_transactions t ON t.id = e.transaction_id WHERE e.account_id = 'rush'`;
    expect(Number(sums?.captures)).toBe(980);
    expect(Number(sums?.captures)).toBeLessThanOrEqual(Number(sums?.funding));
    const report = await expectInvariants();
    expect(report.totals.capturesCents - report.totals.refundsCents).toBeLessThanOrEqual(
      report.totals.fundingCents,
    );
  });
});

describe("bad deliveries and failures", () => {
  test("schema failures are poison: message.invalid, message.unknown_type, envelope.invalid", async () => {
    const bad = payment("cap", nextOrder(), 1);
    await expectCode(
      ledger.receive({ ...bad, data: { orderId: "x", customerId: "cap" } }),
      "message.invalid",
    );
    await expectCode(
      ledger.receive({ ...bad, data: { ...(bad.data as object), amountCents: -5 } }),
      "message.invalid",
    );
    await expectCode(ledger.receive({ ...bad, target: "billing/someone-else" }), "message.invalid");
    await expectCode(ledger.receive({ ...bad, type: "Increment" }), "message.unknown_type");
    await expectCode(ledger.receive({ ...bad, target: undefined }), "envelope.invalid");
    await expectCode(ledger.receive({ ...bad, id: "" }), "envelope.invalid");
    expect((await sql`SELECT 1 FROM billing_processed_messages WHERE message_id = ${bad.id}`).length).toBe(0);
  });

  test("a failed write rolls back the debit and the message id together; the redelivery applies once", async () => {
    await ledger.putAccount("atomic", 100);
    const orderId = nextOrder();
    await sql.unsafe(`ALTER TABLE billing_outbox ADD CONSTRAINT billing_test_fail
      CHECK (envelope->'data'->>'orderId' <> '${orderId}') NOT VALID`);
    const message = payment("atomic", orderId, 60);
    try {
      await expectCode(ledger.receive(message), "unavailable");
    } finally {
      await sql`ALTER TABLE billing_outbox DROP CONSTRAINT billing_test_fail`;
    }
    expect(await balance("atomic")).toBe(100);
    expect(await transactionsOf(orderId)).toEqual([]);
    expect(
      (await sql`SELECT 1 FROM billing_processed_messages WHERE message_id = ${message.id}`).length,
    ).toBe(0);
    expect((await ledger.receive(message)).duplicate).toBe(false);
    expect((await ledger.receive(message)).duplicate).toBe(true);
    expect(await balance("atomic")).toBe(40);
    await expectInvariants();
  });

  test("a database failure is a retryable `unavailable`", async () => {
    const other = `billing_test_empty_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const empty = await connect({ url, max: 1, schema: other });
    try {
      const unmigrated = new BillingLedger(empty);
      await expectCode(unmigrated.receive(payment("cap", nextOrder(), 1)), "unavailable");
      await expectCode(unmigrated.putAccount("cap", 1), "unavailable");
      await expectCode(unmigrated.getAccount("cap"), "unavailable");
    } finally {
      await empty`DROP SCHEMA IF EXISTS ${empty(other)} CASCADE`;
      await empty.end();
    }
  });
});
